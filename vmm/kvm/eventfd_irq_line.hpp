#pragma once
// EventFdIrqLine: an IrqLine backed by a KVM irqfd, so raising the interrupt is one eventfd
// write from any thread and the in-kernel IOAPIC injects it without a VMM round trip.

#include <cstdint>

#include "common/fd.hpp"
#include "vmm/irq/irq_line.hpp"

namespace frakti::vmm::kvm {

class VmFd;

class EventFdIrqLine : public irq::IrqLine {
 public:
  /// Registers an irqfd for gsi on vm and keeps its eventfd.
  EventFdIrqLine(VmFd& vm, uint32_t gsi);
  /// Wraps an existing eventfd (tests: any eventfd can stand in for an irqfd).
  EventFdIrqLine(common::Fd eventfd, uint32_t gsi) : fd_(std::move(eventfd)), gsi_(gsi) {}

  void trigger() override;
  uint32_t gsi() const { return gsi_; }
  int fd() const { return fd_.get(); }

 private:
  common::Fd fd_;
  uint32_t gsi_;
};

}  // namespace frakti::vmm::kvm
