#pragma once
// Error helpers: host and setup failures throw std::system_error naming the call and its
// subject; they are caught at a few named boundaries (thread entry, loop handlers, main).

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

namespace frakti::common {

/// Throws std::system_error for the current errno with "what" as the message
/// (for example "open /dev/kvm").
[[noreturn]] inline void throw_errno(std::string_view what) {
  throw std::system_error(errno, std::generic_category(), std::string(what));
}

/// Throws std::system_error for an explicit error number.
[[noreturn]] inline void throw_error(int err, std::string_view what) {
  throw std::system_error(err, std::generic_category(), std::string(what));
}

/// Returns rc when it is not negative; otherwise throws for errno with the formatted message.
template <typename T, typename... Args>
T check(T rc, fmt::format_string<Args...> what, Args&&... args) {
  if (rc < 0) {
    int err = errno;
    throw_error(err, fmt::format(what, std::forward<Args>(args)...));
  }
  return rc;
}

/// Retries a system call while it fails with EINTR.
template <typename F>
auto retry_eintr(F&& f) {
  for (;;) {
    auto rc = f();
    if (!(rc < 0 && errno == EINTR)) return rc;
  }
}

}  // namespace frakti::common
