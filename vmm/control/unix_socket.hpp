#pragma once
// Unix-socket plumbing for the control socket: an owner-only listener that replaces only a
// stale socket, its tidy removal, the peer's credentials, and address checks shared with the
// client.

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <string>

#include "common/fd.hpp"

namespace frakti::vmm::control {

/// A bound, listening socket and the identity of its file (to unlink only our own file later).
struct UnixListener {
  common::Fd fd;
  dev_t dev = 0;
  ino_t ino = 0;
};

/// The sockaddr for path; throws std::system_error (ENAMETOOLONG) when it does not fit.
sockaddr_un unix_address(const std::string& path);

/// Listens on path, mode 0600, non-blocking and CLOEXEC. An existing socket file nobody listens
/// on (left by a VMM that died) is replaced; a live socket (EADDRINUSE) or any other kind of
/// file (EEXIST) is refused. Throws std::system_error naming the path.
UnixListener listen_owner_only(const std::string& path, int backlog);

/// Removes path if it is still the file listen_owner_only created (same device and inode).
void unlink_if_ours(const std::string& path, const UnixListener& listener);

/// The connected peer's uid (SO_PEERCRED); throws std::system_error.
uid_t peer_uid(int fd);

}  // namespace frakti::vmm::control
