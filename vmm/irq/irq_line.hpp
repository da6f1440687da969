#pragma once
// IrqLine: how a device raises its interrupt. The real implementation writes to a KVM irqfd
// (an eventfd routed to a GSI of the in-kernel IOAPIC); unit tests count triggers instead.

namespace frakti::vmm::irq {

class IrqLine {
 public:
  virtual ~IrqLine() = default;
  /// Raises the (edge-triggered) interrupt. Safe from any thread.
  virtual void trigger() = 0;
};

}  // namespace frakti::vmm::irq
