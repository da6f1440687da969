#include "vmm/vm/vm_control.hpp"

#include "common/log.hpp"
#include "vmm/control/control_error.hpp"
#include "vmm/virtio/blk/blk_device.hpp"
#include "vmm/vm/vm.hpp"

namespace frakti::vmm::vm {

using control::ControlError;
using control::ErrorCode;

VmControl::VmControl(Vm& vm) : vm_(vm) {
  const auto& cfg = vm.config();
  for (uint32_t i = 0; i < cfg.drives.size(); i++)
    drives_.push_back({i, cfg.drives[i].path.value_or(""), cfg.drives[i].read_only,
                       cfg.drives[i].serial});
}

void VmControl::vm_stopping() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  cv_.notify_all();
}

uint32_t VmControl::drive_slot_count() const { return static_cast<uint32_t>(drives_.size()); }

control::VmStatus VmControl::status() {
  control::VmStatus s;
  s.vcpus = vm_.config().cpus;
  s.memory_mib = vm_.config().memory_mib;
  s.uptime = std::chrono::duration_cast<std::chrono::milliseconds>(Vm::Clock::now() -
                                                                   vm_.start_time());
  s.boot_time = vm_.boot_time();
  std::lock_guard lock(mu_);
  s.state = stopping_ ? control::VmState::stopping
                      : paused_ ? control::VmState::paused : control::VmState::running;
  s.drives = drives_;
  return s;
}

void VmControl::pause() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) throw ControlError(ErrorCode::failed_precondition, "the VM is stopping");
    if (paused_) throw ControlError(ErrorCode::failed_precondition, "the VM is already paused");
  }
  // Outside the lock: parking waits for every vCPU, and status() must not wait with it.
  vm_.pause();
  std::lock_guard lock(mu_);
  paused_ = true;
  common::log::info("vmm", "paused through the control socket");
}

void VmControl::resume() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) throw ControlError(ErrorCode::failed_precondition, "the VM is stopping");
    if (!paused_) throw ControlError(ErrorCode::failed_precondition, "the VM is not paused");
    paused_ = false;
  }
  vm_.resume();
  common::log::info("vmm", "resumed through the control socket");
}

control::StopResult VmControl::stop(bool graceful, std::chrono::milliseconds timeout) {
  if (graceful) {
    std::unique_lock lock(mu_);
    // A paused guest cannot power itself off: let it run for the wait.
    if (paused_ && !stopping_) {
      paused_ = false;
      lock.unlock();
      vm_.resume();
      lock.lock();
    }
    if (!stopping_) {
      lock.unlock();
      if (vm_.send_ctrl_alt_del())
        common::log::info("vmm", "asked the guest to shut down (Ctrl-Alt-Del); waiting {} ms",
                          timeout.count());
      else
        common::log::info("vmm", "the guest's keyboard is off, so it cannot be asked to shut "
                          "down; waiting {} ms for it to power off", timeout.count());
      lock.lock();
    }
    if (cv_.wait_for(lock, timeout, [&] { return stopping_; })) return {false};
    common::log::info("vmm", "the guest did not power off within {} ms: hard stop",
                      timeout.count());
  }
  vm_.request_stop(vcpu::StopReason::host_stop);
  return {true};
}

void VmControl::set_drive(uint32_t slot, const std::optional<std::string>& path, bool read_only,
                          const std::string& serial) {
  if (slot >= vm_.drives().size())
    throw ControlError(ErrorCode::not_found, fmt::format("no drive slot {}", slot));
  {
    std::lock_guard lock(mu_);
    if (stopping_) throw ControlError(ErrorCode::failed_precondition, "the VM is stopping");
  }
  const std::string new_serial = path ? serial : std::string();
  // Throws std::system_error naming the file (ENOENT becomes not_found) and keeps the old one.
  vm_.drives()[slot]->set_backing(path, read_only, new_serial);
  std::lock_guard lock(mu_);
  auto& d = drives_[slot];
  d.path = path.value_or("");
  d.read_only = vm_.config().drives[slot].read_only || read_only;
  d.serial = new_serial;
  common::log::info("vmm", "drive slot {}: {}", slot, path ? *path : std::string("ejected"));
}

}  // namespace frakti::vmm::vm
