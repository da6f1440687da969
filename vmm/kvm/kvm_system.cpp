#include "vmm/kvm/kvm_system.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <memory>

#include "common/error.hpp"
#include "common/log.hpp"

namespace frakti::vmm::kvm {

const std::vector<RequiredCap>& required_caps() {
  static const std::vector<RequiredCap> caps = {
      {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "2.6.20"},
      {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "2.6.25"},
      {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "2.6.25"},
      {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "2.6.25"},
      {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", "2.6.30"},
      {KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "2.6.32"},
      {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "2.6.32"},
      {KVM_CAP_PIT2, "KVM_CAP_PIT2", "2.6.31"},
      {KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR", "2.6.31"},
      {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "4.11"},
  };
  return caps;
}

std::optional<std::string> unsuitable_kvm_reason(const std::string& sysfs) {
  if (::access((sysfs + "/module/kvm_pvm").c_str(), F_OK) == 0)
    return std::string(
        "this host's KVM is PVM's paravirtual nested KVM (module kvm_pvm), which cannot run a "
        "standard Linux guest: expect the guest to crash with \"KVM internal error: suberror "
        "1\"; use a host with hardware KVM, or run inside tools/kvmbox");
  return std::nullopt;
}

Kvm Kvm::open(const std::string& path) {
  int raw = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (raw < 0) {
    int err = errno;
    if (err == ENOENT)
      common::throw_error(err, fmt::format(
          "open {}: this machine has no KVM device; load kvm_intel or kvm_amd (modprobe), enable "
          "virtualisation in the firmware, or run frakti-vmm inside tools/kvmbox", path));
    if (err == EACCES || err == EPERM)
      common::throw_error(err, fmt::format(
          "open {}: permission denied; run as root or add the user to the kvm group", path));
    common::throw_error(err, fmt::format("open {}", path));
  }
  common::Fd fd(raw);
  int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION)
    common::throw_error(ENOTSUP, fmt::format("{}: KVM API version {} (frakti-vmm needs {})", path,
                                             version, KVM_API_VERSION));
  for (const auto& c : required_caps()) {
    if (::ioctl(fd.get(), KVM_CHECK_EXTENSION, c.cap) <= 0)
      common::throw_error(ENOTSUP, fmt::format("{}: missing {}; frakti-vmm needs Linux >= {} "
                                               "with KVM on an x86-64 host",
                                               path, c.name, c.since));
  }
  int mmap_size = common::check(::ioctl(fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0),
                                "KVM_GET_VCPU_MMAP_SIZE on {}", path);
  if (static_cast<size_t>(mmap_size) < sizeof(kvm_run))
    common::throw_error(EINVAL, fmt::format("{}: kvm_run mapping of {} bytes is too small", path,
                                            mmap_size));
  if (auto why = unsuitable_kvm_reason()) common::log::warn("kvm", "{}: {}", path, *why);
  return Kvm(std::move(fd), static_cast<size_t>(mmap_size));
}

int Kvm::check_extension(int cap) const {
  int rc = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
  return rc < 0 ? 0 : rc;
}

std::vector<CpuidEntry> Kvm::supported_cpuid() const {
  // KVM answers E2BIG until the buffer is large enough; 256 entries suffices today.
  for (uint32_t n = 128; n <= 4096; n *= 2) {
    size_t bytes = sizeof(kvm_cpuid2) + n * sizeof(kvm_cpuid_entry2);
    auto buf = std::make_unique<uint8_t[]>(bytes);
    auto* c = reinterpret_cast<kvm_cpuid2*>(buf.get());
    c->nent = n;
    c->padding = 0;
    if (::ioctl(fd_.get(), KVM_GET_SUPPORTED_CPUID, c) == 0)
      return std::vector<CpuidEntry>(c->entries, c->entries + c->nent);
    if (errno != E2BIG) common::throw_errno("KVM_GET_SUPPORTED_CPUID");
  }
  common::throw_error(E2BIG, "KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
}

std::vector<uint32_t> Kvm::msr_index_list() const {
  kvm_msr_list probe{};
  probe.nmsrs = 0;
  // The first call fails with E2BIG and reports the count.
  if (::ioctl(fd_.get(), KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
    common::throw_errno("KVM_GET_MSR_INDEX_LIST");
  size_t bytes = sizeof(kvm_msr_list) + probe.nmsrs * sizeof(uint32_t);
  auto buf = std::make_unique<uint8_t[]>(bytes);
  auto* list = reinterpret_cast<kvm_msr_list*>(buf.get());
  list->nmsrs = probe.nmsrs;
  common::check(::ioctl(fd_.get(), KVM_GET_MSR_INDEX_LIST, list), "KVM_GET_MSR_INDEX_LIST");
  return std::vector<uint32_t>(list->indices, list->indices + list->nmsrs);
}

VmFd Kvm::create_vm() const {
  int vm = common::retry_eintr([&] { return ::ioctl(fd_.get(), KVM_CREATE_VM, 0); });
  if (vm < 0) common::throw_errno("KVM_CREATE_VM");
  // KVM_CREATE_VM returns an fd without O_CLOEXEC on older kernels; set it explicitly.
  common::Fd fd(vm);
  common::check(::fcntl(fd.get(), F_SETFD, FD_CLOEXEC), "fcntl FD_CLOEXEC on the VM fd");
  return VmFd(std::move(fd), vcpu_mmap_size_);
}

}  // namespace frakti::vmm::kvm
