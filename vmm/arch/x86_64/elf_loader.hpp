#pragma once
// Loads an uncompressed x86-64 Linux kernel (vmlinux, ELF64) at its physical addresses.
// The file is untrusted input: every header field is checked before anything is copied, and a
// bad file is a std::invalid_argument naming the problem, never a crash.

#include <cstdint>
#include <span>
#include <string>

#include "vmm/memory/guest_memory.hpp"

namespace frakti::vmm::arch::x86_64 {

struct LoadedKernel {
  uint64_t entry = 0;     ///< physical address of startup_64 (the ELF entry point)
  uint64_t low = 0;       ///< lowest physical address loaded
  uint64_t high = 0;      ///< one past the highest physical address loaded (incl. bss)
};

/// Copies the PT_LOAD segments of image into mem at their p_paddr (zeroing p_memsz beyond
/// p_filesz). Segments must lie in [kHighRamStart, ram_end) and inside one RAM region; the
/// entry point must lie inside a loaded segment.
LoadedKernel load_elf_kernel(std::span<const uint8_t> image, const memory::GuestMemory& mem,
                             uint64_t ram_end);

/// Reads the file at path and loads it with load_elf_kernel(); the error names the file.
LoadedKernel load_elf_kernel_file(const std::string& path, const memory::GuestMemory& mem,
                                  uint64_t ram_end);

}  // namespace frakti::vmm::arch::x86_64
