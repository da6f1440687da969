#include "vmm/devices/boot_timer.hpp"

#include "common/guest_abi.hpp"
#include "common/log.hpp"

namespace frakti::vmm::devices {

BootTimer::BootTimer(Clock::time_point start, std::function<void(std::chrono::microseconds)> on_ready)
    : start_(start), on_ready_(std::move(on_ready)) {}

void BootTimer::read(uint64_t, std::span<uint8_t>) {}

void BootTimer::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.empty() || data[0] != guest_abi::kBootTimerMagic) return;
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_);
  int64_t unset = -1;
  // Only the first ready signal counts; a guest writing it again is not news.
  if (!boot_us_.compare_exchange_strong(unset, us.count())) return;
  common::log::info("vmm", "guest boot time: {}.{:03} ms", us.count() / 1000, us.count() % 1000);
  if (on_ready_) on_ready_(us);
}

std::optional<std::chrono::microseconds> BootTimer::boot_time() const {
  int64_t v = boot_us_.load();
  if (v < 0) return std::nullopt;
  return std::chrono::microseconds(v);
}

void PowerOffPort::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset == 0 && !data.empty() && data[0] == guest_abi::kPowerOffMagic && on_power_off_)
    on_power_off_();
}

}  // namespace frakti::vmm::devices
