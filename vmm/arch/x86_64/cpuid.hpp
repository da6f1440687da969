#pragma once
// CPUID for one vCPU: KVM_GET_SUPPORTED_CPUID with the topology rewritten for N vCPUs in one
// package (one thread per core, APIC id = vCPU index), the hypervisor bit set, and features
// we do not offer (nested virtualisation, the PMU) filtered out.

#include <cstdint>
#include <vector>

#include "vmm/kvm/kvm_types.hpp"

namespace frakti::vmm::arch::x86_64 {

/// Bits needed to number n things (0 for n <= 1): the APIC-id shift of the core level.
uint32_t topology_bits(uint32_t n);

/// Returns supported adjusted for vCPU cpu_index of cpu_count. Pure; unit-tested.
std::vector<kvm::CpuidEntry> vcpu_cpuid(const std::vector<kvm::CpuidEntry>& supported,
                                        uint32_t cpu_index, uint32_t cpu_count);

/// The entry for (function, index), or nullptr.
const kvm::CpuidEntry* find_cpuid(const std::vector<kvm::CpuidEntry>& entries, uint32_t function,
                                  uint32_t index = 0);

}  // namespace frakti::vmm::arch::x86_64
