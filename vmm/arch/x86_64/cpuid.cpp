#include "vmm/arch/x86_64/cpuid.hpp"

namespace frakti::vmm::arch::x86_64 {
namespace {

// Leaf 1
constexpr uint32_t kEcxVmx = 1u << 5;
constexpr uint32_t kEcxHypervisor = 1u << 31;
constexpr uint32_t kEdxHtt = 1u << 28;
constexpr uint32_t kClflushLineSize = 8;  // in 8-byte units: 64-byte lines
// Leaf 0x80000001
constexpr uint32_t kExtEcxSvm = 1u << 2;
constexpr uint32_t kExtEcxCmpLegacy = 1u << 1;
// Leaf 0xb / 0x1f level types (ECX[15:8])
constexpr uint32_t kLevelSmt = 1;
constexpr uint32_t kLevelCore = 2;

}  // namespace

uint32_t topology_bits(uint32_t n) {
  uint32_t bits = 0;
  while (n > 1 && (1u << bits) < n) bits++;
  return bits;
}

const kvm::CpuidEntry* find_cpuid(const std::vector<kvm::CpuidEntry>& entries, uint32_t function,
                                  uint32_t index) {
  for (const auto& e : entries) {
    if (e.function != function) continue;
    if ((e.flags & kvm::kCpuidFlagSignificantIndex) && e.index != index) continue;
    return &e;
  }
  return nullptr;
}

std::vector<kvm::CpuidEntry> vcpu_cpuid(const std::vector<kvm::CpuidEntry>& supported,
                                        uint32_t cpu_index, uint32_t cpu_count) {
  const uint32_t apic_id = cpu_index;
  const uint32_t core_bits = topology_bits(cpu_count);
  std::vector<kvm::CpuidEntry> out;
  out.reserve(supported.size());
  for (kvm::CpuidEntry e : supported) {
    switch (e.function) {
      case 0x1:
        // EBX: APIC id [31:24], logical processors per package [23:16], CLFLUSH size [15:8].
        e.ebx = (apic_id << 24) | ((cpu_count & 0xff) << 16) | (kClflushLineSize << 8) |
                (e.ebx & 0xff);
        e.ecx = (e.ecx & ~kEcxVmx) | kEcxHypervisor;
        e.edx = cpu_count > 1 ? (e.edx | kEdxHtt) : (e.edx & ~kEdxHtt);
        break;
      case 0x4: {
        // Deterministic cache parameters: EAX[31:26] cores per package - 1, EAX[25:14]
        // logical processors sharing the cache - 1 (L3 and beyond: the whole package).
        uint32_t level = (e.eax >> 5) & 0x7;
        uint32_t sharing = level >= 3 ? cpu_count - 1 : 0;
        e.eax = (e.eax & 0x3fff) | ((sharing & 0xfff) << 14) | (((cpu_count - 1) & 0x3f) << 26);
        break;
      }
      case 0xa:
        // No guest PMU: counters are expensive to virtualise and we do not migrate them.
        e.eax = e.ebx = e.ecx = e.edx = 0;
        break;
      case 0xb:
      case 0x1f:
        // Extended topology: level 0 = SMT (1 thread per core), level 1 = core (cpu_count).
        e.edx = apic_id;
        if (e.index == 0) {
          e.eax = 0;
          e.ebx = 1;
          e.ecx = (kLevelSmt << 8) | 0;
        } else if (e.index == 1) {
          e.eax = core_bits;
          e.ebx = cpu_count;
          e.ecx = (kLevelCore << 8) | 1;
        } else {
          e.eax = 0;
          e.ebx = 0;
          e.ecx = e.index & 0xff;  // level type 0: invalid, ends the enumeration
        }
        break;
      case 0x80000001:
        e.ecx &= ~kExtEcxSvm;
        e.ecx = cpu_count > 1 ? (e.ecx | kExtEcxCmpLegacy) : (e.ecx & ~kExtEcxCmpLegacy);
        break;
      case 0x80000008:
        // AMD: ECX[15:12] APIC-id bits for cores, ECX[7:0] cores per package - 1.
        e.ecx = (e.ecx & ~0xf0ffu) | (core_bits << 12) | ((cpu_count - 1) & 0xff);
        break;
      case 0x8000000a:
        // SVM features: nested virtualisation is not offered.
        e.eax = e.ebx = e.ecx = e.edx = 0;
        break;
      case 0x8000001e:
        // AMD extended APIC id; one thread per compute unit, one node.
        e.eax = apic_id;
        e.ebx = apic_id & 0xff;
        e.ecx = 0;
        break;
      default:
        break;
    }
    out.push_back(e);
  }
  return out;
}

}  // namespace frakti::vmm::arch::x86_64
