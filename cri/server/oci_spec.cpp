#include "cri/server/oci_spec.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "cri/server/errors.hpp"
#include "sandbox/container_spec.hpp"

namespace frakti::cri {

namespace fs = std::filesystem;
using grpc::StatusCode;
using nlohmann::json;

namespace {

// Docker's masked and read-only /proc and /sys paths (used when kubelet sends none).
const std::vector<std::string> kMaskedPaths = {
    "/proc/asound",        "/proc/acpi",       "/proc/kcore",       "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi",          "/sys/firmware"};
const std::vector<std::string> kReadonlyPaths = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                                 "/proc/sysrq-trigger"};

json mount(const std::string& dest, const std::string& type, const std::string& source,
           std::vector<std::string> options) {
  return {{"destination", dest}, {"type", type}, {"source", source}, {"options", options}};
}

// The standard container mounts (runc's and Docker's defaults).
json standard_mounts(bool privileged, bool host_ipc, const fs::path& pod_shm) {
  std::string sys_mode = privileged ? "rw" : "ro";
  json m = json::array();
  m.push_back(mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}));
  m.push_back(
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  m.push_back(mount("/dev/pts", "devpts", "devpts",
                    {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
  if (host_ipc)
    m.push_back(mount("/dev/shm", "bind", "/dev/shm", {"rbind", "nosuid", "noexec", "nodev"}));
  else if (!pod_shm.empty())
    m.push_back(
        mount("/dev/shm", "bind", pod_shm.string(), {"rbind", "nosuid", "noexec", "nodev"}));
  else
    m.push_back(mount("/dev/shm", "tmpfs", "shm",
                      {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  m.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  m.push_back(mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", sys_mode}));
  m.push_back(mount("/sys/fs/cgroup", "cgroup", "cgroup",
                    {"nosuid", "noexec", "nodev", "relatime", sys_mode}));
  return m;
}

json ns(const char* type) {
  return {{"type", type}};
}
json ns(const char* type, pid_t infra, const char* file) {
  return {{"type", type}, {"path", fmt::format("/proc/{}/ns/{}", infra, file)}};
}

const rt::NamespaceOption& ns_options(const rt::PodSandboxConfig& pod) {
  return pod.linux().security_context().namespace_options();
}

// A host device for linux.devices and its allow rule, or false when path is no device.
bool device_entry(const fs::path& host, const std::string& container_path,
                  const std::string& access, json& devices, json& rules) {
  struct stat sb;
  if (::stat(host.c_str(), &sb) != 0 || !(S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode))) return false;
  const char* type = S_ISCHR(sb.st_mode) ? "c" : "b";
  devices.push_back({{"path", container_path},
                     {"type", type},
                     {"major", major(sb.st_rdev)},
                     {"minor", minor(sb.st_rdev)},
                     {"fileMode", sb.st_mode & 07777},
                     {"uid", sb.st_uid},
                     {"gid", sb.st_gid}});
  rules.push_back({{"allow", true},
                   {"type", type},
                   {"major", major(sb.st_rdev)},
                   {"minor", minor(sb.st_rdev)},
                   {"access", access}});
  return true;
}

// Every device node under the host's /dev (privileged containers see the host's devices).
void host_devices(json& devices, json& rules) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(
           "/dev", fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    auto p = it->path();
    if (p == "/dev/pts" || p == "/dev/shm" || p == "/dev/mqueue") {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_symlink(ec) || p == "/dev/console" || p == "/dev/ptmx") continue;
    device_entry(p, p.string(), "rwm", devices, rules);
  }
}

const char* propagation(rt::MountPropagation p) {
  switch (p) {
    case rt::PROPAGATION_HOST_TO_CONTAINER:
      return "rslave";
    case rt::PROPAGATION_BIDIRECTIONAL:
      return "rshared";
    default:
      return "rprivate";
  }
}

bool clean_absolute(const std::string& p) {
  if (p.empty() || p[0] != '/' || p.find('\0') != std::string::npos) return false;
  for (auto& part : fs::path(p))
    if (part == "..") return false;
  return true;
}

// Lowering oom_score_adj below our own needs CAP_SYS_RESOURCE, which some hosts withhold
// (runc then fails the create); kubelet's -997 for Guaranteed pods becomes our own value there.
int64_t reachable_oom_score_adj(int64_t want) {
  int64_t own = 0;
  std::ifstream("/proc/self/oom_score_adj") >> own;
  if (want >= own) return want;
  std::ifstream in("/proc/self/status");
  std::string line;
  uint64_t eff = 0;
  while (std::getline(in, line))
    if (line.rfind("CapEff:", 0) == 0) eff = std::stoull(line.substr(7), nullptr, 16);
  constexpr int kCapSysResource = 24;
  return (eff & (uint64_t{1} << kCapSysResource)) ? want : own;
}

}  // namespace

std::map<std::string, std::string> pod_sysctls(const rt::PodSandboxConfig& pod) {
  const auto& nso = ns_options(pod);
  static const std::set<std::string> kIpc = {
      "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
      "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem"};
  std::map<std::string, std::string> out;
  for (auto& [raw, value] : pod.linux().sysctls()) {
    std::string name = raw;
    std::replace(name.begin(), name.end(), '/', '.');
    bool name_ok = !name.empty() && name.size() <= 256 && name.find("..") == std::string::npos &&
                   name.front() != '.' &&
                   std::all_of(name.begin(), name.end(), [](unsigned char c) {
                     return std::isalnum(c) || c == '_' || c == '.' || c == '-';
                   });
    if (!name_ok)
      fail(StatusCode::INVALID_ARGUMENT, "sysctl name '{}' is not valid", raw.substr(0, 64));
    if (value.find_first_of("\n\0", 0, 2) != std::string::npos || value.size() > 4096)
      fail(StatusCode::INVALID_ARGUMENT,
           "sysctl {}: the value holds a newline or NUL or is too long", name);
    bool ipc = kIpc.count(name) || name.rfind("fs.mqueue.", 0) == 0;
    bool net = name.rfind("net.", 0) == 0;
    bool uts = name == "kernel.hostname" || name == "kernel.domainname";
    if (!ipc && !net && !uts)
      fail(StatusCode::INVALID_ARGUMENT,
           "sysctl {} is node-wide, not namespaced: a pod may not set it", name);
    if (net && nso.network() == rt::NODE)
      fail(StatusCode::INVALID_ARGUMENT,
           "sysctl {} would change the host: the pod uses the host network", name);
    if (ipc && nso.ipc() == rt::NODE)
      fail(StatusCode::INVALID_ARGUMENT,
           "sysctl {} would change the host: the pod uses the host IPC namespace", name);
    if (uts && nso.network() == rt::NODE)
      fail(StatusCode::INVALID_ARGUMENT,
           "sysctl {} would change the host: the pod shares the host's UTS namespace", name);
    out[name] = value;
  }
  return out;
}

std::string cgroups_path(const rt::PodSandboxConfig& pod, const std::string& id) {
  std::string parent = pod.linux().cgroup_parent();
  if (parent.empty()) parent = "/frakti";
  if (!clean_absolute(parent) || parent.size() > 1024 || parent.find(".slice") != std::string::npos)
    fail(StatusCode::INVALID_ARGUMENT,
         "cgroup_parent '{}' is not an absolute cgroupfs path (frakti runs runc with the "
         "cgroupfs driver)",
         parent.substr(0, 128));
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  return parent + "/" + id;
}

nlohmann::json infra_spec(const rt::PodSandboxConfig& pod, const fs::path& rootfs,
                          const std::string& cgroups) {
  const auto& nso = ns_options(pod);
  json namespaces = json::array({ns("mount")});
  if (nso.network() != rt::NODE) namespaces.push_back(ns("network"));
  if (nso.ipc() != rt::NODE) namespaces.push_back(ns("ipc"));
  if (nso.pid() != rt::NODE) namespaces.push_back(ns("pid"));
  if (nso.network() != rt::NODE) namespaces.push_back(ns("uts"));
  json sysctl = json::object();
  for (auto& [k, v] : pod_sysctls(pod)) sysctl[k] = v;
  json spec = {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", false},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", {"/frakti-pause"}},
        {"env", {"PATH=/"}},
        {"cwd", "/"},
        {"capabilities",
         {{"bounding", json::array()}, {"effective", json::array()}, {"permitted", json::array()}}},
        {"noNewPrivileges", true}}},
      {"root", {{"path", rootfs.string()}, {"readonly", true}}},
      {"mounts", json::array({mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
                              mount("/dev", "tmpfs", "tmpfs",
                                    {"nosuid", "strictatime", "mode=755", "size=64k"})})},
      {"linux",
       {{"namespaces", namespaces},
        {"cgroupsPath", cgroups},
        {"sysctl", sysctl},
        {"resources", {{"devices", json::array({{{"allow", false}, {"access", "rwm"}}})}}},
        {"maskedPaths", kMaskedPaths},
        {"readonlyPaths", kReadonlyPaths}}},
  };
  if (nso.network() != rt::NODE && !pod.hostname().empty()) spec["hostname"] = pod.hostname();
  if (json filter = sandbox_seccomp(pod); !filter.is_null()) spec["linux"]["seccomp"] = filter;
  return spec;
}

nlohmann::json container_spec(const rt::PodSandboxConfig& pod, const rt::ContainerConfig& c,
                              const image::ImageConfig& image, const fs::path& rootfs,
                              const PodPaths& paths, const std::string& cgroups) {
  const auto& sc = c.linux().security_context();
  const auto& nso = ns_options(pod);
  bool privileged = sc.privileged();
  if (privileged && !pod.linux().security_context().privileged())
    fail(StatusCode::INVALID_ARGUMENT, "container {} is privileged but its pod is not",
         c.metadata().name());

  // Process: the image's command and environment under the CRI overrides.
  sandbox::ContainerOptions o;
  if (c.command_size() > 0)
    o.entrypoint = std::vector<std::string>(c.command().begin(), c.command().end());
  o.cmd.assign(c.args().begin(), c.args().end());
  for (const auto& kv : c.envs()) {
    if (kv.key().empty() || kv.key().find('=') != std::string::npos)
      fail(StatusCode::INVALID_ARGUMENT,
           "env name '{}' is not valid: it must be non-empty and hold no '='", kv.key());
    o.env.push_back(kv.key() + "=" + kv.value());
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  o.hostname = nso.network() == rt::NODE ? std::string(host) : pod.hostname();
  std::vector<std::string> args, env;
  try {
    args = sandbox::resolve_command(image, o);
    env = sandbox::resolve_env(image, o);
  } catch (const std::invalid_argument& e) {
    fail(StatusCode::INVALID_ARGUMENT, "container {}: {}", c.metadata().name(), e.what());
  }
  std::string user_spec = image.user;
  if (!sc.run_as_username().empty()) {
    user_spec = sc.run_as_username();
  } else if (sc.has_run_as_user()) {
    user_spec = std::to_string(sc.run_as_user().value());
    if (sc.has_run_as_group()) user_spec += ":" + std::to_string(sc.run_as_group().value());
  } else if (sc.has_run_as_group()) {
    fail(StatusCode::INVALID_ARGUMENT,
         "run_as_group needs run_as_user or run_as_username (CRI rule)");
  }
  auto user = resolve_user(user_spec, read_in_root(rootfs, "etc/passwd"),
                           read_in_root(rootfs, "etc/group"));
  for (auto g : sc.supplemental_groups()) {
    if (g < 0 || g > 0xfffffffe)
      fail(StatusCode::INVALID_ARGUMENT, "supplemental group {} is out of range", g);
    user.groups.push_back(static_cast<uint32_t>(g));
  }
  auto caps = privileged ? bounding_capabilities() : container_capabilities(sc.capabilities());
  std::string cwd = !c.working_dir().empty()    ? c.working_dir()
                    : image.working_dir.empty() ? "/"
                                                : image.working_dir;
  if (!clean_absolute(cwd))
    fail(StatusCode::INVALID_ARGUMENT, "working directory '{}' is not an absolute path", cwd);
  const auto& r = c.linux().resources();
  // tty: runc hands the terminal's master to conmon (--terminal), which logs it as stdout.
  json process = {{"terminal", c.tty()},
                  {"user", {{"uid", user.uid}, {"gid", user.gid}, {"additionalGids", user.groups}}},
                  {"args", args},
                  {"env", env},
                  {"cwd", cwd},
                  {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
                  {"noNewPrivileges", sc.no_new_privs()}};
  if (r.oom_score_adj() < -1000 || r.oom_score_adj() > 1000)
    fail(StatusCode::INVALID_ARGUMENT, "oom_score_adj {} is outside -1000..1000",
         r.oom_score_adj());
  if (r.oom_score_adj() != 0) process["oomScoreAdj"] = reachable_oom_score_adj(r.oom_score_adj());

  // Namespaces: the pod's through the infra process, the host's by leaving them out.
  json namespaces = json::array({ns("mount")});
  if (nso.network() != rt::NODE) namespaces.push_back(ns("network", paths.infra_pid, "net"));
  if (nso.ipc() != rt::NODE) namespaces.push_back(ns("ipc", paths.infra_pid, "ipc"));
  if (nso.network() != rt::NODE) namespaces.push_back(ns("uts", paths.infra_pid, "uts"));
  const auto& cns = sc.namespace_options();
  switch (nso.pid() == rt::NODE ? rt::NODE : cns.pid()) {
    case rt::NODE:
      break;
    case rt::POD:
      namespaces.push_back(ns("pid", paths.infra_pid, "pid"));
      break;
    case rt::CONTAINER:
      namespaces.push_back(ns("pid"));
      break;
    case rt::TARGET:
      // The backend resolved target_id to a running container of this pod.
      if (paths.target_pid <= 0)
        fail(StatusCode::FAILED_PRECONDITION,
             "container {}: PID namespace mode TARGET needs a running target container",
             c.metadata().name());
      namespaces.push_back(ns("pid", paths.target_pid, "pid"));
      break;
    default:
      fail(StatusCode::INVALID_ARGUMENT, "container {}: unknown PID namespace mode {}",
           c.metadata().name(), static_cast<int>(cns.pid()));
  }

  // Mounts: the standard ones, the pod's resolv.conf and hostname, then kubelet's.
  json mounts = standard_mounts(privileged, nso.ipc() == rt::NODE, paths.shm);
  std::set<std::string> wanted;
  for (auto& m : c.mounts())
    wanted.insert(fs::path(m.container_path()).lexically_normal().string());
  if (!wanted.count("/etc/resolv.conf") && !paths.resolv_conf.empty())
    mounts.push_back(mount("/etc/resolv.conf", "bind", paths.resolv_conf.string(),
                           {"rbind", "rprivate", "nosuid", "nodev", "noexec"}));
  if (!wanted.count("/etc/hostname") && !paths.hostname.empty())
    mounts.push_back(mount("/etc/hostname", "bind", paths.hostname.string(),
                           {"rbind", "rprivate", "nosuid", "nodev", "noexec"}));
  for (auto& m : c.mounts()) {
    if (!clean_absolute(m.container_path()) || !clean_absolute(m.host_path()))
      fail(StatusCode::INVALID_ARGUMENT,
           "mount '{}' -> '{}': both paths must be absolute, without '..'",
           m.host_path().substr(0, 256), m.container_path().substr(0, 256));
    std::error_code ec;
    if (!fs::exists(m.host_path(), ec))
      fail(StatusCode::INVALID_ARGUMENT, "mount source {} does not exist on the host",
           m.host_path().substr(0, 256));
    std::vector<std::string> opts = {"rbind", propagation(m.propagation())};
    if (m.readonly()) opts.push_back("ro");
    mounts.push_back(mount(m.container_path(), "bind", m.host_path(), opts));
  }

  // Devices and the device cgroup: deny all but runc's defaults, then what was asked.
  json devices = json::array(), rules = json::array({{{"allow", false}, {"access", "rwm"}}});
  if (privileged) host_devices(devices, rules);
  for (auto& d : c.devices()) {
    std::string access = d.permissions().empty() ? "rwm" : d.permissions();
    if (access.size() > 3 || access.find_first_not_of("rwm") != std::string::npos)
      fail(StatusCode::INVALID_ARGUMENT, "device {}: permissions '{}' are not some of 'rwm'",
           d.host_path().substr(0, 256), access.substr(0, 16));
    if (!clean_absolute(d.container_path()) ||
        !device_entry(d.host_path(), d.container_path(), access, devices, rules))
      fail(StatusCode::INVALID_ARGUMENT,
           "device {} is not a device node on the host (or {} is not an absolute path)",
           d.host_path().substr(0, 256), d.container_path().substr(0, 256));
  }

  // Resources (cgroup v1 through runc's cgroupfs driver).
  if (r.memory_limit_in_bytes() < 0 || r.cpu_quota() < -1 || r.cpu_period() < 0 ||
      r.cpu_shares() < 0 || r.memory_swap_limit_in_bytes() < -1)
    fail(StatusCode::INVALID_ARGUMENT,
         "negative resource limits (memory {}, cpu quota {}, period {}, shares {})",
         r.memory_limit_in_bytes(), r.cpu_quota(), r.cpu_period(), r.cpu_shares());
  json resources = {{"devices", rules}};
  if (r.memory_limit_in_bytes() > 0) {
    resources["memory"]["limit"] = r.memory_limit_in_bytes();
    // Without a swap limit a memory hog would swap instead of being OOM-killed (CRI-O's rule).
    std::error_code ec;
    if (fs::exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", ec))
      resources["memory"]["swap"] = r.memory_swap_limit_in_bytes() > 0
                                        ? r.memory_swap_limit_in_bytes()
                                        : r.memory_limit_in_bytes();
  }
  if (r.cpu_shares() > 0) resources["cpu"]["shares"] = r.cpu_shares();
  if (r.cpu_quota() > 0) resources["cpu"]["quota"] = r.cpu_quota();
  if (r.cpu_period() > 0) resources["cpu"]["period"] = r.cpu_period();
  if (!r.cpuset_cpus().empty()) resources["cpu"]["cpus"] = r.cpuset_cpus();
  if (!r.cpuset_mems().empty()) resources["cpu"]["mems"] = r.cpuset_mems();

  json linux_ = {{"namespaces", namespaces},
                 {"cgroupsPath", cgroups},
                 {"resources", resources},
                 {"devices", devices}};
  if (!privileged) {
    linux_["maskedPaths"] =
        sc.masked_paths_size()
            ? std::vector<std::string>(sc.masked_paths().begin(), sc.masked_paths().end())
            : kMaskedPaths;
    linux_["readonlyPaths"] =
        sc.readonly_paths_size()
            ? std::vector<std::string>(sc.readonly_paths().begin(), sc.readonly_paths().end())
            : kReadonlyPaths;
  }
  auto seccomp = container_seccomp(pod, c, caps);
  if (!seccomp.is_null()) linux_["seccomp"] = seccomp;
  json annotations = json::object();
  for (auto& [k, v] : c.annotations()) annotations[k] = v;
  return {{"ociVersion", "1.0.2"},
          {"process", process},
          {"root", {{"path", rootfs.string()}, {"readonly", sc.readonly_rootfs()}}},
          {"mounts", mounts},
          {"annotations", annotations},
          {"linux", linux_}};
}

}  // namespace frakti::cri
