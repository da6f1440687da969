#pragma once
// Reaper: collects every child that exits (the agent is PID 1 in the guest, or a child
// subreaper in host test mode, so orphans of containers end up here too) and tells whoever
// watches its pid. One SIGCHLD handler on the event loop; nothing else calls wait().

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <functional>
#include <unordered_map>

namespace frakti::agent::process {

class Reaper {
 public:
  using ExitHandler = std::function<void(int wait_status)>;
  explicit Reaper(boost::asio::io_context& io);
  /// Calls handler (on the loop) when pid exits. Register before returning to the loop.
  void watch(pid_t pid, ExitHandler handler);
  /// Reaps everything that has exited now.
  void reap();
  /// Orphans reaped that nobody watched (for logs and tests).
  uint64_t orphans_reaped() const { return orphans_; }

 private:
  void wait_signal();
  boost::asio::signal_set signals_;
  std::unordered_map<pid_t, ExitHandler> watched_;
  uint64_t orphans_ = 0;
};

}  // namespace frakti::agent::process
