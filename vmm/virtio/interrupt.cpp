#include "vmm/virtio/interrupt.hpp"

#include "vmm/virtio/spec.hpp"

namespace frakti::vmm::virtio {

void Interrupt::fire(uint32_t bit) {
  status_.fetch_or(bit, std::memory_order_acq_rel);
  fired_.fetch_add(1, std::memory_order_relaxed);
  if (line_) line_->trigger();
}

void Interrupt::signal_used_buffer() {
  if (live_.load(std::memory_order_acquire)) fire(interrupt_bit::kUsedBuffer);
}

void Interrupt::signal_config_change() {
  generation_.fetch_add(1, std::memory_order_acq_rel);
  if (live_.load(std::memory_order_acquire)) fire(interrupt_bit::kConfigChange);
}

void Interrupt::signal_needs_reset() {
  needs_reset_.store(true, std::memory_order_release);
  if (live_.load(std::memory_order_acquire)) fire(interrupt_bit::kConfigChange);
}

}  // namespace frakti::vmm::virtio
