#include "vmm/seccomp/filters.hpp"

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <functional>
#include <string>

using frakti::vmm::seccomp::Role;
namespace seccomp = frakti::vmm::seccomp;

namespace {

/// Runs `body` in a forked child after installing `role`'s filter (when install is true);
/// the child exits 0 when body returns. Returns the waitpid status.
int in_filtered_child(Role role, const std::function<void()>& body, bool install = true) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    try {
      if (install) seccomp::install_filter(role);
    } catch (...) {
      ::_exit(90);
    }
    body();
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return status;
}

bool killed_by_sigsys(int status) {
  UNSCOPED_INFO("wait status " << status);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
}
bool exited_ok(int status) {
  UNSCOPED_INFO("wait status " << status << " (exit code " << WEXITSTATUS(status) << ")");
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void exit_unless(bool ok, int code) {
  if (!ok) ::_exit(code);
}

struct Forbidden {
  const char* what;
  std::function<void()> body;
};

// Each must die before reaching _exit(0); the syscalls would otherwise succeed or fail
// harmlessly.
const Forbidden kEverywhere[] = {
    {"execve", [] { char* argv[] = {nullptr}; ::syscall(SYS_execve, "/bin/true", argv, argv); }},
    {"fork (clone)", [] { ::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); }},
    {"ptrace", [] { ::syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0); }},
    {"socket AF_INET", [] { ::syscall(SYS_socket, AF_INET, SOCK_STREAM, 0); }},
    {"mmap PROT_EXEC", [] {
       ::syscall(SYS_mmap, nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
     }},
    {"mprotect PROT_EXEC", [] { ::syscall(SYS_mprotect, nullptr, 4096, PROT_EXEC); }},
    {"kill", [] { ::syscall(SYS_kill, 1, 0); }},
    {"setuid", [] { ::syscall(SYS_setuid, 0); }},
    {"mount", [] { ::syscall(SYS_mount, "none", "/", "tmpfs", 0, nullptr); }},
    {"unshare", [] { ::syscall(SYS_unshare, 0); }},
    {"prctl", [] { ::syscall(SYS_prctl, 0, 0, 0, 0, 0); }},
    {"seccomp (new filter)", [] { ::syscall(SYS_seccomp, 0, 0, nullptr); }},
};

}  // namespace

TEST_CASE("every role kills the process on syscalls no VMM thread makes", "[seccomp]") {
  for (Role role : {Role::vcpu, Role::event_loop, Role::control}) {
    for (const auto& f : kEverywhere) {
      INFO(std::string(seccomp::to_string(role)) + ": " + f.what);
      CHECK(killed_by_sigsys(in_filtered_child(role, f.body)));
    }
  }
}

TEST_CASE("common syscalls stay allowed in every role", "[seccomp]") {
  for (Role role : {Role::vcpu, Role::event_loop, Role::control}) {
    INFO(seccomp::to_string(role));
    int status = in_filtered_child(role, [] {
      exit_unless(::syscall(SYS_getpid) > 0, 10);
      exit_unless(::syscall(SYS_gettid) > 0, 11);
      void* p = ::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      exit_unless(p != MAP_FAILED, 12);
      exit_unless(::munmap(p, 1 << 20) == 0, 13);
      struct timespec ts {};
      exit_unless(::syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) == 0, 14);
      exit_unless(::syscall(SYS_write, -1, "x", 1) == -1 && errno == EBADF, 15);
      std::string s(100000, 'x');  // malloc growth (brk/mmap)
      exit_unless(s.size() == 100000, 16);
    });
    CHECK(exited_ok(status));
  }
}

