#pragma once
// Interrupt: the InterruptStatus register of one virtio device together with the line that
// carries it to the guest, plus the ConfigGeneration counter. Shared by the transport (vCPU
// threads read and acknowledge it), the device (the event loop raises used-buffer interrupts)
// and the control thread (a blk media swap raises a configuration-change interrupt), so every
// member is thread-safe.

#include <atomic>
#include <cstdint>
#include <memory>

#include "vmm/irq/irq_line.hpp"

namespace frakti::vmm::virtio {

class Interrupt {
 public:
  explicit Interrupt(std::shared_ptr<irq::IrqLine> line) : line_(std::move(line)) {}

  /// Sets the used-buffer bit and fires the line (call after Queue::should_notify()).
  void signal_used_buffer();
  /// Bumps ConfigGeneration, sets the configuration-change bit and fires the line. Before the
  /// driver is live (DRIVER_OK) only the generation moves: the driver reads config at probe.
  void signal_config_change();
  /// Records that the device hit a broken queue: the transport then reports
  /// DEVICE_NEEDS_RESET in Status, and the driver learns it through a config interrupt.
  void signal_needs_reset();

  /// InterruptStatus as the guest reads it.
  uint32_t status() const { return status_.load(std::memory_order_acquire); }
  /// InterruptACK: clears the given bits.
  void acknowledge(uint32_t bits) { status_.fetch_and(~bits, std::memory_order_acq_rel); }
  uint32_t config_generation() const { return generation_.load(std::memory_order_acquire); }
  bool needs_reset() const { return needs_reset_.load(std::memory_order_acquire); }

  /// Transport only: whether the driver is live (DRIVER_OK set, not reset since).
  void set_live(bool live) { live_.store(live, std::memory_order_release); }
  /// Transport only: a device reset clears the status bits and the needs-reset flag.
  void clear() {
    status_.store(0, std::memory_order_release);
    needs_reset_.store(false, std::memory_order_release);
  }
  /// Number of times the line was fired (for tests and stats).
  uint64_t fired() const { return fired_.load(std::memory_order_relaxed); }

 private:
  void fire(uint32_t bit);

  std::shared_ptr<irq::IrqLine> line_;
  std::atomic<uint32_t> status_{0};
  std::atomic<uint32_t> generation_{0};
  std::atomic<bool> needs_reset_{false};
  std::atomic<bool> live_{false};
  std::atomic<uint64_t> fired_{0};
};

}  // namespace frakti::vmm::virtio
