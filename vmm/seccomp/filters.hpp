#pragma once
// Per-thread seccomp allowlists for frakti-vmm, one per thread role (the Firecracker model).
//
// Each thread installs its own filter at the start of its body, after its setup and before it
// runs anything the guest can influence (the first KVM_RUN, the first event-loop handler, the
// first control command). Filters apply to the calling thread only (no TSYNC) and are
// inherited by threads it creates later, so the event loop installs its filter only after the
// vCPU and control threads exist. Any syscall outside the role's table kills the whole process
// with SIGSYS: a VMM that does something unexpected must not go on running a guest. The
// syscall number shows in the kernel audit log (dmesg) and in `strace -f`.
//
// Debugging: frakti-vmm --no-seccomp turns every filter off (set_enabled(false)).

#include <string_view>

namespace frakti::vmm::seccomp {

/// The thread roles of frakti-vmm; each has its own allowlist in filters.cpp.
enum class Role {
  event_loop,  ///< the main thread running the Boost.Asio loop: virtio backends, vsock, control I/O
  vcpu,        ///< a vCPU thread: KVM_RUN and the device models it calls into
  control,     ///< the control server's command thread (pause, resume, stop, set_drive)
};

/// The role's name, for log lines.
std::string_view to_string(Role role);

/// Turns filter installation by install_configured_filter() on or off for the whole process.
/// Off until frakti-vmm's main() turns it on, so library code and unit tests of other layers
/// never get filtered by surprise.
void set_enabled(bool on);
/// Whether install_configured_filter() installs anything.
bool enabled();

/// Installs the role's filter on the calling thread (and threads it creates later). Also sets
/// no_new_privs. Throws std::system_error when the kernel or libseccomp refuses.
void install_filter(Role role);

/// install_filter(role) when enabled(); the call each thread body makes.
void install_configured_filter(Role role);

/// How many syscall rules the role's table has (distinct syscalls; ioctl counts once), for logs
/// and tests.
size_t rule_count(Role role);

}  // namespace frakti::vmm::seccomp
