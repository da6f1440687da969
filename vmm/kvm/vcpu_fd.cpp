#include "vmm/kvm/vcpu_fd.hpp"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <utility>

#include "common/error.hpp"

namespace frakti::vmm::kvm {
namespace {

const char* exit_reason_name(uint32_t r) {
  switch (r) {
    case KVM_EXIT_UNKNOWN: return "UNKNOWN";
    case KVM_EXIT_EXCEPTION: return "EXCEPTION";
    case KVM_EXIT_DEBUG: return "DEBUG";
    case KVM_EXIT_IRQ_WINDOW_OPEN: return "IRQ_WINDOW_OPEN";
    case KVM_EXIT_SET_TPR: return "SET_TPR";
    case KVM_EXIT_TPR_ACCESS: return "TPR_ACCESS";
    case KVM_EXIT_NMI: return "NMI";
    case KVM_EXIT_X86_RDMSR: return "X86_RDMSR";
    case KVM_EXIT_X86_WRMSR: return "X86_WRMSR";
    default: return "other";
  }
}

}  // namespace

VcpuFd::VcpuFd(common::Fd fd, uint32_t id, size_t mmap_size)
    : fd_(std::move(fd)), id_(id), mmap_size_(mmap_size) {
  void* p = ::mmap(nullptr, mmap_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (p == MAP_FAILED) common::throw_errno(fmt::format("mmap kvm_run of vCPU {}", id_));
  run_ = p;
}

VcpuFd::VcpuFd(VcpuFd&& o) noexcept
    : fd_(std::move(o.fd_)), id_(o.id_), mmap_size_(o.mmap_size_),
      run_(std::exchange(o.run_, nullptr)) {}

VcpuFd::~VcpuFd() {
  if (run_) ::munmap(run_, mmap_size_);
}

Regs VcpuFd::get_regs() const {
  Regs r{};
  common::check(::ioctl(fd_.get(), KVM_GET_REGS, &r), "KVM_GET_REGS on vCPU {}", id_);
  return r;
}

void VcpuFd::set_regs(const Regs& regs) {
  common::check(::ioctl(fd_.get(), KVM_SET_REGS, &regs), "KVM_SET_REGS on vCPU {}", id_);
}

Sregs VcpuFd::get_sregs() const {
  Sregs s{};
  common::check(::ioctl(fd_.get(), KVM_GET_SREGS, &s), "KVM_GET_SREGS on vCPU {}", id_);
  return s;
}

void VcpuFd::set_sregs(const Sregs& sregs) {
  common::check(::ioctl(fd_.get(), KVM_SET_SREGS, &sregs), "KVM_SET_SREGS on vCPU {}", id_);
}

void VcpuFd::set_fpu(const Fpu& fpu) {
  common::check(::ioctl(fd_.get(), KVM_SET_FPU, &fpu), "KVM_SET_FPU on vCPU {}", id_);
}

void VcpuFd::set_msrs(const std::vector<MsrEntry>& msrs) {
  size_t bytes = sizeof(kvm_msrs) + msrs.size() * sizeof(kvm_msr_entry);
  auto buf = std::make_unique<uint8_t[]>(bytes);
  std::memset(buf.get(), 0, bytes);
  auto* m = reinterpret_cast<kvm_msrs*>(buf.get());
  m->nmsrs = static_cast<uint32_t>(msrs.size());
  for (size_t i = 0; i < msrs.size(); i++) {
    m->entries[i].index = msrs[i].index;
    m->entries[i].data = msrs[i].data;
  }
  int n = common::check(::ioctl(fd_.get(), KVM_SET_MSRS, m), "KVM_SET_MSRS on vCPU {}", id_);
  // KVM stops at the first MSR it refuses and returns how many it set.
  if (static_cast<size_t>(n) != msrs.size())
    common::throw_error(EINVAL, fmt::format("KVM_SET_MSRS on vCPU {}: KVM refused MSR {:#x}", id_,
                                            msrs[static_cast<size_t>(n)].index));
}

std::vector<MsrEntry> VcpuFd::get_msrs(const std::vector<uint32_t>& indexes) const {
  size_t bytes = sizeof(kvm_msrs) + indexes.size() * sizeof(kvm_msr_entry);
  auto buf = std::make_unique<uint8_t[]>(bytes);
  std::memset(buf.get(), 0, bytes);
  auto* m = reinterpret_cast<kvm_msrs*>(buf.get());
  m->nmsrs = static_cast<uint32_t>(indexes.size());
  for (size_t i = 0; i < indexes.size(); i++) m->entries[i].index = indexes[i];
  int n = common::check(::ioctl(fd_.get(), KVM_GET_MSRS, m), "KVM_GET_MSRS on vCPU {}", id_);
  std::vector<MsrEntry> out;
  for (int i = 0; i < n; i++) out.push_back({m->entries[i].index, m->entries[i].data});
  return out;
}

void VcpuFd::set_cpuid(const std::vector<CpuidEntry>& entries) {
  size_t bytes = sizeof(kvm_cpuid2) + entries.size() * sizeof(kvm_cpuid_entry2);
  auto buf = std::make_unique<uint8_t[]>(bytes);
  std::memset(buf.get(), 0, bytes);
  auto* c = reinterpret_cast<kvm_cpuid2*>(buf.get());
  c->nent = static_cast<uint32_t>(entries.size());
  std::memcpy(c->entries, entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  common::check(::ioctl(fd_.get(), KVM_SET_CPUID2, c), "KVM_SET_CPUID2 on vCPU {} ({} entries)",
                id_, entries.size());
}

LapicState VcpuFd::get_lapic() const {
  LapicState s{};
  common::check(::ioctl(fd_.get(), KVM_GET_LAPIC, &s), "KVM_GET_LAPIC on vCPU {}", id_);
  return s;
}

void VcpuFd::set_lapic(const LapicState& state) {
  common::check(::ioctl(fd_.get(), KVM_SET_LAPIC, &state), "KVM_SET_LAPIC on vCPU {}", id_);
}

uint32_t VcpuFd::get_mp_state() const {
  kvm_mp_state s{};
  common::check(::ioctl(fd_.get(), KVM_GET_MP_STATE, &s), "KVM_GET_MP_STATE on vCPU {}", id_);
  return s.mp_state;
}

void VcpuFd::set_immediate_exit(bool on) {
  auto* run = static_cast<kvm_run*>(run_);
  // Another thread sets this while the vCPU thread may be entering KVM_RUN; the kernel reads
  // it on entry, so a plain atomic store is all the ordering needed.
  std::atomic_ref<uint8_t>(run->immediate_exit).store(on ? 1 : 0, std::memory_order_seq_cst);
}

VcpuExit VcpuFd::run() {
  VcpuExit e;
  if (::ioctl(fd_.get(), KVM_RUN, 0) < 0) {
    if (errno == EINTR || errno == EAGAIN) {
      e.kind = VcpuExit::Kind::interrupted;
      return e;
    }
    common::throw_errno(fmt::format("KVM_RUN on vCPU {}", id_));
  }
  auto* run = static_cast<kvm_run*>(run_);
  auto* base = static_cast<uint8_t*>(run_);
  e.reason = run->exit_reason;
  switch (run->exit_reason) {
    case KVM_EXIT_IO: {
      const auto& io = run->io;
      uint64_t bytes = static_cast<uint64_t>(io.size) * io.count;
      // The kernel fills these, but an out-of-range offset would be memory corruption here.
      if (io.data_offset > mmap_size_ || bytes > mmap_size_ - io.data_offset) {
        e.kind = VcpuExit::Kind::internal_error;
        e.detail = fmt::format("KVM_EXIT_IO data {:#x}+{} outside kvm_run", io.data_offset, bytes);
        return e;
      }
      e.kind = io.direction == KVM_EXIT_IO_IN ? VcpuExit::Kind::io_in : VcpuExit::Kind::io_out;
      e.addr = io.port;
      e.size = io.size;
      e.count = io.count;
      e.data = std::span<uint8_t>(base + io.data_offset, bytes);
      return e;
    }
    case KVM_EXIT_MMIO: {
      auto& m = run->mmio;
      e.kind = m.is_write ? VcpuExit::Kind::mmio_write : VcpuExit::Kind::mmio_read;
      e.addr = m.phys_addr;
      e.size = m.len > sizeof m.data ? sizeof m.data : m.len;
      e.count = 1;
      e.data = std::span<uint8_t>(m.data, e.size);
      return e;
    }
    case KVM_EXIT_HLT: e.kind = VcpuExit::Kind::hlt; return e;
    case KVM_EXIT_SHUTDOWN: e.kind = VcpuExit::Kind::shutdown; return e;
    case KVM_EXIT_SYSTEM_EVENT:
      e.kind = VcpuExit::Kind::system_event;
      e.event_type = run->system_event.type;
      return e;
    case KVM_EXIT_INTR: e.kind = VcpuExit::Kind::interrupted; return e;
    case KVM_EXIT_INTERNAL_ERROR: {
      e.kind = VcpuExit::Kind::internal_error;
      const auto& ie = run->internal;
      e.detail = fmt::format("suberror {}", ie.suberror);
      if (ie.suberror == KVM_INTERNAL_ERROR_EMULATION) e.detail += " (instruction emulation failed)";
      uint32_t n = ie.ndata < 16 ? ie.ndata : 16;
      for (uint32_t i = 0; i < n; i++) e.detail += fmt::format(" data[{}]={:#x}", i, ie.data[i]);
      return e;
    }
    case KVM_EXIT_FAIL_ENTRY:
      e.kind = VcpuExit::Kind::fail_entry;
      e.detail = fmt::format("hardware entry failure reason {:#x} on cpu {}",
                             run->fail_entry.hardware_entry_failure_reason, run->fail_entry.cpu);
      return e;
    default:
      e.kind = VcpuExit::Kind::unknown;
      e.detail = fmt::format("exit reason {} ({})", run->exit_reason,
                             exit_reason_name(run->exit_reason));
      return e;
  }
}

}  // namespace frakti::vmm::kvm
