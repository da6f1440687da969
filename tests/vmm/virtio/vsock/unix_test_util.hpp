#pragma once
// Host-side helpers for vsock tests: a temp dir and blocking Unix-socket clients/listeners
// with timeouts, so a broken muxer fails a test instead of hanging it.

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace frakti::vmm::virtio::vsock::test {

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/frakti-vsock-XXXXXX";
    if (!::mkdtemp(tmpl)) common::throw_errno("mkdtemp");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

inline sockaddr_un unix_addr(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

inline void set_timeouts(int fd, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/// Blocking client connected to path (10 s I/O timeouts); throws on failure.
inline common::Fd connect_unix(const std::string& path) {
  common::Fd fd(common::check(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
  sockaddr_un a = unix_addr(path);
  common::check(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), "connect {}", path);
  set_timeouts(fd.get(), 10);
  return fd;
}

/// Bound and listening socket at path.
inline common::Fd listen_unix(const std::string& path) {
  common::Fd fd(common::check(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
  sockaddr_un a = unix_addr(path);
  common::check(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), "bind {}", path);
  common::check(::listen(fd.get(), 8), "listen {}", path);
  return fd;
}

inline void send_str(int fd, const std::string& s) {
  common::write_all(fd, s.data(), s.size(), "test socket");
}

/// Reads one line (through '\n') byte by byte; empty on EOF or timeout.
inline std::string read_line(int fd) {
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1) {
    line += c;
    if (c == '\n') break;
  }
  return line;
}

/// Reads until EOF (or timeout/error) and returns everything.
inline std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

/// FNV-1a, enough to compare a megabyte sent with a megabyte received.
inline uint64_t fnv1a(const uint8_t* p, size_t n, uint64_t h = 1469598103934665603ull) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

}  // namespace frakti::vmm::virtio::vsock::test
