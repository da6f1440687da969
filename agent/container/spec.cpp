#include "agent/container/spec.hpp"

#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <set>

#include "agent/agent_error.hpp"
#include "agent/container/seccomp.hpp"

namespace frakti::agent::container {

namespace {

bool has_nul(const std::string& s) {
  return s.find('\0') != std::string::npos;
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

// An absolute path without NUL and without ".." components (a mount destination or masked
// path; symlinks are dealt with when the path is resolved inside the rootfs).
void check_container_path(const std::string& path, const std::string& field) {
  if (path.empty() || path[0] != '/')
    invalid_argument("{} '{}' is not an absolute path", field, path);
  if (has_nul(path)) invalid_argument("{} contains a NUL byte", field);
  if (path.size() > 4096) invalid_argument("{} is longer than 4096 bytes", field);
  size_t pos = 0;
  while (pos < path.size()) {
    size_t end = path.find('/', pos + 1);
    std::string_view part(path.data() + pos + 1,
                          (end == std::string::npos ? path.size() : end) - pos - 1);
    if (part == "..") invalid_argument("{} '{}' contains a '..' component", field, path);
    pos = end == std::string::npos ? path.size() : end;
  }
}

struct MountFlag {
  std::string_view name;
  bool clear;
  unsigned long flag;
};
constexpr std::array<MountFlag, 20> kMountFlags = {{
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},
    {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},
    {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},
    {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},
    {"mand", false, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},
    {"atime", true, MS_NOATIME},
    {"nodiratime", false, MS_NODIRATIME},
    {"diratime", true, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME},
}};

struct Propagation {
  std::string_view name;
  unsigned long flags;
};
constexpr std::array<Propagation, 8> kPropagation = {{
    {"private", MS_PRIVATE},
    {"rprivate", MS_PRIVATE | MS_REC},
    {"slave", MS_SLAVE},
    {"rslave", MS_SLAVE | MS_REC},
    {"shared", MS_SHARED},
    {"rshared", MS_SHARED | MS_REC},
    {"unbindable", MS_UNBINDABLE},
    {"runbindable", MS_UNBINDABLE | MS_REC},
}};

// "blockdev": the raw device of a drive (drive_serial), bind-mounted as a device node.
constexpr std::array<std::string_view, 13> kMountTypes = {
    "bind",  "tmpfs", "proc", "sysfs", "devpts", "mqueue",  "cgroup2",
    "ext4",  "erofs", "xfs",  "vfat",  "none",   "blockdev"};

struct RlimitName {
  std::string_view name;
  int resource;
};
constexpr std::array<RlimitName, 16> kRlimits = {{
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
}};

std::vector<int> parse_caps(const google::protobuf::RepeatedPtrField<std::string>& names,
                            const std::string& field) {
  std::vector<int> caps;
  for (const auto& name : names) {
    auto cap = sys::capability_from_name(name);
    if (!cap) invalid_argument("{}: unknown capability '{}'", field, name);
    if (std::find(caps.begin(), caps.end(), *cap) == caps.end()) caps.push_back(*cap);
  }
  return caps;
}

bool is_subset(const std::vector<int>& a, const std::vector<int>& b) {
  return std::all_of(a.begin(), a.end(),
                     [&](int c) { return std::find(b.begin(), b.end(), c) != b.end(); });
}

void check_hostname(const std::string& name) {
  if (name.size() > 64) invalid_argument("hostname '{}' is longer than 64 bytes", name);
  for (char c : name) {
    if (!is_name_char(c))
      invalid_argument("hostname '{}' contains the byte {:#04x}", name,
                       static_cast<unsigned char>(c));
  }
}

void check_sysctl(const std::string& key, const std::string& value) {
  if (key.empty() || key.size() > 256)
    invalid_argument("sysctl name '{}' is empty or too long", key);
  for (char c : key) {
    if (!is_name_char(c) && c != '/')
      invalid_argument("sysctl name '{}' contains the byte {:#04x}", key,
                       static_cast<unsigned char>(c));
  }
  if (key.find("..") != std::string::npos || key.front() == '.' || key.front() == '/') {
    invalid_argument(
        "sysctl name '{}' is not a sysctl (it must not contain '..' or start with '.' or '/')",
        key);
  }
  if (has_nul(value) || value.find('\n') != std::string::npos) {
    invalid_argument("sysctl {}: value contains a newline or NUL", key);
  }
}

NamespacesSpec parse_namespaces(const v1::CreateContainerRequest& request) {
  NamespacesSpec ns;
  ns.clone_flags = CLONE_NEWNS;  // always: the container's mounts must not touch the agent
  std::set<int> seen;
  for (int i = 0; i < request.namespaces_size(); ++i) {
    const auto& n = request.namespaces(i);
    if (!seen.insert(n.type()).second)
      invalid_argument("namespaces[{}]: type {} listed twice", i, static_cast<int>(n.type()));
    bool own = n.mode() == v1::Namespace::MODE_CONTAINER;
    switch (n.type()) {
      case v1::Namespace::TYPE_MOUNT:
        if (!own)
          invalid_argument("namespaces[{}]: a pod-wide mount namespace is not supported", i);
        break;
      case v1::Namespace::TYPE_PID:
        if (own)
          ns.clone_flags |= CLONE_NEWPID;
        else
          ns.pod_pid = true;
        break;
      case v1::Namespace::TYPE_IPC:
        if (own) ns.clone_flags |= CLONE_NEWIPC;
        break;
      case v1::Namespace::TYPE_UTS:
        if (own) ns.clone_flags |= CLONE_NEWUTS;
        break;
      case v1::Namespace::TYPE_NETWORK:
        if (own) ns.clone_flags |= CLONE_NEWNET;
        break;
      case v1::Namespace::TYPE_CGROUP:
        if (own) ns.clone_flags |= CLONE_NEWCGROUP;
        break;
      case v1::Namespace::TYPE_USER:
        invalid_argument(
            "namespaces[{}]: user namespaces are not supported in the guest (the VM is the "
            "isolation boundary)",
            i);
      default:
        invalid_argument("namespaces[{}]: unknown namespace type {}", i,
                         static_cast<int>(n.type()));
    }
  }
  return ns;
}


}  // namespace

ResourcesSpec parse_resources(const v1::Resources& r) {
  ResourcesSpec out;
  if (r.memory_limit_bytes() < 0)
    invalid_argument("resources.memory_limit_bytes {} is negative", r.memory_limit_bytes());
  if (r.memory_reservation_bytes() < 0)
    invalid_argument("resources.memory_reservation_bytes {} is negative",
                     r.memory_reservation_bytes());
  if (r.memory_swap_limit_bytes() < -1)
    invalid_argument("resources.memory_swap_limit_bytes {} is below -1",
                     r.memory_swap_limit_bytes());
  if (r.memory_swap_limit_bytes() > 0 && r.memory_swap_limit_bytes() < r.memory_limit_bytes()) {
    invalid_argument(
        "resources.memory_swap_limit_bytes {} is below memory_limit_bytes {} (it counts memory "
        "plus swap)",
        r.memory_swap_limit_bytes(), r.memory_limit_bytes());
  }
  if (r.cpu_quota_us() < -1)
    invalid_argument("resources.cpu_quota_us {} is below -1", r.cpu_quota_us());
  if (r.cpu_period_us() != 0 && (r.cpu_period_us() < 1000 || r.cpu_period_us() > 1000000)) {
    invalid_argument("resources.cpu_period_us {} is outside 1000..1000000", r.cpu_period_us());
  }
  if (r.cpu_weight() > 10000)
    invalid_argument("resources.cpu_weight {} is outside 1..10000", r.cpu_weight());
  if (r.cpu_shares() > 262144)
    invalid_argument("resources.cpu_shares {} is above 262144", r.cpu_shares());
  if (r.pids_limit() < -1) invalid_argument("resources.pids_limit {} is below -1", r.pids_limit());
  for (char c : r.cpuset_cpus() + r.cpuset_mems()) {
    if (!((c >= '0' && c <= '9') || c == ',' || c == '-'))
      invalid_argument("resources.cpuset: '{}' / '{}' is not a CPU list", r.cpuset_cpus(),
                       r.cpuset_mems());
  }
  out.memory_limit = r.memory_limit_bytes();
  out.memory_reservation = r.memory_reservation_bytes();
  out.memory_swap_limit = r.memory_swap_limit_bytes();
  out.cpu_quota_us = r.cpu_quota_us();
  out.cpu_period_us = r.cpu_period_us();
  out.cpu_weight = r.cpu_weight();
  if (out.cpu_weight == 0 && r.cpu_shares() != 0) {
    // The conversion runc and the kernel docs use: shares 2..262144 map onto weight 1..10000.
    uint64_t shares = std::max<uint64_t>(r.cpu_shares(), 2);
    out.cpu_weight = 1 + ((shares - 2) * 9999) / 262142;
  }
  out.cpuset_cpus = r.cpuset_cpus();
  out.cpuset_mems = r.cpuset_mems();
  out.pids_limit = r.pids_limit();
  return out;
}

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 128 || id[0] == '.' || id[0] == '-') return false;
  return std::all_of(id.begin(), id.end(), is_name_char);
}

