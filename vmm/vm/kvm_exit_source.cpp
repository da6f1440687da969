#include "vmm/vm/kvm_exit_source.hpp"

#include <exception>

#include <fmt/format.h>

namespace frakti::vmm::vm {

std::string KvmExitSource::state_summary() {
  try {
    auto r = vcpu_.get_regs();
    auto s = vcpu_.get_sregs();
    return fmt::format("rip={:#x} rsp={:#x} rflags={:#x} cr0={:#x} cr2={:#x} cr3={:#x} "
                       "cr4={:#x} efer={:#x} cs={:#x}",
                       r.rip, r.rsp, r.rflags, s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.cs.selector);
  } catch (const std::exception& e) {
    return fmt::format("(registers unavailable: {})", e.what());
  }
}

}  // namespace frakti::vmm::vm
