#pragma once
// The container's user: /etc/passwd and /etc/group of the image parsed leniently (like libc:
// malformed lines are skipped), then the OCI user resolved to numbers (CRI run_as_username,
// supplementary groups from group membership, HOME).

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/container/spec.hpp"

namespace frakti::agent::container {

struct PasswdEntry {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home;
};

struct GroupEntry {
  std::string name;
  gid_t gid = 0;
  std::vector<std::string> members;
};

/// Parses /etc/passwd text. Lines that are empty, comments, NIS "+"/"-" entries or malformed
/// (wrong field count, ids that are not decimal numbers below 2^32-1) are skipped.
std::vector<PasswdEntry> parse_passwd(std::string_view text);
/// Parses /etc/group text with the same rules.
std::vector<GroupEntry> parse_group(std::string_view text);

struct ResolvedUser {
  uid_t uid = 0;
  gid_t gid = 0;
  /// Supplementary groups: the request's plus every group listing the user by name.
  std::vector<gid_t> groups;
  /// From the passwd entry, "/" without one.
  std::string home = "/";
};

/// Resolves user against the image's files (nullopt = the file does not exist). A username
/// that is not in passwd throws AgentError(CODE_INVALID_ARGUMENT) naming it; a numeric uid
/// without an entry is fine (as in OCI).
ResolvedUser resolve_user(const UserSpec& user, const std::optional<std::string>& passwd,
                          const std::optional<std::string>& group);

}  // namespace frakti::agent::container
