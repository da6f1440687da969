#pragma once
// The guest-physical memory map of a frakti VM, in one place. Everything the VMM writes into
// guest memory before the first instruction, and every range the guest sees, is here.
//
//   0x0000_0000  real-mode IVT/BDA (left zero)
//   0x0000_0500  GDT (4 entries), then a null IDT at 0x520
//   0x0000_7000  zero page (struct boot_params)
//   0x0000_8ff0  initial stack pointer (grows down, below the page tables)
//   0x0000_9000  PML4, PDPT at 0xa000, four page directories at 0xb000..0xefff
//   0x0002_0000  kernel command line (kCmdlineMax bytes)
//   0x0009_fc00  MP floating pointer + MP configuration table (the last KiB of base memory,
//                where Linux scans for it); 0x9fc00..0x100000 is not RAM in the e820 map
//   0x0010_0000  start of high RAM; the kernel sits at its ELF physical addresses (16 MiB
//                for a default x86-64 build)
//   ...          initrd: page-aligned, as high as possible below the top of low RAM
//   0xd000_0000  MMIO hole start: virtio-mmio devices, 4 KiB each (kVirtioMmioBase)
//   0xfec0_0000  IOAPIC; 0xfee0_0000 LAPIC (in-kernel)
//   0xfffb_c000  KVM TSS (3 pages) and identity-map page (Intel), inside the hole
//   0x1_0000_0000 RAM beyond kLowRamEnd when the VM has more memory than fits below the hole

#include <cstdint>

namespace frakti::vmm::arch::x86_64 {

inline constexpr uint64_t kMiB = 1ull << 20;
inline constexpr uint64_t kGiB = 1ull << 30;

// --- Boot structures (below 1 MiB) -------------------------------------------------------
inline constexpr uint64_t kGdtAddr = 0x500;
inline constexpr uint64_t kIdtAddr = 0x520;
inline constexpr uint64_t kZeroPageAddr = 0x7000;
inline constexpr uint64_t kBootStackPointer = 0x8ff0;
inline constexpr uint64_t kPml4Addr = 0x9000;
inline constexpr uint64_t kPdptAddr = 0xa000;
/// Four page directories (one per GiB) of 2 MiB pages map the first 4 GiB 1:1.
inline constexpr uint64_t kPdAddr = 0xb000;
inline constexpr uint64_t kIdentityMappedGiB = 4;
inline constexpr uint64_t kCmdlineAddr = 0x20000;
/// Linux x86 COMMAND_LINE_SIZE is 2048 including the terminating NUL.
inline constexpr uint64_t kCmdlineMax = 2048;
/// Start of the EBDA-like area holding the MP table; base RAM in the e820 map ends here.
inline constexpr uint64_t kMpTableAddr = 0x9fc00;
inline constexpr uint64_t kMpTableMaxSize = 0x400;
/// RAM from here up is usable by the kernel, initrd and guest.
inline constexpr uint64_t kHighRamStart = 1 * kMiB;

// --- MMIO hole and RAM ----------------------------------------------------------------------
/// Guest RAM below 4 GiB stops here; the rest of the VM's memory starts at kHighRamBase.
inline constexpr uint64_t kLowRamEnd = 0xd0000000;
inline constexpr uint64_t kHighRamBase = 4 * kGiB;
/// virtio-mmio device i lives at kVirtioMmioBase + i * kVirtioMmioSize with GSI
/// kVirtioFirstGsi + i (i < kVirtioMaxDevices); the kernel learns them from the command line
/// ("virtio_mmio.device=4K@0xd0000000:5").
inline constexpr uint64_t kVirtioMmioBase = 0xd0000000;
inline constexpr uint64_t kVirtioMmioSize = 0x1000;
inline constexpr uint32_t kVirtioFirstGsi = 5;
inline constexpr uint32_t kVirtioMaxDevices = 19;  // GSIs 5..23: the IOAPIC's 24 pins
inline constexpr uint64_t kIoapicAddr = 0xfec00000;
inline constexpr uint64_t kLapicAddr = 0xfee00000;
/// KVM_SET_TSS_ADDR needs three pages and KVM_SET_IDENTITY_MAP_ADDR one, below 4 GiB and
/// outside RAM; they sit just below the 64 KiB BIOS-ROM window.
inline constexpr uint64_t kKvmTssAddr = 0xfffbd000;
inline constexpr uint64_t kKvmIdentityMapAddr = 0xfffbc000;

// --- Interrupts -----------------------------------------------------------------------------
inline constexpr uint32_t kSerialGsi = 4;
inline constexpr uint32_t kIoapicPins = 24;

// --- Limits -------------------------------------------------------------------------------
inline constexpr uint32_t kMaxVcpus = 32;
/// Below this Linux 6.1 plus an initrd does not boot reliably.
inline constexpr uint64_t kMinMemory = 64 * kMiB;

}  // namespace frakti::vmm::arch::x86_64
