// GDT encoding, identity page tables, long-mode register state, MSRs and LAPIC LINTs.
#include <catch2/catch.hpp>
#include <cstring>

#include "vmm/arch/x86_64/boot_tables.hpp"
#include "vmm/arch/x86_64/cpu_setup.hpp"
#include "vmm/arch/x86_64/layout.hpp"

using namespace frakti::vmm::arch::x86_64;
using frakti::vmm::memory::GuestMemory;

namespace {
// Walks 4-level paging the way the CPU does for a 2 MiB page; nullopt when not mapped.
std::optional<uint64_t> walk(const GuestMemory& mem, uint64_t va) {
  auto pml4e = mem.read_obj<uint64_t>(kPml4Addr + ((va >> 39) & 511) * 8);
  if (!pml4e || !(*pml4e & 1)) return std::nullopt;
  auto pdpte = mem.read_obj<uint64_t>((*pml4e & ~0xfffull) + ((va >> 30) & 511) * 8);
  if (!pdpte || !(*pdpte & 1)) return std::nullopt;
  auto pde = mem.read_obj<uint64_t>((*pdpte & ~0xfffull) + ((va >> 21) & 511) * 8);
  if (!pde || !(*pde & 1) || !(*pde & 0x80) || !(*pde & 2)) return std::nullopt;
  return (*pde & ~0x1fffffull) | (va & 0x1fffff);
}
}  // namespace

TEST_CASE("GDT descriptors encode the architectural bit layout", "[arch]") {
  auto gdt = boot_gdt();
  REQUIRE(gdt[0] == 0);
  REQUIRE(gdt[1] == 0x00af9b000000ffffull);
  REQUIRE(gdt[2] == 0x00cf93000000ffffull);
  REQUIRE(gdt[3] == 0x008f8b000000ffffull);
  REQUIRE(gdt_entry(0x0093, 0x12345678, 0xabcde) == 0x120a93345678bcdeull);

  auto cs = segment_from_gdt(gdt[1], 1);
  REQUIRE(cs.selector == kCodeSelector);
  REQUIRE(cs.l == 1);
  REQUIRE(cs.db == 0);
  REQUIRE(cs.type == 0xb);
  REQUIRE(cs.present == 1);
  REQUIRE(cs.s == 1);
  REQUIRE(cs.limit == 0xffffffffu);
  auto ds = segment_from_gdt(gdt[2], 2);
  REQUIRE(ds.selector == kDataSelector);
  REQUIRE(ds.db == 1);
  REQUIRE(ds.l == 0);
  REQUIRE(ds.type == 3);
  auto odd = segment_from_gdt(gdt_entry(0x0093, 0x12345678, 0xabcde), 5);
  REQUIRE(odd.base == 0x12345678);
  REQUIRE(odd.limit == 0xabcde);
  REQUIRE(odd.g == 0);
  REQUIRE(odd.present == 1);
}

TEST_CASE("identity page tables map the first 4 GiB 1:1 and nothing above", "[arch]") {
  auto mem = GuestMemory::allocate({{0, 1 * kMiB}});
  write_identity_page_tables(mem);
  write_gdt(mem);
  for (uint64_t va : {0x0ull, 0x7000ull, 0x1000000ull, 0x1234567ull, 0xd0000000ull, 0xfee00020ull,
                      0xffffffffull}) {
    auto pa = walk(mem, va);
    REQUIRE(pa);
    REQUIRE(*pa == va);
  }
  REQUIRE_FALSE(walk(mem, 0x100000000ull));
  REQUIRE(mem.read_obj<uint64_t>(kGdtAddr + 8) == boot_gdt()[1]);
  REQUIRE(mem.read_obj<uint64_t>(kIdtAddr) == 0);
  auto tiny = GuestMemory::allocate({{0, 0x8000}});
  REQUIRE_THROWS_AS(write_identity_page_tables(tiny), std::invalid_argument);
}

TEST_CASE("boot registers enter 64-bit mode at the kernel entry with rsi = zero page", "[arch]") {
  auto r = boot_regs(0x1000000);
  REQUIRE(r.rip == 0x1000000);
  REQUIRE(r.rsi == kZeroPageAddr);
  REQUIRE(r.rsp == kBootStackPointer);
  REQUIRE(r.rflags == 2);

  frakti::vmm::kvm::Sregs before{};
  before.apic_base = 0xfee00900;
  auto s = boot_sregs(before);
  REQUIRE(s.apic_base == 0xfee00900);  // kept from KVM's reset state
  REQUIRE((s.cr0 & 0x80000001) == 0x80000001);
  REQUIRE(s.cr3 == kPml4Addr);
  REQUIRE((s.cr4 & 0x20) == 0x20);
  REQUIRE((s.efer & 0x500) == 0x500);
  REQUIRE(s.cs.l == 1);
  REQUIRE(s.cs.selector == kCodeSelector);
  REQUIRE(s.ss.selector == kDataSelector);
  REQUIRE(s.tr.selector == kTssSelector);
  REQUIRE(s.gdt.base == kGdtAddr);
  REQUIRE(s.gdt.limit == 31);
  REQUIRE(s.idt.base == kIdtAddr);

  auto fpu = boot_fpu();
  REQUIRE(fpu.fcw == 0x37f);
  REQUIRE(fpu.mxcsr == 0x1f80);
}

TEST_CASE("boot MSRs: write-back MTRR default, fast strings, zeroed syscall MSRs", "[arch]") {
  auto msrs = boot_msrs();
  auto value = [&](uint32_t idx) -> std::optional<uint64_t> {
    for (auto& m : msrs)
      if (m.index == idx) return m.data;
    return std::nullopt;
  };
  REQUIRE(value(kMsrMtrrDefType) == uint64_t{(1u << 11) | 6});
  REQUIRE(value(kMsrMiscEnable) == uint64_t{1});
  for (uint32_t idx : {kMsrSysenterCs, kMsrSysenterEsp, kMsrSysenterEip, kMsrStar, kMsrLstar,
                       kMsrCstar, kMsrSyscallMask, kMsrKernelGsBase, kMsrTsc})
    REQUIRE(value(idx) == uint64_t{0});
}

TEST_CASE("LAPIC LINT0 becomes ExtINT and LINT1 NMI, other bits kept", "[arch]") {
  frakti::vmm::kvm::LapicState lapic{};
  uint32_t masked_fixed = 0x10000 | 0x0700;  // masked, delivery mode bits all set
  std::memcpy(lapic.regs + 0x350, &masked_fixed, 4);
  std::memcpy(lapic.regs + 0x360, &masked_fixed, 4);
  set_lapic_lint(lapic);
  REQUIRE(lapic_reg(lapic, 0x350) == (0x10000u | (7u << 8)));
  REQUIRE(lapic_reg(lapic, 0x360) == (0x10000u | (4u << 8)));
}
