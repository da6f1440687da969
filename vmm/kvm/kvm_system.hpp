#pragma once
// Kvm: the /dev/kvm system fd. Opening it checks the API version and every capability
// frakti-vmm relies on, so a host that cannot run our VMs fails here with one clear message.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "vmm/kvm/kvm_types.hpp"
#include "vmm/kvm/vm_fd.hpp"

namespace frakti::vmm::kvm {

/// A KVM capability frakti-vmm needs, with the first Linux release that has it.
struct RequiredCap {
  int cap;
  const char* name;
  const char* since;
};
/// The capabilities checked by Kvm::open().
const std::vector<RequiredCap>& required_caps();

/// Why this host's KVM, though it opens and has every capability, cannot run our guests, or
/// nullopt. Today one case: PVM's paravirtual nested KVM (module kvm_pvm), whose instruction
/// emulator fails a standard Linux guest during FPU set-up ("KVM internal error: suberror 1").
/// sysfs is normally /sys (a stand-in directory in tests). Kvm::open() logs it as a warning.
std::optional<std::string> unsuitable_kvm_reason(const std::string& sysfs = "/sys");

class Kvm {
 public:
  /// Opens path (normally /dev/kvm), checks KVM_GET_API_VERSION == 12 and required_caps().
  /// Throws std::system_error saying what is missing and what to do about it.
  static Kvm open(const std::string& path = "/dev/kvm");

  /// KVM_CHECK_EXTENSION: > 0 when supported (some capabilities return a count).
  int check_extension(int cap) const;
  /// KVM_GET_SUPPORTED_CPUID: every leaf this host's KVM can offer a guest.
  std::vector<CpuidEntry> supported_cpuid() const;
  /// KVM_GET_MSR_INDEX_LIST: the MSRs KVM can save and restore.
  std::vector<uint32_t> msr_index_list() const;
  /// Size of each vCPU's kvm_run mapping.
  size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }
  /// KVM_CREATE_VM (default machine type).
  VmFd create_vm() const;

  int fd() const { return fd_.get(); }

 private:
  Kvm(common::Fd fd, size_t mmap_size) : fd_(std::move(fd)), vcpu_mmap_size_(mmap_size) {}
  common::Fd fd_;
  size_t vcpu_mmap_size_;
};

}  // namespace frakti::vmm::kvm
