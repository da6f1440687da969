#include "vmm/vcpu/vcpu_thread.hpp"

#include <signal.h>

#include <exception>

#include "common/error.hpp"
#include "common/log.hpp"
#include "vmm/seccomp/filters.hpp"

namespace frakti::vmm::vcpu {
namespace {

extern "C" void on_kick(int) {}

}  // namespace

int kick_signal() { return SIGRTMIN; }

void install_kick_signal() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = on_kick;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    common::check(::sigaction(kick_signal(), &sa, nullptr), "sigaction SIGRTMIN (vCPU kick)");
  });
}

VcpuThread::VcpuThread(uint32_t index, ExitSource& source, ExitHandler& handler,
                       std::function<void(StopReason)> on_stop)
    : index_(index), source_(source), handler_(handler), on_stop_(std::move(on_stop)) {}

VcpuThread::~VcpuThread() {
  request_stop();
  join();
}

void VcpuThread::start() {
  install_kick_signal();
  std::lock_guard lock(mu_);
  thread_ = std::thread([this] {
    StopReason r = run_loop();
    if (on_stop_) on_stop_(r);
  });
  native_ = thread_.native_handle();
  started_ = true;
}

void VcpuThread::kick() {
  source_.set_immediate_exit(true);
  // Under mu_ (held by callers) so the thread cannot be joined while we signal it.
  if (started_ && !finished_) pthread_kill(native_, kick_signal());
}

void VcpuThread::pause() {
  std::unique_lock lock(mu_);
  if (finished_ || stop_requested_) return;
  pause_requested_ = true;
  kick();
  cv_.wait(lock, [&] { return parked_ || finished_ || !started_; });
}

void VcpuThread::resume() {
  std::lock_guard lock(mu_);
  pause_requested_ = false;
  cv_.notify_all();
}

void VcpuThread::request_stop() {
  std::lock_guard lock(mu_);
  if (stop_requested_) return;
  stop_requested_ = true;
  kick();
  cv_.notify_all();
}

void VcpuThread::join() {
  if (thread_.joinable()) thread_.join();
}

std::optional<StopReason> VcpuThread::stop_reason() const {
  std::lock_guard lock(mu_);
  return reason_;
}

bool VcpuThread::settle_requests() {
  std::unique_lock lock(mu_);
  // Cleared under the lock: a request made after this point sets it again and kicks.
  source_.set_immediate_exit(false);
  if (pause_requested_ && !stop_requested_) {
    parked_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !pause_requested_ || stop_requested_; });
    parked_ = false;
  }
  return stop_requested_;
}

StopReason VcpuThread::run_loop() {
  StopReason reason = StopReason::host_stop;
  try {
    // Before the first KVM_RUN: nothing the guest does runs unfiltered.
    seccomp::install_configured_filter(seccomp::Role::vcpu);
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (stop_requested_) break;
      }
      kvm::VcpuExit exit = source_.run();
      if (exit.kind == kvm::VcpuExit::Kind::interrupted) {
        if (settle_requests()) break;
        continue;
      }
      if (auto r = handler_.handle(index_, exit)) {
        reason = *r;
        if (reason == StopReason::crash) {
          std::string state = source_.state_summary();
          if (!state.empty()) common::log::error("vcpu", "vCPU {} state: {}", index_, state);
        }
        break;
      }
    }
  } catch (const std::exception& e) {
    common::log::error("vcpu", "vCPU {}: {}", index_, e.what());
    reason = StopReason::vmm_error;
  }
  std::lock_guard lock(mu_);
  reason_ = reason;
  finished_ = true;
  cv_.notify_all();
  return reason;
}

}  // namespace frakti::vmm::vcpu
