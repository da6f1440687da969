#pragma once
// VmControl: the VM's side of the control socket (control::ControlHandler), owned by Vm.
//
// Graceful stop: the guest has no channel yet on which the VMM could ask it to shut down (no
// ACPI power button, no agent request), so a graceful stop asks nothing of the guest: it waits
// up to the timeout for the guest to power off by itself (frakti's agent does once its
// containers end) and hard-stops it otherwise. Drive slots: slot N is the Nth --drive, and
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