TEST_CASE("vcpu filter: only KVM ioctls, no sockets or opens", "[seccomp]") {
  // KVM_RUN on a bad fd reaches the kernel (EBADF) instead of killing the thread.
  CHECK(exited_ok(in_filtered_child(Role::vcpu, [] {
    exit_unless(::syscall(SYS_ioctl, -1, KVM_RUN, 0) == -1 && errno == EBADF, 20);
    exit_unless(::syscall(SYS_ioctl, -1, KVM_GET_REGS, 0) == -1 && errno == EBADF, 21);
  })));
  CHECK(killed_by_sigsys(in_filtered_child(Role::vcpu, [] { ::syscall(SYS_ioctl, -1, FIONBIO, 0); })));
  CHECK(killed_by_sigsys(in_filtered_child(Role::vcpu, [] {
    ::syscall(SYS_ioctl, -1, KVM_SET_USER_MEMORY_REGION, 0);
  })));
  // Upper bits set: the kernel would still see KVM_SET_REGS; the filter compares the low 32 bits.
  CHECK(killed_by_sigsys(in_filtered_child(Role::vcpu, [] {
    ::syscall(SYS_ioctl, -1, (1UL << 32) | KVM_SET_REGS, 0);
  })));
  CHECK(killed_by_sigsys(in_filtered_child(Role::vcpu, [] { ::syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0); })));
  CHECK(killed_by_sigsys(in_filtered_child(Role::vcpu, [] { ::syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY); })));
  CHECK(killed_by_sigsys(in_filtered_child(Role::vcpu, [] { ::syscall(SYS_epoll_wait, -1, nullptr, 1, 0); })));
}

TEST_CASE("event_loop filter: Unix sockets and file I/O, no opens", "[seccomp]") {
  CHECK(exited_ok(in_filtered_child(Role::event_loop, [] {
    long fd = ::syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    exit_unless(fd >= 0, 30);
    int on = 1;
    exit_unless(::syscall(SYS_ioctl, fd, FIONBIO, &on) == 0, 31);
    exit_unless(::syscall(SYS_shutdown, fd, SHUT_RDWR) == 0 || errno == ENOTCONN, 32);
    exit_unless(::syscall(SYS_close, fd) == 0, 33);
    exit_unless(::syscall(SYS_epoll_wait, -1, nullptr, 1, 0) == -1 && errno == EBADF, 34);
    exit_unless(::syscall(SYS_fdatasync, -1) == -1 && errno == EBADF, 35);
    exit_unless(::syscall(SYS_ioctl, -1, KVM_IRQ_LINE, 0) == -1 && errno == EBADF, 36);
  })));
  CHECK(killed_by_sigsys(in_filtered_child(Role::event_loop, [] { ::syscall(SYS_ioctl, -1, KVM_RUN, 0); })));
  CHECK(killed_by_sigsys(in_filtered_child(Role::event_loop, [] {
    ::syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY);
  })));
  CHECK(killed_by_sigsys(in_filtered_child(Role::event_loop, [] { ::syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0); })));
}

TEST_CASE("control filter: opens files for set_drive, no sockets or ioctls", "[seccomp]") {
  CHECK(exited_ok(in_filtered_child(Role::control, [] {
    long fd = ::syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY | O_CLOEXEC);
    exit_unless(fd >= 0, 40);
    exit_unless(::syscall(SYS_close, fd) == 0, 41);
  })));
  CHECK(killed_by_sigsys(in_filtered_child(Role::control, [] { ::syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0); })));
  CHECK(killed_by_sigsys(in_filtered_child(Role::control, [] { ::syscall(SYS_ioctl, -1, KVM_RUN, 0); })));
}

TEST_CASE("install_configured_filter follows set_enabled", "[seccomp]") {
  auto forbidden_for_vcpu = [] {
    seccomp::install_configured_filter(Role::vcpu);
    ::syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
  };
  CHECK_FALSE(seccomp::enabled());  // off until frakti-vmm's main turns it on
  CHECK(exited_ok(in_filtered_child(Role::vcpu, forbidden_for_vcpu, false)));
  seccomp::set_enabled(true);
  CHECK(killed_by_sigsys(in_filtered_child(Role::vcpu, forbidden_for_vcpu, false)));
  seccomp::set_enabled(false);
}

TEST_CASE("role tables are non-trivial and distinct", "[seccomp]") {
  CHECK(seccomp::rule_count(Role::vcpu) < seccomp::rule_count(Role::event_loop));
  CHECK(seccomp::rule_count(Role::control) < seccomp::rule_count(Role::event_loop));
  CHECK(seccomp::to_string(Role::control) == "control");
}
