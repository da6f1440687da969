#include "vmm/vcpu/exit_handler.hpp"

#include <algorithm>

namespace frakti::vmm::vcpu {

using Kind = kvm::VcpuExit::Kind;

std::optional<StopReason> ExitHandler::handle(uint32_t vcpu, kvm::VcpuExit& e) {
  switch (e.kind) {
    case Kind::io_in:
    case Kind::io_out: port_io(e); return std::nullopt;
    case Kind::mmio_read:
    case Kind::mmio_write: mmio(e); return std::nullopt;
    case Kind::interrupted: return std::nullopt;
    case Kind::hlt:
      // Only reachable without an in-kernel LAPIC (which handles HLT itself): nothing can
      // wake this vCPU again, so the guest is done.
      common::log::info("vcpu", "vCPU {} halted", vcpu);
      return StopReason::poweroff;
    case Kind::shutdown:
      common::log::error("vcpu", "vCPU {}: triple fault (KVM_EXIT_SHUTDOWN)", vcpu);
      return StopReason::crash;
    case Kind::system_event:
      switch (static_cast<kvm::VcpuExit::SystemEvent>(e.event_type)) {
        case kvm::VcpuExit::SystemEvent::shutdown:
          common::log::info("vcpu", "vCPU {}: guest shut down", vcpu);
          return StopReason::poweroff;
        case kvm::VcpuExit::SystemEvent::reset:
          common::log::info("vcpu", "vCPU {}: guest reset", vcpu);
          return StopReason::reboot;
        case kvm::VcpuExit::SystemEvent::crash:
          common::log::error("vcpu", "vCPU {}: guest crashed (system event)", vcpu);
          return StopReason::crash;
      }
      common::log::error("vcpu", "vCPU {}: unknown system event {}", vcpu, e.event_type);
      return StopReason::crash;
    case Kind::internal_error:
      common::log::error("vcpu", "vCPU {}: KVM internal error: {}", vcpu, e.detail);
      return StopReason::crash;
    case Kind::fail_entry:
      common::log::error("vcpu", "vCPU {}: KVM could not enter the guest: {}", vcpu, e.detail);
      return StopReason::crash;
    case Kind::unknown:
      common::log::error("vcpu", "vCPU {}: unexpected exit: {}", vcpu, e.detail);
      return StopReason::crash;
  }
  return StopReason::crash;
}

void ExitHandler::port_io(kvm::VcpuExit& e) {
  // String I/O (rep ins/outs) arrives as `count` accesses of `size` bytes to one port.
  const size_t size = e.size;
  if (size == 0 || e.data.size() < size * e.count) return;
  for (uint32_t i = 0; i < e.count; i++) {
    auto chunk = e.data.subspan(i * size, size);
    bool claimed;
    if (e.kind == Kind::io_in) {
      std::fill(chunk.begin(), chunk.end(), 0);
      claimed = pio_.read(e.addr, chunk);
      if (!claimed) std::fill(chunk.begin(), chunk.end(), 0xff);
    } else {
      claimed = pio_.write(e.addr, chunk);
    }
    if (!claimed) {
      unclaimed_pio_.fetch_add(1, std::memory_order_relaxed);
      uint64_t dropped = 0;
      if (unclaimed_log_.allow(&dropped))
        common::log::warn("vcpu", "unclaimed port {} of {} bytes at {:#x} ({} similar not logged)",
                          e.kind == Kind::io_in ? "read" : "write", size, e.addr, dropped);
    }
  }
}

void ExitHandler::mmio(kvm::VcpuExit& e) {
  bool claimed;
  if (e.kind == Kind::mmio_read) {
    std::fill(e.data.begin(), e.data.end(), 0);
    claimed = mmio_.read(e.addr, e.data);
    if (!claimed) std::fill(e.data.begin(), e.data.end(), 0xff);
  } else {
    claimed = mmio_.write(e.addr, e.data);
  }
  if (!claimed) {
    unclaimed_mmio_.fetch_add(1, std::memory_order_relaxed);
    uint64_t dropped = 0;
    if (unclaimed_log_.allow(&dropped))
      common::log::warn("vcpu", "unclaimed MMIO {} of {} bytes at {:#x} ({} similar not logged)",
                        e.kind == Kind::mmio_read ? "read" : "write", e.data.size(), e.addr, dropped);
  }
}

}  // namespace frakti::vmm::vcpu
