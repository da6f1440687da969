#pragma once
// The KVM structures other layers may use (arch code fills registers, CPUID and LAPIC state),
// re-exported under frakti names. This header and kvm/*.cpp are the only includers of
// <linux/kvm.h>; everything else sees these aliases.

#include <linux/kvm.h>

#include <cstdint>

namespace frakti::vmm::kvm {

using Regs = kvm_regs;
using Sregs = kvm_sregs;
using Segment = kvm_segment;
using Fpu = kvm_fpu;
using LapicState = kvm_lapic_state;
using CpuidEntry = kvm_cpuid_entry2;

/// CpuidEntry::flags bit: the entry depends on the sub-leaf index in ECX.
inline constexpr uint32_t kCpuidFlagSignificantIndex = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

/// One model-specific register value.
struct MsrEntry {
  uint32_t index = 0;
  uint64_t data = 0;
};

}  // namespace frakti::vmm::kvm
