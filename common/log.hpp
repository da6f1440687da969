#pragma once
// Logging: one line per call, written with a single write(2) so threads never interleave.
//
//   log::info("vmm", "booted in {} ms", ms);
//
// Lines look like "2026-11-27T12:00:00.123456Z I vmm: booted in 12 ms".

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

#include <fmt/format.h>

namespace frakti::common::log {

enum class Level : int { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

/// Sets the lowest level that is printed (default info).
void set_level(Level level);
Level level();
/// Parses "debug", "info", "warn", "error", "off" (or 0-4); throws std::invalid_argument.
Level parse_level(std::string_view text);
/// Sends log lines to fd (default 2). The fd is not owned.
void set_fd(int fd);

void write_line(Level level, std::string_view component, std::string_view message);

template <typename... Args>
void emit(Level lv, std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (lv < level()) return;
  write_line(lv, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(std::string_view c, fmt::format_string<Args...> f, Args&&... a) {
  emit(Level::debug, c, f, std::forward<Args>(a)...);
}
template <typename... Args>
void info(std::string_view c, fmt::format_string<Args...> f, Args&&... a) {
  emit(Level::info, c, f, std::forward<Args>(a)...);
}
template <typename... Args>
void warn(std::string_view c, fmt::format_string<Args...> f, Args&&... a) {
  emit(Level::warn, c, f, std::forward<Args>(a)...);
}
template <typename... Args>
void error(std::string_view c, fmt::format_string<Args...> f, Args&&... a) {
  emit(Level::error, c, f, std::forward<Args>(a)...);
}

/// Lets through at most `burst` events per `period`; counts the rest. Used for anything a
/// guest (or any untrusted peer) can trigger at will, so a hostile guest cannot flood the log.
/// Thread-safe.
class RateLimiter {
 public:
  RateLimiter(uint32_t burst, std::chrono::milliseconds period) : burst_(burst), period_(period) {}
  /// True when this event may be logged. `suppressed` receives how many events were dropped
  /// since the last allowed one (so the caller can mention them).
  bool allow(uint64_t* suppressed = nullptr);
  /// Total number of events seen (allowed or not).
  uint64_t total() const { return total_.load(std::memory_order_relaxed); }

 private:
  const uint32_t burst_;
  const std::chrono::milliseconds period_;
  std::atomic<int64_t> window_start_ns_{0};
  std::atomic<uint32_t> in_window_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> total_{0};
};

}  // namespace frakti::common::log
