// CPUID adjustment for N vCPUs from a synthetic KVM_GET_SUPPORTED_CPUID answer.
#include <catch2/catch.hpp>

#include "vmm/arch/x86_64/cpuid.hpp"

using namespace frakti::vmm::arch::x86_64;
using frakti::vmm::kvm::CpuidEntry;
using frakti::vmm::kvm::kCpuidFlagSignificantIndex;

namespace {
CpuidEntry leaf(uint32_t fn, uint32_t idx, uint32_t eax, uint32_t ebx, uint32_t ecx, uint32_t edx,
                bool indexed = false) {
  CpuidEntry e{};
  e.function = fn;
  e.index = idx;
  e.flags = indexed ? kCpuidFlagSignificantIndex : 0;
  e.eax = eax;
  e.ebx = ebx;
  e.ecx = ecx;
  e.edx = edx;
  return e;
}

std::vector<CpuidEntry> supported() {
  return {
      leaf(0x0, 0, 0x1f, 0x68747541, 0x444d4163, 0x69746e65),
      leaf(0x1, 0, 0x00a00f11, 0xff0000aa, 0x00000020 | 0x1, 0x0),  // VMX set, junk APIC id
      leaf(0x4, 0, (1 << 5) | 1, 0, 0, 0, true),                    // L1 data
      leaf(0x4, 1, (2 << 5) | 3, 0, 0, 0, true),                    // L2 unified
      leaf(0x4, 2, (3 << 5) | 3, 0, 0, 0, true),                    // L3 unified
      leaf(0xa, 0, 0x07300805, 0, 0, 0x603),
      leaf(0xb, 0, 1, 2, 0x100, 7, true),
      leaf(0xb, 1, 4, 16, 0x201, 7, true),
      leaf(0xb, 2, 0, 0, 2, 7, true),
      leaf(0x40000000, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d),
      leaf(0x80000001, 0, 0, 0, 0x4 | 0x1, 0),  // SVM set
      leaf(0x80000008, 0, 0x3030, 0, 0x700f, 0),
      leaf(0x8000000a, 0, 1, 0x8000, 0, 0xff),
      leaf(0x8000001e, 0, 99, 0x0101, 0x0300, 0),
  };
}
}  // namespace

TEST_CASE("topology bits round up to a power of two", "[arch][cpuid]") {
  REQUIRE(topology_bits(1) == 0);
  REQUIRE(topology_bits(2) == 1);
  REQUIRE(topology_bits(3) == 2);
  REQUIRE(topology_bits(4) == 2);
  REQUIRE(topology_bits(5) == 3);
  REQUIRE(topology_bits(32) == 5);
}

TEST_CASE("CPUID for vCPU 2 of 4: APIC id, counts, topology, filtered features", "[arch][cpuid]") {
  auto c = vcpu_cpuid(supported(), 2, 4);
  REQUIRE(c.size() == supported().size());

  auto* l1 = find_cpuid(c, 0x1);
  REQUIRE(l1);
  REQUIRE(l1->ebx >> 24 == 2);
  REQUIRE(((l1->ebx >> 16) & 0xff) == 4);
  REQUIRE(((l1->ebx >> 8) & 0xff) == 8);
  REQUIRE((l1->ebx & 0xff) == 0xaa);  // brand index kept
  REQUIRE((l1->ecx & (1u << 31)) != 0);  // hypervisor
  REQUIRE((l1->ecx & (1u << 5)) == 0);   // no VMX
  REQUIRE((l1->ecx & 1u) == 1u);         // other features kept
  REQUIRE((l1->edx & (1u << 28)) != 0);  // HTT

  auto* l1d = find_cpuid(c, 0x4, 0);
  auto* l3 = find_cpuid(c, 0x4, 2);
  REQUIRE(l1d);
  REQUIRE(l3);
  REQUIRE(l1d->eax >> 26 == 3);
  REQUIRE(((l1d->eax >> 14) & 0xfff) == 0);
  REQUIRE(((l3->eax >> 14) & 0xfff) == 3);
  REQUIRE((l3->eax & 0x3fff) == ((3u << 5) | 3u));

  auto* pmu = find_cpuid(c, 0xa);
  REQUIRE(pmu);
  REQUIRE((pmu->eax | pmu->ebx | pmu->ecx | pmu->edx) == 0);

  auto* smt = find_cpuid(c, 0xb, 0);
  auto* core = find_cpuid(c, 0xb, 1);
  auto* end = find_cpuid(c, 0xb, 2);
  REQUIRE((smt && core && end));
  REQUIRE(smt->eax == 0);
  REQUIRE(smt->ebx == 1);
  REQUIRE(smt->ecx == 0x100);
  REQUIRE(core->eax == 2);
  REQUIRE(core->ebx == 4);
  REQUIRE(core->ecx == 0x201);
  REQUIRE(end->ecx >> 8 == 0);
  REQUIRE(smt->edx == 2);
  REQUIRE(core->edx == 2);
  REQUIRE(end->edx == 2);

  auto* kvm = find_cpuid(c, 0x40000000);
  REQUIRE(kvm);
  REQUIRE(kvm->ebx == 0x4b4d564b);  // KVM signature untouched

  auto* ext = find_cpuid(c, 0x80000001);
  REQUIRE((ext->ecx & 0x4) == 0);  // no SVM
  REQUIRE((ext->ecx & 0x2) != 0);  // CmpLegacy for a multi-core package
  auto* amd_size = find_cpuid(c, 0x80000008);
  REQUIRE((amd_size->ecx & 0xff) == 3);
  REQUIRE(((amd_size->ecx >> 12) & 0xf) == 2);
  REQUIRE(amd_size->eax == 0x3030);
  auto* svm = find_cpuid(c, 0x8000000a);
  REQUIRE((svm->eax | svm->ebx | svm->edx) == 0);
  auto* ext_apic = find_cpuid(c, 0x8000001e);
  REQUIRE(ext_apic->eax == 2);
}

TEST_CASE("CPUID for a single vCPU has no HTT and APIC id 0", "[arch][cpuid]") {
  auto c = vcpu_cpuid(supported(), 0, 1);
  auto* l1 = find_cpuid(c, 0x1);
  REQUIRE(l1->ebx >> 24 == 0);
  REQUIRE(((l1->ebx >> 16) & 0xff) == 1);
  REQUIRE((l1->edx & (1u << 28)) == 0);
  REQUIRE((find_cpuid(c, 0x80000001)->ecx & 0x2) == 0);
  REQUIRE(find_cpuid(c, 0xb, 1)->ebx == 1);
  REQUIRE(find_cpuid(c, 0xb, 1)->eax == 0);
}

TEST_CASE("every vCPU gets a distinct APIC id in all topology leaves", "[arch][cpuid]") {
  for (uint32_t i = 0; i < 32; i++) {
    auto c = vcpu_cpuid(supported(), i, 32);
    REQUIRE(find_cpuid(c, 0x1)->ebx >> 24 == i);
    REQUIRE(find_cpuid(c, 0xb, 0)->edx == i);
    REQUIRE(find_cpuid(c, 0x8000001e)->eax == i);
  }
}
