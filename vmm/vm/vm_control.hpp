#pragma once
// VmControl: the VM's side of the control socket (control::ControlHandler), owned by Vm.
//
// Graceful stop: asks the guest to shut down by typing Ctrl-Alt-Del on the i8042 keyboard
// (frakti's agent and init disable the kernel's immediate CAD reboot, so it reaches them as
// SIGINT and they stop their processes, sync and power off), then waits up to the timeout for
// the guest to stop by itself (power-off, or reboot if the guest's CAD reboots) and hard-stops
// it otherwise. Drive slots: slot N is the Nth --drive, and
// every slot may be swapped; the caller decides which ones it reserved for media.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "vmm/control/control_handler.hpp"

namespace frakti::vmm::vm {

class Vm;

class VmControl : public control::ControlHandler {
 public:
  /// `vm` must outlive this object; its drives must already exist.
  explicit VmControl(Vm& vm);

  /// Called by Vm::request_stop (any thread): wakes a graceful stop that is waiting.
  void vm_stopping();

  uint32_t drive_slot_count() const override;
  control::VmStatus status() override;
  void pause() override;
  void resume() override;
  control::StopResult stop(bool graceful, std::chrono::milliseconds timeout) override;
  void set_drive(uint32_t slot, const std::optional<std::string>& path, bool read_only,
                 const std::string& serial) override;

 private:
  Vm& vm_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  bool paused_ = false;    // guarded by mu_
  std::vector<control::DriveSlotInfo> drives_;  // guarded by mu_; what each slot holds now
};

}  // namespace frakti::vmm::vm
