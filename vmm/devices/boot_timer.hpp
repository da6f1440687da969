#pragma once
// BootTimer: the guest's init writes guest_abi::kBootTimerMagic to guest_abi::kBootTimerPort
// when it is ready; we log the time since the VMM was started ("guest boot time: X ms"),
// like Firecracker's boot timer device.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "vmm/bus/bus_device.hpp"

namespace frakti::vmm::devices {

class BootTimer : public bus::BusDevice {
 public:
  using Clock = std::chrono::steady_clock;
  /// start: when the VMM process started. on_ready (optional) gets the boot time.
  explicit BootTimer(Clock::time_point start,
                     std::function<void(std::chrono::microseconds)> on_ready = {});

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  /// The boot time of the first magic write, if there was one.
  std::optional<std::chrono::microseconds> boot_time() const;

 private:
  Clock::time_point start_;
  std::function<void(std::chrono::microseconds)> on_ready_;
  std::atomic<int64_t> boot_us_{-1};
};

/// PowerOffPort: a write of guest_abi::kPowerOffMagic at guest_abi::kPowerOffPort calls
/// on_power_off (x86 without ACPI has no other way for a guest to power off).
class PowerOffPort : public bus::BusDevice {
 public:
  explicit PowerOffPort(std::function<void()> on_power_off) : on_power_off_(std::move(on_power_off)) {}
  void read(uint64_t, std::span<uint8_t>) override {}
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  std::function<void()> on_power_off_;
};

}  // namespace frakti::vmm::devices
