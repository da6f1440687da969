// Real KVM: tiny guests placed in guest memory by hand, started in long mode with the same
// boot code (GDT, page tables, sregs, CPUID) the VMM uses for Linux.
#include <poll.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "vmm/arch/x86_64/boot_tables.hpp"
#include "vmm/arch/x86_64/cpu_setup.hpp"
#include "vmm/arch/x86_64/cpuid.hpp"
#include "vmm/arch/x86_64/layout.hpp"
#include "vmm/kvm/kvm_system.hpp"

using namespace frakti::vmm;
namespace x86 = arch::x86_64;
using Kind = kvm::VcpuExit::Kind;

namespace {

constexpr uint64_t kCodeAddr = 0x100000;

// A VM with 2 MiB of RAM, boot tables written, code at kCodeAddr, vCPU 0 in long mode there.
struct TinyGuest {
  kvm::Kvm kvm = kvm::Kvm::open();
  kvm::VmFd vm = kvm.create_vm();
  memory::GuestMemory mem = memory::GuestMemory::allocate({{0, 2 * x86::kMiB}});
  std::unique_ptr<kvm::VcpuFd> vcpu;

  explicit TinyGuest(const std::vector<uint8_t>& code, bool irqchip = false) {
    vm.set_identity_map_address(x86::kKvmIdentityMapAddr);
    vm.set_tss_address(x86::kKvmTssAddr);
    if (irqchip) vm.create_irqchip();
    const auto& r = mem.regions()[0];
    vm.set_user_memory_region(0, r.gpa, r.size, r.host);
    x86::write_gdt(mem);
    x86::write_identity_page_tables(mem);
    REQUIRE(mem.write(kCodeAddr, code));
    vcpu = std::make_unique<kvm::VcpuFd>(vm.create_vcpu(0));
    // CPUID first: KVM refuses EFER.LME unless the guest's CPUID has long mode.
    vcpu->set_cpuid(x86::vcpu_cpuid(kvm.supported_cpuid(), 0, 1));
    vcpu->set_sregs(x86::boot_sregs(vcpu->get_sregs()));
    vcpu->set_regs(x86::boot_regs(kCodeAddr));
  }
};

}  // namespace

TEST_CASE("a long-mode guest writes a byte to a port, then halts", "[kvm]") {
  // mov dx, 0x3f8; mov al, 'K'; out dx, al; hlt
  TinyGuest g({0x66, 0xba, 0xf8, 0x03, 0xb0, 'K', 0xee, 0xf4});
  auto e = g.vcpu->run();
  REQUIRE(e.kind == Kind::io_out);
  REQUIRE(e.addr == 0x3f8);
  REQUIRE(e.size == 1);
  REQUIRE(e.count == 1);
  REQUIRE(e.data.size() == 1);
  REQUIRE(e.data[0] == 'K');
  auto h = g.vcpu->run();
  REQUIRE(h.kind == Kind::hlt);
  auto regs = g.vcpu->get_regs();
  REQUIRE(regs.rip == kCodeAddr + 8);
  REQUIRE(regs.rsi == x86::kZeroPageAddr);
}

TEST_CASE("a port read returns what the VMM put in the exit data", "[kvm]") {
  // mov dx, 0x3f8; in al, dx; mov dx, 0x80; out dx, al; hlt
  TinyGuest g({0x66, 0xba, 0xf8, 0x03, 0xec, 0x66, 0xba, 0x80, 0x00, 0xee, 0xf4});
  auto in = g.vcpu->run();
  REQUIRE(in.kind == Kind::io_in);
  REQUIRE(in.addr == 0x3f8);
  in.data[0] = 0x5a;
  auto out = g.vcpu->run();
  REQUIRE(out.kind == Kind::io_out);
  REQUIRE(out.addr == 0x80);
  REQUIRE(out.data[0] == 0x5a);
}

