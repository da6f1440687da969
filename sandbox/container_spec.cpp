#include "sandbox/container_spec.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include <fmt/format.h>

namespace frakti::sandbox {

namespace v1 = agent::v1;

namespace {

// Every capability the guest kernel (6.1) knows, for --privileged and --cap-add ALL.
const std::vector<std::string> kAllCaps = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
    "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"};

std::string cap_name(std::string c) {
  std::transform(c.begin(), c.end(), c.begin(), [](unsigned char ch) { return std::toupper(ch); });
  if (c != "ALL" && c.rfind("CAP_", 0) != 0) c = "CAP_" + c;
  if (c != "ALL" && std::find(kAllCaps.begin(), kAllCaps.end(), c) == kAllCaps.end()) {
    throw std::invalid_argument(fmt::format("unknown capability {}", c));
  }
  return c;
}

std::string env_key(const std::string& kv) { return kv.substr(0, kv.find('=')); }

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() < 11 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

void add_mount(v1::CreateContainerRequest& r, const char* dest, const char* type, const char* source,
               std::initializer_list<const char*> options) {
  auto* m = r.add_mounts();
  m->set_destination(dest);
  m->set_type(type);
  m->set_path(source);
  for (const char* o : options) m->add_options(o);
}

}  // namespace

const std::vector<std::string>& default_capabilities() {
  static const std::vector<std::string> caps = {
      "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
      "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"};
  return caps;
}

std::vector<std::string> resolve_command(const image::ImageConfig& image, const ContainerOptions& o) {
  std::vector<std::string> args = o.entrypoint ? *o.entrypoint : image.entrypoint;
  // Docker: a new entrypoint drops the image's Cmd; a command given by the caller replaces it.
  if (!o.cmd.empty()) {
    args.insert(args.end(), o.cmd.begin(), o.cmd.end());
  } else if (!o.entrypoint) {
    args.insert(args.end(), image.cmd.begin(), image.cmd.end());
  }
  if (args.empty()) throw std::invalid_argument("no command: the image has no Entrypoint or Cmd, so give one");
  return args;
}

std::vector<std::string> resolve_env(const image::ImageConfig& image, const ContainerOptions& o) {
  std::vector<std::string> env;
  auto set = [&](const std::string& kv) {
    if (kv.empty() || kv.front() == '=') throw std::invalid_argument(fmt::format("bad environment entry \"{}\"", kv));
    std::string entry = kv.find('=') == std::string::npos ? kv + "=" : kv;
    auto it = std::find_if(env.begin(), env.end(), [&](const std::string& e) { return env_key(e) == env_key(entry); });
    if (it != env.end()) {
      *it = entry;
    } else {
      env.push_back(entry);
    }
  };
  set("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  if (!o.hostname.empty()) set("HOSTNAME=" + o.hostname);
  if (o.terminal) set("TERM=xterm");
  for (const auto& e : image.env) set(e);
  for (const auto& e : o.env) set(e);
  return env;
}

void set_user(v1::Process& p, const std::string& spec) {
  auto* u = p.mutable_user();
  if (spec.empty()) return;  // root
  std::string name = spec.substr(0, spec.find(':'));
  std::string group = spec.find(':') == std::string::npos ? "" : spec.substr(spec.find(':') + 1);
  if (name.empty()) throw std::invalid_argument(fmt::format("bad user \"{}\": expected NAME, UID, UID:GID or NAME:GROUP", spec));
  if (all_digits(name)) {
    u->set_uid(static_cast<uint32_t>(std::stoul(name)));
    if (all_digits(group)) {
      u->set_gid(static_cast<uint32_t>(std::stoul(group)));
    } else if (!group.empty()) {
      throw std::invalid_argument(fmt::format("bad user \"{}\": a numeric user needs a numeric group", spec));
    } else {
      u->set_gid(u->uid());
    }
    return;
  }
  // A name is resolved in the guest against the image's /etc/passwd (with its primary group).
  u->set_username(name);
  if (!group.empty() && !all_digits(group)) {
    throw std::invalid_argument(fmt::format("bad user \"{}\": give the group as a number with a user name", spec));
  }
  if (!group.empty()) u->add_additional_gids(static_cast<uint32_t>(std::stoul(group)));
}

v1::CreateContainerRequest make_create_request(const image::ImageConfig& image, const ContainerOptions& o) {
  v1::CreateContainerRequest r;
  r.set_container_id(o.id);
  r.mutable_rootfs()->set_drive_serial(o.image_drive_serial);
  r.mutable_rootfs()->set_fs_type(o.image_fs_type);
  if (o.overlay_size_bytes) r.mutable_rootfs()->mutable_overlay()->set_size_limit_bytes(o.overlay_size_bytes);
  r.set_hostname(o.hostname);
  r.set_readonly_rootfs(o.read_only_rootfs);
  r.set_init(o.init);

  auto& p = *r.mutable_process();
  for (auto& a : resolve_command(image, o)) p.add_args(a);
  for (auto& e : resolve_env(image, o)) p.add_env(e);
  p.set_cwd(o.working_dir.empty() ? (image.working_dir.empty() ? "/" : image.working_dir) : o.working_dir);
  set_user(p, o.user.empty() ? image.user : o.user);
  p.set_terminal(o.terminal);
  p.set_terminal_rows(o.terminal_rows);
  p.set_terminal_cols(o.terminal_cols);

  // Capabilities: defaults (or all), then drops, then adds, as Docker orders them.
  std::vector<std::string> caps = o.privileged ? kAllCaps : default_capabilities();
  for (auto& d : o.cap_drop) {
    std::string c = cap_name(d);
    if (c == "ALL") {
      caps.clear();
    } else {
      caps.erase(std::remove(caps.begin(), caps.end(), c), caps.end());
    }
  }
  for (auto& a : o.cap_add) {
    std::string c = cap_name(a);
    if (c == "ALL") {
      caps = kAllCaps;
    } else if (std::find(caps.begin(), caps.end(), c) == caps.end()) {
      caps.push_back(c);
    }
  }
  auto* pc = p.mutable_capabilities();
  for (auto& c : caps) {
    pc->add_bounding(c);
    pc->add_effective(c);
    pc->add_permitted(c);
  }

  for (auto t : {v1::Namespace::TYPE_PID, v1::Namespace::TYPE_IPC, v1::Namespace::TYPE_UTS, v1::Namespace::TYPE_MOUNT}) {
    r.add_namespaces()->set_type(t);
  }
  add_mount(r, "/proc", "proc", "proc", {"nosuid", "noexec", "nodev"});
  add_mount(r, "/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"});
  add_mount(r, "/dev/pts", "devpts", "devpts", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"});
  add_mount(r, "/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"});
  add_mount(r, "/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"});
  add_mount(r, "/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", o.privileged ? "rw" : "ro"});
  if (!o.privileged) {
    for (const char* m : {"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                          "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"}) {
      r.add_masked_paths(m);
    }
    for (const char* m : {"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}) {
      r.add_readonly_paths(m);
    }
  }

  auto* res = r.mutable_resources();
  res->set_memory_limit_bytes(o.memory_limit_bytes);
  if (o.cpus > 0) {
    res->set_cpu_period_us(100000);
    res->set_cpu_quota_us(static_cast<int64_t>(o.cpus * 100000));
  }
  res->set_pids_limit(o.pids_limit);
  return r;
}

}  // namespace frakti::sandbox
