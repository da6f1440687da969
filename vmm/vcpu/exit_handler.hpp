#pragma once
// ExitHandler: what the VMM does with each exit from KVM_RUN, as one switch on the exit kind.
// It knows nothing of KVM fds, so unit tests drive it with scripted VcpuExits.
// Shared by all vCPU threads: the buses are read-only once vCPUs run, counters are atomic.

#include <atomic>
#include <cstdint>
#include <optional>

#include "common/log.hpp"
#include "vmm/bus/bus.hpp"
#include "vmm/kvm/vcpu_exit.hpp"
#include "vmm/vcpu/stop_reason.hpp"

namespace frakti::vmm::vcpu {

class ExitHandler {
 public:
  ExitHandler(const bus::Bus& pio, const bus::Bus& mmio) : pio_(pio), mmio_(mmio) {}

  /// Handles one exit of vCPU `vcpu`. nullopt: run the guest again; otherwise the VM stops
  /// for the returned reason. Accesses no device claims are counted and logged rate-limited:
  /// reads see all ones, writes are dropped. `interrupted` is a plain resume here (pausing and
  /// stopping are the run loop's business).
  std::optional<StopReason> handle(uint32_t vcpu, kvm::VcpuExit& exit);

  uint64_t unclaimed_pio() const { return unclaimed_pio_.load(); }
  uint64_t unclaimed_mmio() const { return unclaimed_mmio_.load(); }

 private:
  void port_io(kvm::VcpuExit& exit);
  void mmio(kvm::VcpuExit& exit);

  const bus::Bus& pio_;
  const bus::Bus& mmio_;
  std::atomic<uint64_t> unclaimed_pio_{0};
  std::atomic<uint64_t> unclaimed_mmio_{0};
  common::log::RateLimiter unclaimed_log_{10, std::chrono::seconds(10)};
};

}  // namespace frakti::vmm::vcpu
