#pragma once
// The KVM structures other layers may use (arch code fills registers, CPUID and LAPIC state),
// re-exported under frakti names. This header and kvm/*.cpp are the only includers of
// <linux/kvm.h>; everything else sees these aliases.

// Debian 12's kernel headers declare flexible arrays through __DECLARE_FLEX_ARRAY, which in
// C++ adds an empty struct (1 byte) before the array: kvm_cpuid2, kvm_msrs and kvm_msr_list
// then have the wrong size and array offset, and the ioctl numbers built from their sizes are
// wrong too (KVM answers EINVAL). Declare them the way the kernel sees them; the
// static_asserts below catch any include order that defeats this.
#include <linux/stddef.h>
#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[0]
#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>

static_assert(sizeof(kvm_cpuid2) == 8 && offsetof(kvm_cpuid2, entries) == 8,
              "struct kvm_cpuid2 layout differs from the kernel's");
static_assert(sizeof(kvm_msrs) == 8 && offsetof(kvm_msrs, entries) == 8,
              "struct kvm_msrs layout differs from the kernel's");
static_assert(sizeof(kvm_msr_list) == 4 && offsetof(kvm_msr_list, indices) == 4,
              "struct kvm_msr_list layout differs from the kernel's");

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
