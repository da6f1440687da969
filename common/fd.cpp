#include "common/fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "common/error.hpp"

namespace frakti::common {

void Fd::reset(int fd) noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Pipe make_pipe(int extra_flags) {
  int fds[2];
  check(::pipe2(fds, O_CLOEXEC | extra_flags), "pipe2");
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

void write_all(int fd, const void* buf, size_t len, const char* what) {
  auto* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = retry_eintr([&] { return ::write(fd, p, len); });
    if (n < 0) throw_errno(fmt::format("write {}", what));
    p += n;
    len -= static_cast<size_t>(n);
  }
}

bool read_exact(int fd, void* buf, size_t len, const char* what) {
  auto* p = static_cast<char*>(buf);
  size_t got = 0;
  while (got < len) {
    ssize_t n = retry_eintr([&] { return ::read(fd, p + got, len - got); });
    if (n < 0) throw_errno(fmt::format("read {}", what));
    if (n == 0) {
      if (got == 0) return false;
      throw_error(EPIPE, fmt::format("read {}: unexpected end of data after {} of {} bytes",
                                     what, got, len));
    }
    got += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace frakti::common
