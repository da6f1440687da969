#include "vmm/control/unix_socket.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/error.hpp"

namespace frakti::vmm::control {
namespace {

/// Removes a socket file that no process listens on; refuses anything else.
void remove_stale_socket(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    common::throw_errno(fmt::format("stat control socket path {}", path));
  }
  if (!S_ISSOCK(st.st_mode)) {
    common::throw_error(EEXIST, fmt::format("control socket path {} exists and is not a socket; "
                                            "remove it or choose another path",
                                            path));
  }
  common::Fd probe(common::check(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0),
                                 "socket to probe control socket {}", path));
  sockaddr_un addr = unix_address(path);
  if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    common::throw_error(EADDRINUSE,
                        fmt::format("control socket {} is in use by a running process "
                                    "(another frakti-vmm?); stop it or choose another path",
                                    path));
  }
  if (errno != ECONNREFUSED) common::throw_errno(fmt::format("probe control socket {}", path));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    common::throw_errno(fmt::format("remove stale control socket {}", path));
  }
}

}  // namespace

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    common::throw_error(ENAMETOOLONG,
                        fmt::format("control socket path '{}' is empty or longer than {} bytes; "
                                    "choose a shorter path",
                                    path, sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

UnixListener listen_owner_only(const std::string& path, int backlog) {
  sockaddr_un addr = unix_address(path);
  remove_stale_socket(path);
  UnixListener l;
  l.fd = common::Fd(common::check(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0),
                                  "socket for control socket {}", path));
  common::check(::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr),
                "bind control socket {}", path);
  // Owner-only before listen(): until listen() every connect() is refused, so no other user
  // ever reaches the socket through the wider mode bind() created it with. fchmod on a socket
  // fd does not change the file, so this goes by path, once lstat shows it still names a
  // socket (not a symlink swapped in). umask is not used: it is process-wide.
  struct stat st;
  int rc = ::lstat(path.c_str(), &st);
  if (rc == 0 && S_ISSOCK(st.st_mode)) rc = ::fchmodat(AT_FDCWD, path.c_str(), 0600, 0);
  if (rc != 0 || !S_ISSOCK(st.st_mode)) {
    int err = rc != 0 ? errno : EEXIST;
    ::unlink(path.c_str());
    common::throw_error(err, fmt::format("make control socket {} owner-only (chmod 0600)", path));
  }
  l.dev = st.st_dev;
  l.ino = st.st_ino;
  common::check(::listen(l.fd.get(), backlog), "listen on control socket {}", path);
  return l;
}

void unlink_if_ours(const std::string& path, const UnixListener& listener) {
  // Another VMM may have replaced a file we lost track of: unlink only our own.
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && st.st_dev == listener.dev && st.st_ino == listener.ino) {
    ::unlink(path.c_str());
  }
}

uid_t peer_uid(int fd) {
  struct ucred cred {};
  socklen_t len = sizeof cred;
  common::check(::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len),
                "getsockopt SO_PEERCRED on control connection");
  return cred.uid;
}

}  // namespace frakti::vmm::control