TEST_CASE("an MMIO write to an ioeventfd address signals it without an exit", "[kvm]") {
  // mov eax, 0xd0000050; mov dword [rax], 1; hlt
  TinyGuest g({0xb8, 0x50, 0x00, 0x00, 0xd0, 0xc7, 0x00, 0x01, 0x00, 0x00, 0x00, 0xf4});
  auto efd = g.vm.register_ioeventfd(0xd0000050, 4, false, 1);
  auto e = g.vcpu->run();
  REQUIRE(e.kind == Kind::hlt);
  uint64_t count = 0;
  REQUIRE(::read(efd.get(), &count, sizeof count) == sizeof count);
  REQUIRE(count == 1);
}

TEST_CASE("an MMIO read exits with the address and takes the VMM's data", "[kvm]") {
  // mov eax, 0xd0001000; mov ebx, [rax]; mov dx, 0x80; mov al, bl; out dx, al; hlt
  TinyGuest g({0xb8, 0x00, 0x10, 0x00, 0xd0, 0x8b, 0x18, 0x66, 0xba, 0x80, 0x00, 0x88, 0xd8,
               0xee, 0xf4});
  auto r = g.vcpu->run();
  REQUIRE(r.kind == Kind::mmio_read);
  REQUIRE(r.addr == 0xd0001000);
  REQUIRE(r.size == 4);
  std::memset(r.data.data(), 0, 4);
  r.data[0] = 0x77;
  auto out = g.vcpu->run();
  REQUIRE(out.kind == Kind::io_out);
  REQUIRE(out.data[0] == 0x77);
}

TEST_CASE("immediate_exit makes KVM_RUN return at once", "[kvm]") {
  TinyGuest g({0xeb, 0xfe});  // jmp $ (spins forever)
  g.vcpu->set_immediate_exit(true);
  REQUIRE(g.vcpu->run().kind == Kind::interrupted);
  g.vcpu->set_immediate_exit(false);
}

TEST_CASE("KVM accepts the VMM's per-vCPU state for an SMP VM", "[kvm]") {
  auto k = kvm::Kvm::open();
  auto vm = k.create_vm();
  vm.set_identity_map_address(x86::kKvmIdentityMapAddr);
  vm.set_tss_address(x86::kKvmTssAddr);
  vm.create_irqchip();
  vm.create_pit2();
  auto irqfd = vm.register_irqfd(x86::kVirtioFirstGsi);
  REQUIRE(irqfd.valid());
  const auto supported = k.supported_cpuid();
  REQUIRE(x86::find_cpuid(supported, 0x1));
  for (uint32_t i = 0; i < 4; i++) {
    auto v = vm.create_vcpu(i);
    v.set_cpuid(x86::vcpu_cpuid(supported, i, 4));
    v.set_msrs(x86::boot_msrs());
    auto back = v.get_msrs({x86::kMsrMtrrDefType, x86::kMsrMiscEnable});
    REQUIRE(back.size() == 2);
    REQUIRE(back[0].data == ((1u << 11) | 6));
    REQUIRE((back[1].data & 1) == 1);
    v.set_fpu(x86::boot_fpu());
    auto lapic = v.get_lapic();
    x86::set_lapic_lint(lapic);
    v.set_lapic(lapic);
    auto again = v.get_lapic();
    REQUIRE(((x86::lapic_reg(again, 0x350) >> 8) & 7) == 7);
    REQUIRE(((x86::lapic_reg(again, 0x360) >> 8) & 7) == 4);
    // The LAPIC id KVM reports matches the APIC id our CPUID and MP table announce.
    REQUIRE(x86::lapic_reg(again, 0x20) >> 24 == i);
  }
}

TEST_CASE("a missing KVM device gives a message saying what to do", "[kvm]") {
  REQUIRE_THROWS_WITH(kvm::Kvm::open("/nonexistent/kvm"), Catch::Contains("kvmbox"));
}
