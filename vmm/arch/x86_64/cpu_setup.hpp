#pragma once
// Register state for a vCPU entering Linux's 64-bit boot protocol: long mode with paging on,
// flat segments from boot_gdt(), rip = startup_64, rsi = zero page. Plus the MSR, FPU and
// LAPIC values Linux expects a firmware to have left behind. Pure functions over KVM
// structures, so they are unit-tested without KVM.

#include <cstdint>
#include <vector>

#include "vmm/kvm/kvm_types.hpp"

namespace frakti::vmm::arch::x86_64 {

/// rip = entry, rsi = zero page, rsp/rbp = boot stack, rflags = reserved bit 1 only.
kvm::Regs boot_regs(uint64_t entry);
/// current (from KVM_GET_SREGS, keeping APIC base and friends) switched to long mode:
/// segments from boot_gdt(), GDT/IDT registers, CR0 PE|PG, CR3 = PML4, CR4 PAE, EFER LME|LMA.
kvm::Sregs boot_sregs(const kvm::Sregs& current);
/// x87 control word and MXCSR at their power-on values.
kvm::Fpu boot_fpu();

/// MSR numbers used by boot_msrs().
inline constexpr uint32_t kMsrSysenterCs = 0x174;
inline constexpr uint32_t kMsrSysenterEsp = 0x175;
inline constexpr uint32_t kMsrSysenterEip = 0x176;
inline constexpr uint32_t kMsrStar = 0xc0000081;
inline constexpr uint32_t kMsrLstar = 0xc0000082;
inline constexpr uint32_t kMsrCstar = 0xc0000083;
inline constexpr uint32_t kMsrSyscallMask = 0xc0000084;
inline constexpr uint32_t kMsrKernelGsBase = 0xc0000102;
inline constexpr uint32_t kMsrTsc = 0x10;
inline constexpr uint32_t kMsrMiscEnable = 0x1a0;
inline constexpr uint32_t kMsrMtrrDefType = 0x2ff;
/// The MSR values a vCPU starts with: syscall MSRs zeroed, TSC 0, fast strings on, MTRRs on
/// with write-back as the default type (else Linux maps all RAM uncached).
std::vector<kvm::MsrEntry> boot_msrs();

/// Sets LVT LINT0 to ExtINT (the legacy PIC's output) and LINT1 to NMI, as a BIOS does.
void set_lapic_lint(kvm::LapicState& lapic);
/// Reads a 32-bit LAPIC register at offset.
uint32_t lapic_reg(const kvm::LapicState& lapic, uint32_t offset);

}  // namespace frakti::vmm::arch::x86_64
