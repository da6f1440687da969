#include "vmm/kvm/vm_fd.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include "common/error.hpp"
#include "vmm/kvm/kvm_types.hpp"

namespace frakti::vmm::kvm {

void VmFd::set_tss_address(uint64_t gpa) {
  common::check(::ioctl(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(gpa)),
                "KVM_SET_TSS_ADDR {:#x}", gpa);
}

void VmFd::set_identity_map_address(uint64_t gpa) {
  uint64_t addr = gpa;
  common::check(::ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &addr),
                "KVM_SET_IDENTITY_MAP_ADDR {:#x}", gpa);
}

void VmFd::create_irqchip() {
  common::check(::ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0), "KVM_CREATE_IRQCHIP");
}

void VmFd::create_pit2() {
  kvm_pit_config cfg{};
  // With KVM_PIT_SPEAKER_DUMMY KVM also answers port 0x61 (PIT channel 2 gate and output,
  // which the guest's timer calibration polls) in the kernel instead of exiting to us.
  cfg.flags = KVM_PIT_SPEAKER_DUMMY;
  common::check(::ioctl(fd_.get(), KVM_CREATE_PIT2, &cfg), "KVM_CREATE_PIT2");
}

void VmFd::set_user_memory_region(uint32_t slot, uint64_t gpa, uint64_t size, void* host) {
  kvm_userspace_memory_region r{};
  r.slot = slot;
  r.guest_phys_addr = gpa;
  r.memory_size = size;
  r.userspace_addr = reinterpret_cast<uint64_t>(host);
  common::check(::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &r),
                "KVM_SET_USER_MEMORY_REGION slot {} ({:#x}+{:#x})", slot, gpa, size);
}

common::Fd VmFd::register_irqfd(uint32_t gsi) {
  common::Fd efd(common::check(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd for GSI {}",
                               gsi));
  kvm_irqfd req{};
  req.fd = static_cast<uint32_t>(efd.get());
  req.gsi = gsi;
  common::check(::ioctl(fd_.get(), KVM_IRQFD, &req), "KVM_IRQFD for GSI {}", gsi);
  return efd;
}

common::Fd VmFd::register_ioeventfd(uint64_t addr, uint32_t len, bool pio,
                                    std::optional<uint64_t> datamatch) {
  common::Fd efd(common::check(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
                               "eventfd for ioeventfd at {:#x}", addr));
  attach_ioeventfd(efd.get(), addr, len, pio, datamatch);
  return efd;
}

void VmFd::attach_ioeventfd(int eventfd, uint64_t addr, uint32_t len, bool pio,
                            std::optional<uint64_t> datamatch) {
  kvm_ioeventfd req{};
  req.addr = addr;
  req.len = len;
  req.fd = eventfd;
  if (pio) req.flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (datamatch) {
    req.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    req.datamatch = *datamatch;
  }
  common::check(::ioctl(fd_.get(), KVM_IOEVENTFD, &req), "KVM_IOEVENTFD at {:#x} ({} bytes, {})",
                addr, len, pio ? "port" : "mmio");
}

void VmFd::set_irq_line(uint32_t gsi, bool level) {
  kvm_irq_level irq{};
  irq.irq = gsi;
  irq.level = level ? 1 : 0;
  common::check(::ioctl(fd_.get(), KVM_IRQ_LINE, &irq), "KVM_IRQ_LINE GSI {}", gsi);
}

VcpuFd VmFd::create_vcpu(uint32_t id) {
  int raw = ::ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (raw < 0) common::throw_errno(fmt::format("KVM_CREATE_VCPU {}", id));
  common::Fd fd(raw);
  common::check(::fcntl(fd.get(), F_SETFD, FD_CLOEXEC), "fcntl FD_CLOEXEC on vCPU {}", id);
  return VcpuFd(std::move(fd), id, mmap_size_);
}

}  // namespace frakti::vmm::kvm