bool valid_serial(const std::string& serial) {
  if (serial.empty() || serial.size() > 20 || serial == "." || serial == "..") return false;
  return std::all_of(serial.begin(), serial.end(), is_name_char);
}

ProcessSpec parse_process_spec(const v1::Process& p, const std::string& field) {
  ProcessSpec out;
  if (p.args_size() == 0)
    invalid_argument("{}.args is empty: a process needs at least the program to run", field);
  for (int i = 0; i < p.args_size(); ++i) {
    if (has_nul(p.args(i))) invalid_argument("{}.args[{}] contains a NUL byte", field, i);
    out.args.push_back(p.args(i));
  }
  if (out.args[0].empty()) invalid_argument("{}.args[0] is empty", field);
  for (int i = 0; i < p.env_size(); ++i) {
    const auto& e = p.env(i);
    if (has_nul(e)) invalid_argument("{}.env[{}] contains a NUL byte", field, i);
    if (e.find('=') == std::string::npos || e[0] == '=')
      invalid_argument("{}.env[{}] '{}' is not KEY=value", field, i, e);
    out.env.push_back(e);
  }
  if (!p.cwd().empty()) {
    check_container_path(p.cwd(), field + ".cwd");
    out.cwd = p.cwd();
  }
  const auto& u = p.user();
  if (!u.username().empty()) {
    if (has_nul(u.username()) || u.username().find(':') != std::string::npos ||
        u.username().size() > 256) {
      invalid_argument("{}.user.username '{}' is not a user name", field, u.username());
    }
    out.user.username = u.username();
  }
  out.user.uid = u.uid();
  out.user.gid = u.gid();
  if (u.additional_gids_size() > 1024)
    invalid_argument("{}.user.additional_gids has more than 1024 groups", field);
  out.user.additional_gids.assign(u.additional_gids().begin(), u.additional_gids().end());
  out.terminal = p.terminal();
  out.stdin_stream = p.stdin_stream();
  out.stdout_stream = p.stdout_stream();
  out.stderr_stream = p.stderr_stream();
  if (p.terminal() && p.stderr_stream() != 0) {
    invalid_argument("{}: a terminal process has no separate stderr (stderr_stream must be 0)",
                     field);
  }
  std::set<uint32_t> streams;
  for (uint32_t s : {p.stdin_stream(), p.stdout_stream(), p.stderr_stream()}) {
    if (s != 0 && !streams.insert(s).second)
      invalid_argument("{}: stream id {} is used twice", field, s);
  }
  if (p.terminal_rows() > 0xffff || p.terminal_cols() > 0xffff)
    invalid_argument("{}: terminal size {}x{} is too large", field, p.terminal_rows(),
                     p.terminal_cols());
  out.rows = p.terminal_rows();
  out.cols = p.terminal_cols();
  const auto& c = p.capabilities();
  out.capabilities.bounding = parse_caps(c.bounding(), field + ".capabilities.bounding");
  out.capabilities.effective = parse_caps(c.effective(), field + ".capabilities.effective");
  out.capabilities.inheritable = parse_caps(c.inheritable(), field + ".capabilities.inheritable");
  out.capabilities.permitted = parse_caps(c.permitted(), field + ".capabilities.permitted");
  out.capabilities.ambient = parse_caps(c.ambient(), field + ".capabilities.ambient");
  if (!is_subset(out.capabilities.effective, out.capabilities.permitted)) {
    invalid_argument("{}.capabilities: every effective capability must also be permitted", field);
  }
  if (!is_subset(out.capabilities.ambient, out.capabilities.permitted) ||
      !is_subset(out.capabilities.ambient, out.capabilities.inheritable)) {
    invalid_argument(
        "{}.capabilities: every ambient capability must also be permitted and inheritable", field);
  }
  out.no_new_privileges = p.no_new_privileges();
  std::set<int> seen;
  for (int i = 0; i < p.rlimits_size(); ++i) {
    const auto& r = p.rlimits(i);
    auto it = std::find_if(kRlimits.begin(), kRlimits.end(),
                           [&](const RlimitName& n) { return n.name == r.type(); });
    if (it == kRlimits.end())
      invalid_argument("{}.rlimits[{}]: unknown type '{}'", field, i, r.type());
    if (r.soft() > r.hard())
      invalid_argument("{}.rlimits[{}] {}: soft {} is above hard {}", field, i, r.type(), r.soft(),
                       r.hard());
    if (!seen.insert(it->resource).second)
      invalid_argument("{}.rlimits[{}]: {} listed twice", field, i, r.type());
    out.rlimits.push_back({it->resource, r.soft(), r.hard()});
  }
  if (p.has_oom_score_adj()) {
    if (p.oom_score_adj() < -1000 || p.oom_score_adj() > 1000)
      invalid_argument("{}.oom_score_adj {} is outside -1000..1000", field, p.oom_score_adj());
    out.oom_score_adj = p.oom_score_adj();
  }
  if (p.has_umask()) {
    if (p.umask() > 0777)
      invalid_argument("{}.umask {:o} is not a file mode mask", field, p.umask());
    out.umask = static_cast<mode_t>(p.umask());
  }
  return out;
}

