#include "vmm/arch/x86_64/cpu_setup.hpp"

#include <cstring>

#include "vmm/arch/x86_64/boot_tables.hpp"
#include "vmm/arch/x86_64/layout.hpp"

namespace frakti::vmm::arch::x86_64 {
namespace {

constexpr uint64_t kCr0Pe = 1ull << 0;
constexpr uint64_t kCr0Et = 1ull << 4;
constexpr uint64_t kCr0Ne = 1ull << 5;
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLme = 1ull << 8;
constexpr uint64_t kEferLma = 1ull << 10;

constexpr uint32_t kLvtLint0 = 0x350;
constexpr uint32_t kLvtLint1 = 0x360;
constexpr uint32_t kDeliveryModeMask = 0x700;
constexpr uint32_t kDeliveryNmi = 4u << 8;
constexpr uint32_t kDeliveryExtInt = 7u << 8;

void set_lapic_reg(kvm::LapicState& lapic, uint32_t offset, uint32_t value) {
  std::memcpy(lapic.regs + offset, &value, sizeof value);
}

}  // namespace

kvm::Regs boot_regs(uint64_t entry) {
  kvm::Regs r{};
  r.rflags = 0x2;
  r.rip = entry;
  r.rsp = kBootStackPointer;
  r.rbp = kBootStackPointer;
  r.rsi = kZeroPageAddr;
  return r;
}

kvm::Sregs boot_sregs(const kvm::Sregs& current) {
  kvm::Sregs s = current;
  auto gdt = boot_gdt();
  kvm::Segment code = segment_from_gdt(gdt[1], 1);
  kvm::Segment data = segment_from_gdt(gdt[2], 2);
  kvm::Segment tss = segment_from_gdt(gdt[3], 3);
  s.cs = code;
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  s.tr = tss;
  s.gdt.base = kGdtAddr;
  s.gdt.limit = static_cast<uint16_t>(gdt.size() * 8 - 1);
  s.idt.base = kIdtAddr;
  s.idt.limit = 7;
  s.cr0 = kCr0Pe | kCr0Et | kCr0Ne | kCr0Pg;
  s.cr3 = kPml4Addr;
  s.cr4 = kCr4Pae;
  s.efer |= kEferLme | kEferLma;
  return s;
}

kvm::Fpu boot_fpu() {
  kvm::Fpu f{};
  f.fcw = 0x37f;
  f.mxcsr = 0x1f80;
  return f;
}

std::vector<kvm::MsrEntry> boot_msrs() {
  constexpr uint64_t kMiscEnableFastString = 1;
  constexpr uint64_t kMtrrEnable = 1ull << 11;
  constexpr uint64_t kMtrrTypeWriteBack = 6;
  return {
      {kMsrSysenterCs, 0},     {kMsrSysenterEsp, 0},  {kMsrSysenterEip, 0},
      {kMsrStar, 0},           {kMsrLstar, 0},        {kMsrCstar, 0},
      {kMsrSyscallMask, 0},    {kMsrKernelGsBase, 0}, {kMsrTsc, 0},
      {kMsrMiscEnable, kMiscEnableFastString},
      {kMsrMtrrDefType, kMtrrEnable | kMtrrTypeWriteBack},
  };
}

uint32_t lapic_reg(const kvm::LapicState& lapic, uint32_t offset) {
  uint32_t v;
  std::memcpy(&v, lapic.regs + offset, sizeof v);
  return v;
}

void set_lapic_lint(kvm::LapicState& lapic) {
  set_lapic_reg(lapic, kLvtLint0,
                (lapic_reg(lapic, kLvtLint0) & ~kDeliveryModeMask) | kDeliveryExtInt);
  set_lapic_reg(lapic, kLvtLint1, (lapic_reg(lapic, kLvtLint1) & ~kDeliveryModeMask) | kDeliveryNmi);
}

}  // namespace frakti::vmm::arch::x86_64
