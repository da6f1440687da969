#pragma once
// The Linux x86 "zero page" (struct boot_params, Documentation/x86/boot.rst) for the 64-bit
// boot protocol: e820 memory map, command line pointer, initrd location, loader type.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vmm/memory/guest_memory.hpp"

namespace frakti::vmm::arch::x86_64 {

/// One e820 entry (type 1 = RAM, 2 = reserved).
struct E820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  bool operator==(const E820Entry&) const = default;
};
inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

/// The guest's e820 map for a RAM layout from guest_ram_layout(): base memory up to the MP
/// table, then RAM from 1 MiB, then the region above 4 GiB (if any).
std::vector<E820Entry> e820_map(const std::vector<std::pair<uint64_t, uint64_t>>& ram);

/// Where an initrd of size bytes goes: page-aligned, as high as possible below low_ram_end,
/// never below kernel_end. Throws std::invalid_argument when it does not fit.
uint64_t initrd_address(uint64_t size, uint64_t kernel_end, uint64_t low_ram_end);

struct BootParamsInput {
  std::vector<E820Entry> e820;
  uint64_t cmdline_addr = 0;
  uint32_t cmdline_size = 0;  ///< bytes including the NUL
  uint64_t initrd_addr = 0;
  uint64_t initrd_size = 0;
};

/// The 4096-byte zero page for input. Throws std::invalid_argument when the e820 map has
/// more entries than the zero page holds.
std::vector<uint8_t> build_boot_params(const BootParamsInput& input);

/// Writes cmdline (NUL-terminated) at kCmdlineAddr. Throws std::invalid_argument when it is
/// kCmdlineMax bytes or longer.
void write_cmdline(const memory::GuestMemory& mem, const std::string& cmdline);

}  // namespace frakti::vmm::arch::x86_64
