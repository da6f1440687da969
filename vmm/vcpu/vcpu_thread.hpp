#pragma once
// VcpuThread: one thread per vCPU running `KVM_RUN -> ExitHandler` until the VM stops.
//
// Pause, resume and stop from other threads: the controller records the request, sets the
// vCPU's kvm_run.immediate_exit, then sends the thread the kick signal (SIGRTMIN, whose
// handler does nothing and is installed without SA_RESTART). A vCPU inside KVM_RUN returns
// with EINTR; one about to enter it returns at once because of immediate_exit; one busy in an
// exit handler sees immediate_exit on its next KVM_RUN. So no request is ever lost, and the
// thread only looks at the request state after an interrupted run.
//
// Teardown order: request_stop() -> join() -> destroy (the VcpuFd outlives the thread).

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <string>
#include <thread>

#include "vmm/kvm/vcpu_exit.hpp"
#include "vmm/vcpu/exit_handler.hpp"
#include "vmm/vcpu/stop_reason.hpp"

namespace frakti::vmm::vcpu {

/// Where exits come from: a KVM vCPU, or a script in unit tests.
class ExitSource {
 public:
  virtual ~ExitSource() = default;
  /// Runs until the next exit (Kind::interrupted when kicked or immediate_exit is set).
  virtual kvm::VcpuExit run() = 0;
  virtual void set_immediate_exit(bool on) = 0;
  /// A one-line register summary for crash logs (empty when unavailable).
  virtual std::string state_summary() { return {}; }
};

/// Installs the no-op SIGRTMIN handler used to kick vCPU threads (idempotent).
void install_kick_signal();
/// The kick signal number (SIGRTMIN).
int kick_signal();

class VcpuThread {
 public:
  /// on_stop is called once, on the vCPU thread, with the reason the loop ended (an exception
  /// from the source becomes vmm_error after being logged).
  VcpuThread(uint32_t index, ExitSource& source, ExitHandler& handler,
             std::function<void(StopReason)> on_stop);
  VcpuThread(const VcpuThread&) = delete;
  VcpuThread& operator=(const VcpuThread&) = delete;
  /// Stops and joins if still running.
  ~VcpuThread();

  void start();
  /// Asks the vCPU to leave the guest and park; returns once it is parked (or stopped).
  void pause();
  void resume();
  /// Asks the loop to end (returns at once; join() waits).
  void request_stop();
  void join();

  uint32_t index() const { return index_; }
  /// The reason the loop ended, once it has.
  std::optional<StopReason> stop_reason() const;

  /// The loop itself, on the calling thread (start() runs it on a new thread).
  StopReason run_loop();

 private:
  void kick();
  /// After an interrupted run: parks while paused; true when the loop must end.
  bool settle_requests();

  const uint32_t index_;
  ExitSource& source_;
  ExitHandler& handler_;
  std::function<void(StopReason)> on_stop_;
  std::thread thread_;
  pthread_t native_{};
  bool started_ = false;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool pause_requested_ = false;
  bool stop_requested_ = false;
  bool parked_ = false;
  bool finished_ = false;
  std::optional<StopReason> reason_;
};

}  // namespace frakti::vmm::vcpu
