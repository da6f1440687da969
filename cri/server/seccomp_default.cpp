#include "cri/server/seccomp_default.hpp"

#include <algorithm>

namespace frakti::cri {

using nlohmann::json;

namespace {

constexpr int kEperm = 1;
constexpr int kEnosys = 38;
constexpr uint64_t kCloneNewUser = 0x10000000;
// personality(2) flags that weaken the address space: a mapping at address 0 (helps NULL
// dereference exploits), executable data, no ASLR. Bit 31 is in the mask so the query
// personality(0xffffffff) stays allowed.
constexpr uint64_t kPersonalityQueryBit = 0x80000000;
constexpr uint64_t kMmapPageZero = 0x0100000;
constexpr uint64_t kReadImpliesExec = 0x0400000;
constexpr uint64_t kAddrNoRandomize = 0x0040000;

// Always denied (EPERM), with why.
const std::vector<std::string> kDenied = {
    // Loading code into the kernel or replacing it.
    "init_module", "finit_module", "delete_module", "create_module", "query_module",
    "get_kernel_syms", "kexec_load", "kexec_file_load",
    // Whole-machine state: reboot, swap, the system clock, process accounting, quotas.
    "reboot", "swapon", "swapoff", "settimeofday", "stime", "clock_settime", "clock_settime64",
    "clock_adjtime", "clock_adjtime64", "acct", "quotactl", "quotactl_fd",
    // Kernel attack surface not needed by ordinary programs and not namespaced: eBPF
    // programs, perf counters, userfaultfd (a classic race-widening tool), the kernel keyring
    // (shared by every container of a uid), file handles (open_by_handle_at walks out of a
    // bind mount: the "shocker" escape), fanotify on whole mounts.
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "open_by_handle_at", "fanotify_init", "lookup_dcookie",
    // Raw port I/O and legacy interfaces.
    "iopl", "ioperm", "vm86", "vm86old", "uselib", "_sysctl", "nfsservctl", "syslog"};

// Denied unless the container holds CAP_SYS_ADMIN: new mounts and namespaces.
const std::vector<std::string> kDeniedWithoutSysAdmin = {
    "mount", "umount", "umount2", "pivot_root", "unshare", "setns", "fsopen", "fsconfig",
    "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr"};

json errno_rule(const std::vector<std::string>& names, int err) {
  return {{"names", names}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", err}};
}

// Deny name when (arg index & mask) == value.
json masked_rule(const std::string& name, unsigned index, uint64_t mask, uint64_t value) {
  json r = errno_rule({name}, kEperm);
  r["args"] = json::array(
      {{{"index", index}, {"value", mask}, {"valueTwo", value}, {"op", "SCMP_CMP_MASKED_EQ"}}});
  return r;
}

}  // namespace

nlohmann::json default_seccomp_profile(const std::vector<std::string>& capabilities) {
  bool sys_admin = std::find(capabilities.begin(), capabilities.end(), "CAP_SYS_ADMIN") !=
                   capabilities.end();
  json syscalls = json::array({errno_rule(kDenied, kEperm)});
  for (uint64_t flag : {kMmapPageZero, kReadImpliesExec, kAddrNoRandomize})
    syscalls.push_back(masked_rule("personality", 0, kPersonalityQueryBit | flag, flag));
  if (!sys_admin) {
    syscalls.push_back(errno_rule(kDeniedWithoutSysAdmin, kEperm));
    // clone's flags are its first argument on x86; clone3 passes them in memory, where a
    // filter cannot look, so it answers ENOSYS and the C library falls back to clone.
    syscalls.push_back(masked_rule("clone", 0, kCloneNewUser, kCloneNewUser));
    syscalls.push_back(errno_rule({"clone3"}, kEnosys));
  }
  return {{"defaultAction", "SCMP_ACT_ALLOW"},
          {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
          {"syscalls", syscalls}};
}

}  // namespace frakti::cri