MountSpec parse_mount_spec(const v1::Mount& m, int index) {
  std::string field = fmt::format("mounts[{}]", index);
  MountSpec out;
  check_container_path(m.destination(), field + ".destination");
  out.destination = m.destination();
  out.type = m.type().empty() ? "none" : m.type();
  if (std::find(kMountTypes.begin(), kMountTypes.end(), out.type) == kMountTypes.end()) {
    invalid_argument("{} ({}): unsupported mount type '{}'", field, m.destination(), m.type());
  }
  if (m.source_case() == v1::Mount::kDriveSerial) {
    if (!valid_serial(m.drive_serial()))
      invalid_argument("{}: drive serial '{}' is not a virtio-blk serial", field, m.drive_serial());
    out.drive_serial = m.drive_serial();
  } else {
    if (has_nul(m.path())) invalid_argument("{}.path contains a NUL byte", field);
    out.source = m.path();
  }
  std::vector<std::string> data;
  for (const auto& opt : m.options()) {
    if (has_nul(opt) || opt.find(',') != std::string::npos)
      invalid_argument("{}: option '{}' contains a comma or NUL", field, opt);
    if (opt == "bind" || opt == "rbind") {
      out.bind = true;
      out.recursive = out.recursive || opt == "rbind";
      continue;
    }
    auto flag = std::find_if(kMountFlags.begin(), kMountFlags.end(),
                             [&](const MountFlag& f) { return f.name == opt; });
    if (flag != kMountFlags.end()) {
      if (flag->clear)
        out.flags &= ~flag->flag;
      else
        out.flags |= flag->flag;
      continue;
    }
    auto prop = std::find_if(kPropagation.begin(), kPropagation.end(),
                             [&](const Propagation& p) { return p.name == opt; });
    if (prop != kPropagation.end()) {
      out.propagation = prop->flags;
      continue;
    }
    data.push_back(opt);
  }
  if (out.type == "bind") out.bind = true;
  if (out.bind) {
    if (out.source.empty() || out.source[0] != '/')
      invalid_argument("{} ({}): a bind mount needs an absolute source path, got '{}'", field,
                       m.destination(), out.source);
    if (!data.empty())
      invalid_argument("{} ({}): unknown bind mount option '{}'", field, m.destination(),
                       data.front());
  } else if ((out.type == "ext4" || out.type == "xfs" || out.type == "vfat" ||
              out.type == "erofs") &&
             out.drive_serial.empty()) {
    invalid_argument("{} ({}): a {} mount needs a drive_serial source", field, m.destination(),
                     out.type);
  } else if (out.type == "blockdev") {
    if (out.drive_serial.empty())
      invalid_argument("{} ({}): a blockdev mount needs a drive_serial source", field,
                       m.destination());
    if (!data.empty())
      invalid_argument("{} ({}): unknown blockdev mount option '{}'", field, m.destination(),
                       data.front());
  } else if (out.type == "none") {
    invalid_argument("{} ({}): a mount needs a type or the bind option", field, m.destination());
  }
  for (size_t i = 0; i < data.size(); ++i) out.data += (i ? "," : "") + data[i];
  return out;
}

