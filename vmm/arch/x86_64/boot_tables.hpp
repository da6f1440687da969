#pragma once
// The GDT and identity-mapped page tables the boot vCPU needs to start in 64-bit mode.
// Linux replaces both early in startup_64; they only have to carry it that far.

#include <array>
#include <cstdint>

#include "vmm/kvm/kvm_types.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace frakti::vmm::arch::x86_64 {

/// GDT slots: null, 64-bit code, data, TSS (selectors are index * 8).
inline constexpr uint16_t kCodeSelector = 1 * 8;
inline constexpr uint16_t kDataSelector = 2 * 8;
inline constexpr uint16_t kTssSelector = 3 * 8;

/// Encodes one segment descriptor from 16 bits of flags (access byte in bits 0-7, the
/// G/DB/L/AVL nibble in bits 12-15), a 32-bit base and a 20-bit limit.
uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit);
/// The four descriptors frakti writes at kGdtAddr.
std::array<uint64_t, 4> boot_gdt();
/// The kvm_segment (hidden part of a segment register) for a descriptor at GDT index.
kvm::Segment segment_from_gdt(uint64_t entry, uint16_t index);

/// Writes the GDT (kGdtAddr) and a null IDT (kIdtAddr). Throws std::invalid_argument when
/// guest RAM does not cover them.
void write_gdt(const memory::GuestMemory& mem);
/// Writes a PML4, one PDPT and kIdentityMappedGiB page directories of 2 MiB pages mapping
/// [0, kIdentityMappedGiB GiB) 1:1, writable, supervisor-only.
void write_identity_page_tables(const memory::GuestMemory& mem);

}  // namespace frakti::vmm::arch::x86_64
