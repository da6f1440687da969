#pragma once
// Where a VM's RAM goes: below the MMIO hole first, the remainder above 4 GiB.

#include <cstdint>
#include <utility>
#include <vector>

namespace frakti::vmm::arch::x86_64 {

/// (guest-physical address, size) pairs for memory_bytes of RAM: [0, min(mem, kLowRamEnd))
/// and, when more is asked for, [kHighRamBase, kHighRamBase + rest). Throws
/// std::invalid_argument when memory_bytes is below kMinMemory or not MiB-aligned.
std::vector<std::pair<uint64_t, uint64_t>> guest_ram_layout(uint64_t memory_bytes);

/// End (exclusive) of RAM below the MMIO hole for memory_bytes of RAM.
uint64_t low_ram_end(uint64_t memory_bytes);

}  // namespace frakti::vmm::arch::x86_64
