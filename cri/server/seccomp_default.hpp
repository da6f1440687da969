#pragma once
// frakti's RuntimeDefault seccomp profile for runc containers, as an OCI linux.seccomp object.
//
// It is a denylist: every syscall is allowed except those a container has no business making
// (kernel modules, kexec, reboot, swap, the clock, bpf, perf, userfaultfd, the kernel keyring,
// open_by_handle_at, accounting, quotas, raw I/O ports, legacy vm86/uselib/_sysctl, dangerous
// personality flags) and, unless the container holds CAP_SYS_ADMIN, the syscalls that make
// new mounts or namespaces (mount, pivot_root, unshare, setns, clone with CLONE_NEWUSER,
// clone3). Most of these are refused by the kernel anyway without capabilities the container
// lacks; the filter keeps the kernel code behind them out of reach (user namespaces give a
// process those capabilities over new namespaces, which is how most container escapes
// started). docs/cri.md explains the choice of a denylist over Docker's allowlist.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace frakti::cri {

/// The RuntimeDefault profile for a container with these capabilities ("CAP_SYS_ADMIN", ...):
/// with CAP_SYS_ADMIN the mount and namespace syscalls stay allowed, as in Docker.
nlohmann::json default_seccomp_profile(const std::vector<std::string>& capabilities);

}  // namespace frakti::cri
