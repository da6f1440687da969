#pragma once
// Helpers for the agent protocol tests: socket pairs and driving one io_context from the test.

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <utility>

#include <boost/asio/io_context.hpp>

#include "agent/protocol/session.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"

namespace frakti::agent::protocol::test {

inline std::pair<common::Fd, common::Fd> fd_pair() {
  int fds[2];
  common::check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), "socketpair");
  return {common::Fd(fds[0]), common::Fd(fds[1])};
}

/// Runs handlers until pred() holds; false when it still does not after limit.
template <typename Pred>
bool run_until(boost::asio::io_context& io, Pred pred,
               std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    io.restart();
    io.run_one_for(std::chrono::milliseconds(5));
  }
  return true;
}

/// Runs every handler that is ready now or becomes ready within `quiet`.
inline void run_for(boost::asio::io_context& io, std::chrono::milliseconds quiet) {
  auto end = std::chrono::steady_clock::now() + quiet;
  while (std::chrono::steady_clock::now() < end) {
    io.restart();
    io.run_one_for(std::chrono::milliseconds(2));
  }
}

/// Reads whatever a raw (non-Session) peer has received until EOF, running io meanwhile.
inline std::string drain_raw(boost::asio::io_context& io, int fd,
                             std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  std::string got;
  bool eof = false;
  run_until(
      io,
      [&] {
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) got.append(buf, static_cast<size_t>(n));
        if (n == 0) eof = true;
        return eof;
      },
      limit);
  return eof ? got : got + "<no EOF>";
}

/// Sends bytes from a raw peer without blocking the loop (the other end may need to run to
/// make room in the socket buffer).
inline void send_raw(boost::asio::io_context& io, int fd, const std::string& bytes) {
  size_t sent = 0;
  run_until(io, [&] {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) sent += static_cast<size_t>(n);
    return sent == bytes.size() || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  });
}

inline std::string pattern(size_t n, unsigned seed = 1) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

}  // namespace frakti::agent::protocol::test
