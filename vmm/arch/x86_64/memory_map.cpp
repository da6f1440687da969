#include "vmm/arch/x86_64/memory_map.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "vmm/arch/x86_64/layout.hpp"

namespace frakti::vmm::arch::x86_64 {

uint64_t low_ram_end(uint64_t memory_bytes) {
  return memory_bytes < kLowRamEnd ? memory_bytes : kLowRamEnd;
}

std::vector<std::pair<uint64_t, uint64_t>> guest_ram_layout(uint64_t memory_bytes) {
  if (memory_bytes < kMinMemory || memory_bytes % kMiB != 0)
    throw std::invalid_argument(
        fmt::format("guest memory of {} bytes: must be a whole number of MiB, at least {} MiB",
                    memory_bytes, kMinMemory / kMiB));
  std::vector<std::pair<uint64_t, uint64_t>> layout;
  uint64_t low = low_ram_end(memory_bytes);
  layout.emplace_back(0, low);
  if (memory_bytes > low) layout.emplace_back(kHighRamBase, memory_bytes - low);
  return layout;
}

}  // namespace frakti::vmm::arch::x86_64
