#pragma once
// VcpuFd: one vCPU's fd and its mmap'd kvm_run. Only the vCPU's own thread calls run();
// request_immediate_exit() may be called from any thread (it is how a vCPU is kicked out of
// the guest together with a signal).

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/fd.hpp"
#include "vmm/kvm/kvm_types.hpp"
#include "vmm/kvm/vcpu_exit.hpp"

namespace frakti::vmm::kvm {

class VcpuFd {
 public:
  /// Takes the vCPU fd and maps its kvm_run (mmap_size from KVM_GET_VCPU_MMAP_SIZE).
  VcpuFd(common::Fd fd, uint32_t id, size_t mmap_size);
  VcpuFd(VcpuFd&& other) noexcept;
  VcpuFd& operator=(VcpuFd&&) = delete;
  VcpuFd(const VcpuFd&) = delete;
  VcpuFd& operator=(const VcpuFd&) = delete;
  ~VcpuFd();

  uint32_t id() const { return id_; }

  Regs get_regs() const;
  void set_regs(const Regs& regs);
  Sregs get_sregs() const;
  void set_sregs(const Sregs& sregs);
  void set_fpu(const Fpu& fpu);
  /// KVM_SET_MSRS; throws naming the first MSR KVM refused.
  void set_msrs(const std::vector<MsrEntry>& msrs);
  /// KVM_GET_MSRS for the given indexes (values in the same order).
  std::vector<MsrEntry> get_msrs(const std::vector<uint32_t>& indexes) const;
  /// KVM_SET_CPUID2 with the given entries.
  void set_cpuid(const std::vector<CpuidEntry>& entries);
  LapicState get_lapic() const;
  void set_lapic(const LapicState& state);
  /// KVM_GET_MP_STATE (KVM_MP_STATE_*), for diagnostics.
  uint32_t get_mp_state() const;

  /// Runs the guest until the next exit to user space and decodes it. EINTR (a kick or
  /// immediate_exit) becomes Kind::interrupted; other failures throw.
  VcpuExit run();
  /// Sets kvm_run.immediate_exit: while set, run() returns Kind::interrupted at once.
  void set_immediate_exit(bool on);

 private:
  common::Fd fd_;
  uint32_t id_;
  size_t mmap_size_;
  void* run_ = nullptr;  // struct kvm_run*
};

}  // namespace frakti::vmm::kvm
