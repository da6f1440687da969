#pragma once
// KvmExitSource: the vCPU loop's ExitSource backed by a real KVM vCPU.

#include "vmm/kvm/vcpu_fd.hpp"
#include "vmm/vcpu/vcpu_thread.hpp"

namespace frakti::vmm::vm {

class KvmExitSource : public vcpu::ExitSource {
 public:
  explicit KvmExitSource(kvm::VcpuFd& vcpu) : vcpu_(vcpu) {}
  kvm::VcpuExit run() override { return vcpu_.run(); }
  void set_immediate_exit(bool on) override { vcpu_.set_immediate_exit(on); }
  /// rip, rsp, control registers and EFER, for crash logs.
  std::string state_summary() override;

 private:
  kvm::VcpuFd& vcpu_;
};

}  // namespace frakti::vmm::vm
