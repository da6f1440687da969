#include "vmm/seccomp/filters.hpp"

#include <linux/kvm.h>  // ioctl numbers only: the vCPU and loop filters name the ones they allow
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <atomic>
#include <ctime>
#include <span>

#include "common/error.hpp"
#include "common/log.hpp"

namespace frakti::vmm::seccomp {
namespace {

/// A condition on the syscall's arguments; everything else about a rule is its name.
enum class Arg {
  any,         ///< no condition
  no_exec,     ///< mmap/mprotect: arg 2 (prot) without PROT_EXEC, so no new code pages
  unix_only,   ///< socket: arg 0 (domain) is AF_UNIX
  ioctl_list,  ///< ioctl: arg 1 (request) is one of the role's ioctl table
};

struct Rule {
  const char* name;
  Arg arg = Arg::any;
};

// What every thread does without asking: malloc, locks, logging, clocks, signals (the vCPU
// kick and asio's signal pipe may land on any thread), thread exit and process exit.
constexpr Rule kCommon[] = {
    {"read"}, {"write"}, {"readv"}, {"writev"}, {"close"},
    {"futex"}, {"sched_yield"},
    {"epoll_ctl"},  // posting to the asio loop from another thread re-arms its wakeup eventfd
    {"mmap", Arg::no_exec}, {"mprotect", Arg::no_exec}, {"munmap"}, {"mremap"}, {"madvise"},
    {"brk"},
    {"clock_gettime"}, {"clock_nanosleep"}, {"nanosleep"},
    {"rt_sigreturn"}, {"rt_sigprocmask"}, {"restart_syscall"},
    {"getpid"}, {"gettid"}, {"tgkill"},
    {"fstat"}, {"newfstatat"},  // stdio's first write on a stream
    {"exit"}, {"exit_group"},
};

// vCPU threads: KVM_RUN and the device models reached from port-I/O and MMIO exits (serial
// output to the console, irq eventfds, posting stop requests to the loop).
constexpr Rule kVcpu[] = {
    {"ioctl", Arg::ioctl_list},
};
constexpr unsigned long kVcpuIoctls[] = {
    KVM_RUN,
    KVM_GET_REGS, KVM_GET_SREGS,  // the register summary logged on a guest crash
    KVM_IRQ_LINE,                 // legacy device interrupts raised from an exit handler
};

// The event loop: asio (epoll, eventfd, timerfd, its FIONBIO), virtio-blk I/O, TAP, the vsock
// muxer (guest-initiated connections dial <uds>_<port>), the control socket, and teardown once
// the loop has stopped (unlinking sockets, restoring signal handlers, closing the VM).
constexpr Rule kEventLoop[] = {
    {"epoll_wait"}, {"epoll_pwait"},
    {"timerfd_settime"}, {"timerfd_gettime"},
    {"ioctl", Arg::ioctl_list},
    {"fcntl"},
    {"pread64"}, {"pwrite64"}, {"preadv"}, {"pwritev"}, {"fdatasync"}, {"fsync"}, {"lseek"},
    {"socket", Arg::unix_only}, {"connect"}, {"accept4"}, {"accept"},
    {"sendmsg"}, {"recvmsg"}, {"sendto"}, {"recvfrom"}, {"shutdown"},
    {"getsockopt"}, {"setsockopt"}, {"getsockname"}, {"getpeername"},
    {"unlink"}, {"rt_sigaction"},
};
constexpr unsigned long kEventLoopIoctls[] = {
    FIONBIO, FIONREAD,  // asio
    KVM_IRQ_LINE,       // legacy interrupts from loop-side devices (console input)
};

// The control command thread: pause/resume (kicks), stop, and set_drive, which opens the new
// backing file and inspects it.
constexpr Rule kControl[] = {
    {"openat"}, {"statx"}, {"lseek"}, {"fcntl"}, {"fdatasync"}, {"fsync"},
    {"pread64"}, {"pwrite64"},
};

std::span<const Rule> role_rules(Role role) {
  switch (role) {
    case Role::event_loop: return kEventLoop;
    case Role::vcpu: return kVcpu;
    case Role::control: return kControl;
  }
  return {};
}

std::span<const unsigned long> role_ioctls(Role role) {
  switch (role) {
    case Role::event_loop: return kEventLoopIoctls;
    case Role::vcpu: return kVcpuIoctls;
    case Role::control: return {};
  }
  return {};
}

std::atomic<bool> g_enabled{false};

/// Owns a libseccomp context.
class Filter {
 public:
  Filter() : ctx_(seccomp_init(SCMP_ACT_KILL_PROCESS)) {
    if (ctx_ == nullptr) common::throw_error(ENOMEM, "seccomp_init");
  }
  Filter(const Filter&) = delete;
  Filter& operator=(const Filter&) = delete;
  ~Filter() { seccomp_release(ctx_); }

  void add(const Rule& rule, std::span<const unsigned long> ioctls) {
    int nr = seccomp_syscall_resolve_name(rule.name);
    if (nr == __NR_SCMP_ERROR) common::throw_error(EINVAL, fmt::format("seccomp: unknown syscall {}", rule.name));
    switch (rule.arg) {
      case Arg::any:
        check(seccomp_rule_add(ctx_, SCMP_ACT_ALLOW, nr, 0), rule.name);
        break;
      case Arg::no_exec:
        check(seccomp_rule_add(ctx_, SCMP_ACT_ALLOW, nr, 1,
                               SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)), rule.name);
        break;
      case Arg::unix_only:
        check(seccomp_rule_add(ctx_, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX)),
              rule.name);
        break;
      case Arg::ioctl_list:
        // The kernel reads the request as a 32-bit value; compare just those bits.
        for (unsigned long request : ioctls)
          check(seccomp_rule_add(ctx_, SCMP_ACT_ALLOW, nr, 1,
                                 SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, request)),
                rule.name);
        break;
    }
  }

  void load() { check(seccomp_load(ctx_), "load"); }

 private:
  static void check(int rc, std::string_view what) {
    if (rc < 0) common::throw_error(-rc, fmt::format("seccomp: adding/loading rule {}", what));
  }
  scmp_filter_ctx ctx_;
};

}  // namespace

std::string_view to_string(Role role) {
  switch (role) {
    case Role::event_loop: return "event_loop";
    case Role::vcpu: return "vcpu";
    case Role::control: return "control";
  }
  return "unknown";
}

void set_enabled(bool on) { g_enabled.store(on); }
bool enabled() { return g_enabled.load(); }

size_t rule_count(Role role) { return std::size(kCommon) + role_rules(role).size(); }

void install_filter(Role role) {
  // glibc loads the time zone lazily, opening /etc/localtime on the first localtime() call
  // (seen on a vCPU thread in strace); load it now, while opening files is still allowed.
  ::tzset();
  Filter filter;  // seccomp_init sets no_new_privs on load by default
  for (const Rule& r : kCommon) filter.add(r, {});
  for (const Rule& r : role_rules(role)) filter.add(r, role_ioctls(role));
  filter.load();
  common::log::debug("seccomp", "{} filter installed ({} syscalls)", to_string(role),
                     rule_count(role));
}

void install_configured_filter(Role role) {
  if (enabled()) install_filter(role);
}

}  // namespace frakti::vmm::seccomp
