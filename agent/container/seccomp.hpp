#pragma once
// OCI seccomp profiles (linux.seccomp of the runtime spec, as JSON) compiled with libseccomp.
// Supported: defaultAction, defaultErrnoRet, syscalls[] with names, action, errnoRet and
// args (index, value, valueTwo, op). Architectures other than the native one, flags and
// SCMP_ACT_NOTIFY are not supported (listeners need a seccomp agent the guest does not have).
// Syscall names the running libseccomp does not know are skipped, as runc does.

#include <cstdint>
#include <string>
#include <vector>

namespace frakti::agent::container {

struct SeccompArg {
  unsigned index = 0;
  uint64_t value = 0, value_two = 0;
  int op = 0;  // enum scmp_compare
};

struct SeccompRule {
  std::vector<std::string> names;
  uint32_t action = 0;
  std::vector<SeccompArg> args;
};

struct SeccompProfile {
  uint32_t default_action = 0;
  std::vector<SeccompRule> rules;
};

/// Parses a profile; throws AgentError(CODE_INVALID_ARGUMENT) naming the bad field.
SeccompProfile parse_seccomp_profile(const std::string& json);
/// Parses and loads the profile into the calling thread (the container child, just before
/// exec). Throws on failure.
void install_seccomp_profile(const std::string& json);

}  // namespace frakti::agent::container
