#pragma once
// VmFd: one VM's fd. Memory slots, the in-kernel interrupt controllers and PIT, the fast
// paths (irqfd: an eventfd that raises a GSI; ioeventfd: a guest write that signals an
// eventfd without leaving the kernel) and vCPU creation.

#include <cstddef>
#include <cstdint>
#include <optional>

#include "common/fd.hpp"
#include "vmm/kvm/vcpu_fd.hpp"

namespace frakti::vmm::kvm {

class VmFd {
 public:
  VmFd(common::Fd fd, size_t vcpu_mmap_size) : fd_(std::move(fd)), mmap_size_(vcpu_mmap_size) {}

  /// KVM_SET_TSS_ADDR: three pages KVM needs below 4 GiB (Intel real-mode emulation).
  void set_tss_address(uint64_t gpa);
  /// KVM_SET_IDENTITY_MAP_ADDR: one page for the identity map KVM uses on Intel.
  void set_identity_map_address(uint64_t gpa);
  /// KVM_CREATE_IRQCHIP: in-kernel PIC pair, IOAPIC and per-vCPU LAPICs (before vCPUs).
  void create_irqchip();
  /// KVM_CREATE_PIT2: the in-kernel i8254 timer (and port 0x61), after the irqchip.
  void create_pit2();
  /// KVM_SET_USER_MEMORY_REGION: maps [gpa, gpa+size) to host memory at host.
  void set_user_memory_region(uint32_t slot, uint64_t gpa, uint64_t size, void* host);
  /// KVM_IRQFD: returns an eventfd whose every write raises gsi (edge) on the IOAPIC.
  common::Fd register_irqfd(uint32_t gsi);
  /// KVM_IOEVENTFD: returns an eventfd signalled by guest writes of len bytes at addr (an
  /// I/O port when pio, else MMIO), only of value datamatch when given.
  common::Fd register_ioeventfd(uint64_t addr, uint32_t len, bool pio,
                                std::optional<uint64_t> datamatch = std::nullopt);
  /// KVM_IOEVENTFD for an eventfd someone else owns (a virtio transport's queue notifier);
  /// the fd must stay open while the VM exists.
  void attach_ioeventfd(int eventfd, uint64_t addr, uint32_t len, bool pio,
                        std::optional<uint64_t> datamatch = std::nullopt);
  /// KVM_IRQ_LINE: sets a GSI's level directly (for level-triggered users; irqfd is faster).
  void set_irq_line(uint32_t gsi, bool level);
  /// KVM_CREATE_VCPU with the given APIC id; maps its kvm_run.
  VcpuFd create_vcpu(uint32_t id);

  int fd() const { return fd_.get(); }

 private:
  common::Fd fd_;
  size_t mmap_size_;
};

}  // namespace frakti::vmm::kvm
