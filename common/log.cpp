#include "common/log.hpp"

#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

namespace frakti::common::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::atomic<int> g_fd{2};

char level_letter(Level l) {
  switch (l) {
    case Level::debug: return 'D';
    case Level::info: return 'I';
    case Level::warn: return 'W';
    case Level::error: return 'E';
    default: return '?';
  }
}
}  // namespace

void set_level(Level level) { g_level.store(static_cast<int>(level)); }
Level level() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }
void set_fd(int fd) { g_fd.store(fd); }

Level parse_level(std::string_view t) {
  if (t == "debug" || t == "0") return Level::debug;
  if (t == "info" || t == "1") return Level::info;
  if (t == "warn" || t == "warning" || t == "2") return Level::warn;
  if (t == "error" || t == "3") return Level::error;
  if (t == "off" || t == "none" || t == "4") return Level::off;
  throw std::invalid_argument("unknown log level '" + std::string(t) +
                              "' (use debug, info, warn, error or off)");
}

void write_line(Level lv, std::string_view component, std::string_view message) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  std::string line = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z {} {}: {}\n",
                                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000, level_letter(lv),
                                 component, message);
  // One write per line; a failed log write has nowhere better to go, so it is ignored.
  [[maybe_unused]] ssize_t n = ::write(g_fd.load(), line.data(), line.size());
}

bool RateLimiter::allow(uint64_t* suppressed) {
  total_.fetch_add(1, std::memory_order_relaxed);
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  int64_t start = window_start_ns_.load();
  if (now - start >= std::chrono::duration_cast<std::chrono::nanoseconds>(period_).count()) {
    if (window_start_ns_.compare_exchange_strong(start, now)) in_window_.store(0);
  }
  if (in_window_.fetch_add(1) < burst_) {
    uint64_t d = dropped_.exchange(0);
    if (suppressed) *suppressed = d;
    return true;
  }
  dropped_.fetch_add(1);
  return false;
}

}  // namespace frakti::common::log
