#include "agent/process/reaper.hpp"

#include <signal.h>
#include <sys/wait.h>

#include "common/log.hpp"

namespace frakti::agent::process {

Reaper::Reaper(boost::asio::io_context& io) : signals_(io, SIGCHLD) {
  wait_signal();
}

void Reaper::watch(pid_t pid, ExitHandler handler) {
  watched_[pid] = std::move(handler);
}

void Reaper::wait_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    reap();
    wait_signal();
  });
}

void Reaper::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    auto it = watched_.find(pid);
    if (it == watched_.end()) {
      ++orphans_;
      continue;
    }
    auto handler = std::move(it->second);
    watched_.erase(it);
    try {
      handler(status);
    } catch (const std::exception& e) {
      common::log::error("agent-reaper", "handling the exit of pid {}: {}", pid, e.what());
    }
  }
}

}  // namespace frakti::agent::process