ContainerSpec parse_container_spec(const v1::CreateContainerRequest& r) {
  ContainerSpec out;
  if (!valid_id(r.container_id())) {
    invalid_argument(
        "container_id '{}' is not valid: use 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'",
        r.container_id());
  }
  out.id = r.container_id();
  const auto& rootfs = r.rootfs();
  if (!valid_serial(rootfs.drive_serial())) {
    invalid_argument("rootfs.drive_serial '{}' is not a virtio-blk serial (1-20 of [A-Za-z0-9_.-])",
                     rootfs.drive_serial());
  }
  out.rootfs.drive_serial = rootfs.drive_serial();
  out.rootfs.fs_type = rootfs.fs_type().empty() ? "erofs" : rootfs.fs_type();
  if (out.rootfs.fs_type != "erofs" && out.rootfs.fs_type != "ext4") {
    invalid_argument("rootfs.fs_type '{}' is not supported (erofs or ext4)", out.rootfs.fs_type);
  }
  const auto& ov = rootfs.overlay();
  out.rootfs.upper_size_limit = ov.size_limit_bytes();
  if (ov.upper_kind() == v1::Overlay::UPPER_DRIVE) {
    if (!valid_serial(ov.upper_drive_serial()))
      invalid_argument("rootfs.overlay.upper_drive_serial '{}' is not a virtio-blk serial",
                       ov.upper_drive_serial());
    if (ov.upper_drive_serial() == out.rootfs.drive_serial)
      invalid_argument("rootfs.overlay.upper_drive_serial is the read-only image drive");
    out.rootfs.upper = UpperKind::drive;
    out.rootfs.upper_drive_serial = ov.upper_drive_serial();
    out.rootfs.upper_drive_fs_type =
        ov.upper_drive_fs_type().empty() ? "ext4" : ov.upper_drive_fs_type();
  }
  out.process = parse_process_spec(r.process(), "process");
  out.namespaces = parse_namespaces(r);
  if (!r.hostname().empty()) {
    check_hostname(r.hostname());
    if (!out.namespaces.own(CLONE_NEWUTS))
      invalid_argument("hostname '{}' needs a UTS namespace of the container's own", r.hostname());
    out.hostname = r.hostname();
  }
  for (int i = 0; i < r.mounts_size(); ++i) out.mounts.push_back(parse_mount_spec(r.mounts(i), i));
  out.readonly_rootfs = r.readonly_rootfs();
  for (int i = 0; i < r.masked_paths_size(); ++i) {
    check_container_path(r.masked_paths(i), fmt::format("masked_paths[{}]", i));
    out.masked_paths.push_back(r.masked_paths(i));
  }
  for (int i = 0; i < r.readonly_paths_size(); ++i) {
    check_container_path(r.readonly_paths(i), fmt::format("readonly_paths[{}]", i));
    out.readonly_paths.push_back(r.readonly_paths(i));
  }
  out.resources = parse_resources(r.resources());
  for (const auto& [key, value] : r.sysctls()) {
    check_sysctl(key, value);
    out.sysctls.emplace_back(key, value);
  }
  std::sort(out.sysctls.begin(), out.sysctls.end());
  if (!r.seccomp_profile_json().empty())
    parse_seccomp_profile(r.seccomp_profile_json());  // validate now
  out.seccomp_profile_json = r.seccomp_profile_json();
  out.init = r.init();
  return out;
}

}  // namespace frakti::agent::container
