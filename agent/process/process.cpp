#include "agent/process/process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "common/error.hpp"

namespace frakti::agent::process {

namespace {
int64_t now_unix_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
}  // namespace

ExitStatus decode_wait_status(int status) {
  ExitStatus s;
  s.at_unix_ns = now_unix_ns();
  if (WIFEXITED(status)) s.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) s.signal = WTERMSIG(status);
  return s;
}

void Process::mark_exited(const ExitStatus& status) {
  if (exit_) return;
  exit_ = status;
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters) add_waiter(std::move(w));
}

void Process::add_waiter(protocol::Responder responder) {
  if (!exit_) {
    waiters_.push_back(std::move(responder));
    return;
  }
  protocol::v1::Response response;
  *response.mutable_wait_process()->mutable_status() = exited_message();
  responder(std::move(response));
}

protocol::v1::ProcessExited Process::exited_message() const {
  protocol::v1::ProcessExited m;
  m.set_container_id(container_id_);
  m.set_exec_id(exec_id_);
  m.set_pid(static_cast<uint32_t>(pid_));
  if (exit_) {
    m.set_exit_code(exit_->exit_code);
    m.set_signal(exit_->signal);
    m.set_exited_at_unix_ns(exit_->at_unix_ns);
  }
  return m;
}

void Process::signal(int sig) const {
  if (exit_) return;
  if (::kill(pid_, sig) < 0 && errno != ESRCH) {
    common::throw_errno(fmt::format("kill pid {} with signal {}", pid_, sig));
  }
}

}  // namespace frakti::agent::process
