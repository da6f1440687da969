#pragma once
// Fd: the single owner of a file descriptor. Move-only; closes on destruction.

#include <cstddef>
#include <utility>

namespace frakti::common {

class Fd {
 public:
  Fd() = default;
  /// Takes ownership of fd (which may be -1 for "none").
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  /// Gives up ownership and returns the descriptor.
  int release() noexcept { return std::exchange(fd_, -1); }
  /// Closes the current descriptor (if any) and takes fd.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

/// A pipe's two ends, both O_CLOEXEC.
struct Pipe {
  Fd read;
  Fd write;
};
/// Creates a pipe with O_CLOEXEC (and extra flags such as O_NONBLOCK); throws on failure.
Pipe make_pipe(int extra_flags = 0);

/// Writes all of buf, retrying on EINTR and short writes; throws on error.
void write_all(int fd, const void* buf, size_t len, const char* what);
/// Reads exactly len bytes; returns false on EOF before any byte; throws on error or short EOF.
bool read_exact(int fd, void* buf, size_t len, const char* what);

}  // namespace frakti::common
