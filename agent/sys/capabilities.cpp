#include "agent/sys/capabilities.hpp"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <charconv>

#include "agent/sys/files.hpp"
#include "common/error.hpp"

namespace frakti::agent::sys {

namespace {
// Index = capability number (include/uapi/linux/capability.h).
constexpr std::array<std::string_view, 41> kNames = {"CAP_CHOWN",
                                                     "CAP_DAC_OVERRIDE",
                                                     "CAP_DAC_READ_SEARCH",
                                                     "CAP_FOWNER",
                                                     "CAP_FSETID",
                                                     "CAP_KILL",
                                                     "CAP_SETGID",
                                                     "CAP_SETUID",
                                                     "CAP_SETPCAP",
                                                     "CAP_LINUX_IMMUTABLE",
                                                     "CAP_NET_BIND_SERVICE",
                                                     "CAP_NET_BROADCAST",
                                                     "CAP_NET_ADMIN",
                                                     "CAP_NET_RAW",
                                                     "CAP_IPC_LOCK",
                                                     "CAP_IPC_OWNER",
                                                     "CAP_SYS_MODULE",
                                                     "CAP_SYS_RAWIO",
                                                     "CAP_SYS_CHROOT",
                                                     "CAP_SYS_PTRACE",
                                                     "CAP_SYS_PACCT",
                                                     "CAP_SYS_ADMIN",
                                                     "CAP_SYS_BOOT",
                                                     "CAP_SYS_NICE",
                                                     "CAP_SYS_RESOURCE",
                                                     "CAP_SYS_TIME",
                                                     "CAP_SYS_TTY_CONFIG",
                                                     "CAP_MKNOD",
                                                     "CAP_LEASE",
                                                     "CAP_AUDIT_WRITE",
                                                     "CAP_AUDIT_CONTROL",
                                                     "CAP_SETFCAP",
                                                     "CAP_MAC_OVERRIDE",
                                                     "CAP_MAC_ADMIN",
                                                     "CAP_SYSLOG",
                                                     "CAP_WAKE_ALARM",
                                                     "CAP_BLOCK_SUSPEND",
                                                     "CAP_AUDIT_READ",
                                                     "CAP_PERFMON",
                                                     "CAP_BPF",
                                                     "CAP_CHECKPOINT_RESTORE"};

struct CapData {
  uint32_t words[2] = {0, 0};
  void add(int cap) { words[cap / 32] |= 1u << (cap % 32); }
};
}  // namespace

std::optional<int> capability_from_name(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<int>(i);
  }
  return std::nullopt;
}

int last_capability() {
  auto text = try_read_file("/proc/sys/kernel/cap_last_cap");
  int value = 0;
  if (text) {
    auto t = trim_right(*text);
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
    if (ec == std::errc() && value > 0 && value < 64) return value;
  }
  return static_cast<int>(kNames.size()) - 1;
}

void drop_bounding_set(const CapabilitySets& sets) {
  int last = last_capability();
  for (int cap = 0; cap <= last; ++cap) {
    bool keep = false;
    for (int c : sets.bounding) keep = keep || c == cap;
    if (keep) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) {
      common::throw_errno(fmt::format("drop capability {} from the bounding set", cap));
    }
  }
}

void apply_capabilities(const CapabilitySets& sets) {
  CapData eff, perm, inh;
  for (int c : sets.effective) eff.add(c);
  for (int c : sets.permitted) perm.add(c);
  for (int c : sets.inheritable) inh.add(c);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; ++i) {
    data[i].effective = eff.words[i];
    data[i].permitted = perm.words[i];
    data[i].inheritable = inh.words[i];
  }
  if (::syscall(SYS_capset, &header, data) < 0) {
    common::throw_errno("capset (effective/permitted/inheritable sets of the container process)");
  }
  common::check(::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0),
                "clear ambient capabilities");
  for (int c : sets.ambient) {
    common::check(::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0),
                  "raise ambient capability {} (it must be permitted and inheritable too)",
                  kNames[static_cast<size_t>(c)]);
  }
}

}  // namespace frakti::agent::sys
