#include "cri/server/runc_backend.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/log.hpp"
#include "cri/server/errors.hpp"
#include "cri/server/oci_spec.hpp"
#include "sandbox/proc_ref.hpp"

namespace frakti::cri {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using grpc::StatusCode;
using Clock = std::chrono::steady_clock;

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

fs::path find_binary(const char* name) {
  for (const char* dir :
       {"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"}) {
    fs::path p = fs::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return {};
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::trunc);
  out << text;
  out.close();
  if (!out) common::throw_error(EIO, "writing " + p.string());
}

pid_t read_pid(const fs::path& p) {
  pid_t pid = 0;
  std::ifstream(p) >> pid;
  return pid;
}

// A terminal's output turns \n into \r\n (ONLCR), as kubelet expects of tty containers. runc
// hands conmon the pty with ONLCR off and conmon turns it on once its main loop takes the
// console, which can be after `runc start`: the first lines would then lack their \r (seen in
// CI). So it is set here, before the start, on the stdout of the waiting init (the pty's
// slave end). Best effort: conmon still sets it too.
void set_terminal_onlcr(pid_t init, const std::string& id) {
  std::string path = fmt::format("/proc/{}/fd/1", init);
  common::Fd tty(::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
  termios t{};
  if (!tty || ::tcgetattr(tty.get(), &t) != 0) {
    common::log::warn("runc", "container {}: cannot read its terminal's settings ({}): {}",
                      id.substr(0, 12), path, std::strerror(errno));
    return;
  }
  if ((t.c_oflag & (OPOST | ONLCR)) == (OPOST | ONLCR)) return;
  t.c_oflag |= OPOST | ONLCR;
  if (::tcsetattr(tty.get(), TCSANOW, &t) != 0)
    common::log::warn("runc", "container {}: cannot turn on ONLCR on its terminal: {}",
                      id.substr(0, 12), std::strerror(errno));
}

sandbox::ProcRef proc_of(const st::ProcRef& p) {
  return {static_cast<pid_t>(p.pid()), p.start_time()};
}

std::string resolv_conf_of(const rt::DNSConfig& dns) {
  std::string out;
  if (dns.searches_size()) out += fmt::format("search {}\n", fmt::join(dns.searches(), " "));
  for (auto& s : dns.servers()) out += "nameserver " + s + "\n";
  if (dns.options_size()) out += fmt::format("options {}\n", fmt::join(dns.options(), " "));
  return out;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.size() > 2000 ? s.substr(0, 2000) + "..." : s;
}

// The value of "key N" in a cgroup file such as memory.stat or memory.oom_control.
uint64_t cgroup_value(const fs::path& file, const std::string& key) {
  std::ifstream in(file);
  std::string k;
  uint64_t v;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

uint64_t cgroup_number(const fs::path& file) {
  uint64_t v = 0;
  std::ifstream(file) >> v;
  return v;
}

// The kernel's OOM killer killed a process of the container's cgroup (cgroup v1 memory
// controller on this hybrid layout; memory.events where memory is on cgroup v2).
bool oom_killed(const std::string& cgroups_path) {
  if (cgroup_value("/sys/fs/cgroup/memory" + cgroups_path + "/memory.oom_control", "oom_kill") > 0)
    return true;
  return cgroup_value("/sys/fs/cgroup/unified" + cgroups_path + "/memory.events", "oom_kill") > 0 ||
         cgroup_value("/sys/fs/cgroup" + cgroups_path + "/memory.events", "oom_kill") > 0;
}

// The usage and inode count of a container's writable layer.
std::pair<uint64_t, uint64_t> tree_usage(const fs::path& dir) {
  uint64_t bytes = 0, inodes = 0;
  std::error_code ec;
  for (auto it =
           fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    struct stat sb;
    if (::lstat(it->path().c_str(), &sb) != 0) continue;
    ++inodes;
    bytes += static_cast<uint64_t>(sb.st_blocks) * 512;
  }
  return {bytes, inodes};
}

bool cgroup_v2_host() {
  std::error_code ec;
  return fs::exists("/sys/fs/cgroup/cgroup.controllers", ec);
}

// The OCI LinuxResources for `runc update -r`: only what changes (runc leaves absent fields
// as they are). old is what the container has now, r the request (0/empty = unchanged).
nlohmann::json update_request(const rt::LinuxContainerResources& old,
                              const rt::LinuxContainerResources& r, const std::string& id) {
  nlohmann::json out = nlohmann::json::object();
  // runc 1.1's update has no hugepage limits: say so rather than drop a change silently.
  // (kubelet lists every page size of the node, 0 where unused.)
  for (const auto& h : r.hugepage_limits()) {
    if (h.limit() == 0) continue;
    uint64_t had = 0;
    for (const auto& o : old.hugepage_limits())
      if (o.page_size() == h.page_size()) had = o.limit();
    if (h.limit() != had)
      fail(StatusCode::INVALID_ARGUMENT,
           "container {}: runc cannot change the hugepage limit for {} of a created container; "
           "recreate it with the new limit",
           id, h.page_size().substr(0, 16));
  }
  bool v2 = cgroup_v2_host();
  if (!r.unified().empty()) {
    if (!v2)
      fail(StatusCode::INVALID_ARGUMENT,
           "container {}: cgroup v2 'unified' entries (such as {}) need a cgroup v2 host; this "
           "one runs cgroup v1",
           id, r.unified().begin()->first.substr(0, 64));
    for (const auto& [k, v] : r.unified()) out["unified"][k] = v;
  }
  if (r.memory_limit_in_bytes() > 0) out["memory"]["limit"] = r.memory_limit_in_bytes();
  std::error_code ec;
  bool memsw = !v2 && fs::exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", ec);
  int64_t swap = r.memory_swap_limit_in_bytes();
  // On cgroup v1, create ties memory+swap to the memory limit unless a swap limit was given
  // (no swapping instead of an OOM kill); a new memory limit moves it along, and must raise an
  // explicit one it would exceed (the kernel refuses memory.limit_in_bytes > memsw).
  if (swap == 0 && memsw && r.memory_limit_in_bytes() > 0) {
    int64_t had = old.memory_swap_limit_in_bytes();
    if (had == 0 || (had > 0 && had < r.memory_limit_in_bytes())) swap = r.memory_limit_in_bytes();
  }
  if (swap != 0 && (memsw || v2)) out["memory"]["swap"] = swap;
  if (r.cpu_shares() > 0) out["cpu"]["shares"] = r.cpu_shares();
  if (r.cpu_quota() != 0) out["cpu"]["quota"] = r.cpu_quota();  // -1: no quota
  if (r.cpu_period() > 0) out["cpu"]["period"] = r.cpu_period();
  if (!r.cpuset_cpus().empty()) out["cpu"]["cpus"] = r.cpuset_cpus();
  if (!r.cpuset_mems().empty()) out["cpu"]["mems"] = r.cpuset_mems();
  return out;
}

}  // namespace

RuncBackend::RuncBackend(const Options& opts)
    : opts_(opts),
      dir_(opts.state_directory / "runc"),
      images_(opts.state_directory / "runc" / "images") {
  runc_bin_ = find_binary("runc");
  conmon_bin_ = find_binary("conmon");
  pause_bin_ = fs::read_symlink("/proc/self/exe").parent_path() / "frakti-pause";
  for (auto* sub : {"state", "exits", "sock", "images"}) fs::create_directories(dir_ / sub);
  ::chmod(dir_.c_str(), 0700);
}

ProcessResult RuncBackend::runc(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  args.insert(args.begin(), {runc_bin_.string(), "--root", (dir_ / "state").string()});
  return run_process(args, timeout);
}

pid_t RuncBackend::create(const std::string& id, const fs::path& log_path, bool terminal) {
  ConmonArgs a;
  a.id = id;
  a.conmon = conmon_bin_;
  a.runc = runc_bin_;
  a.runc_root = dir_ / "state";
  a.bundle = bundle(id);
  a.pid_file = bundle(id) / "pidfile";
  a.conmon_pid_file = bundle(id) / "conmon.pid";
  a.log_path = log_path;
  a.exit_dir = dir_ / "exits";
  a.socket_dir = dir_ / "sock";
  a.conmon_log = bundle(id) / "conmon.log";
  a.terminal = terminal;
  return start_conmon(a, 60s);
}

bool RuncBackend::wait_exit(const std::string& id, std::chrono::milliseconds limit) {
  auto end = Clock::now() + limit;
  pid_t pid = read_pid(bundle(id) / "pidfile");
  auto conmon = sandbox::ProcRef::of(read_pid(bundle(id) / "conmon.pid"));
  for (;;) {
    if (fs::exists(exit_file(id))) return true;
    // Without its monitor nobody writes the exit file: the process being gone is enough.
    if (!conmon.alive() && (pid <= 0 || !sandbox::ProcRef::of(pid).alive())) return true;
    if (Clock::now() >= end) return false;
    std::this_thread::sleep_for(50ms);
  }
}

void RuncBackend::kill(const std::string& id, int sig, bool all) {
  std::vector<std::string> args = {"kill"};
  if (all) args.push_back("--all");
  args.push_back(id);
  args.push_back(std::to_string(sig));
  auto r = runc(args, 30s);
  if (r.status != 0 && r.err.find("not running") == std::string::npos &&
      r.err.find("does not exist") == std::string::npos &&
      r.err.find("no such process") == std::string::npos)
    fail(StatusCode::INTERNAL, "runc kill {} {}: {}", id.substr(0, 12), sig, trimmed(r.err));
}

void RuncBackend::remove_runc(const std::string& id) {
  auto r = runc({"delete", "--force", id}, 60s);
  if (r.status != 0 && r.err.find("does not exist") == std::string::npos)
    fail(StatusCode::INTERNAL, "runc delete {}: {}", id.substr(0, 12), trimmed(r.err));
  // conmon ends once it saw its container go; wait briefly so nothing outlives the removal.
  auto conmon = sandbox::ProcRef::of(read_pid(bundle(id) / "conmon.pid"));
  for (int i = 0; i < 100 && conmon.alive(); ++i) std::this_thread::sleep_for(20ms);
  if (conmon.alive()) ::kill(conmon.pid, SIGKILL);
}

void RuncBackend::run_pod(st::SandboxRecord& pod) {
  if (runc_bin_.empty() || conmon_bin_.empty())
    fail(StatusCode::FAILED_PRECONDITION,
         "runc pods need runc and conmon on the host: apt-get install runc conmon");
  if (!fs::exists(pause_bin_))
    fail(StatusCode::FAILED_PRECONDITION,
         "{} is missing: build the project and run frakti from build/bin", pause_bin_.string());
  const auto& cfg = pod.config();
  bool host_net = cfg.linux().security_context().namespace_options().network() == rt::NODE;
  fs::path b = bundle(pod.id());
  auto spec = infra_spec(cfg, b / "rootfs",
                         cgroups_path(cfg, pod.id()));  // checks sysctls before anything is made
  bool host_ipc = cfg.linux().security_context().namespace_options().ipc() == rt::NODE;
  std::error_code ec;
  unmount(b / "shm");
  fs::remove_all(b, ec);
  try {
    fs::create_directories(b / "rootfs");
    fs::create_directories(members(pod.id()));
    if (!host_ipc) {
      // One /dev/shm for the pod: POSIX shared memory works between its containers.
      fs::create_directories(b / "shm");
      mount_tmpfs(b / "shm", "mode=1777,size=65536k");
    }
    fs::copy_file(pause_bin_, b / "rootfs" / "frakti-pause", fs::copy_options::overwrite_existing);
    // resolv.conf and hostname are bind-mounted into every container (as CRI-O does).
    std::string resolv = resolv_conf_of(cfg.dns_config());
    if (resolv.empty() && host_net) resolv = read_file("/etc/resolv.conf");
    write_file(b / "resolv.conf", resolv);
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    write_file(b / "hostname",
               (host_net || cfg.hostname().empty() ? std::string(host) : cfg.hostname()) + "\n");
    write_file(b / "config.json", spec.dump(2));
    create(pod.id(), b / "infra.log");
    auto r = runc({"start", pod.id()});
    if (r.status != 0)
      fail(StatusCode::UNKNOWN, "runc start of the infra container failed: {}", trimmed(r.err));
    pid_t pid = read_pid(b / "pidfile");
    auto ref = sandbox::ProcRef::of(pid);
    if (!ref.alive())
      fail(StatusCode::UNKNOWN, "the infra process of pod {} ended at once (see {})", pod.id(),
           (b / "conmon.log").string());
    pod.mutable_infra()->set_pid(static_cast<uint32_t>(pid));
    pod.mutable_infra()->set_start_time(ref.start);
    pod.set_netns_path(host_net ? "" : fmt::format("/proc/{}/ns/net", pid));
    pod.set_runtime_dir(b.string());
  } catch (...) {
    try {
      remove_runc(pod.id());
    } catch (const std::exception& e) {
      common::log::warn("runc", "cleaning up the infra of pod {}: {}", pod.id().substr(0, 12),
                        e.what());
    }
    try {
      unmount(b / "shm");
    } catch (const std::exception& e) {
      common::log::warn("runc", "cleaning up pod {}: {}", pod.id().substr(0, 12), e.what());
    }
    fs::remove_all(b, ec);
    fs::remove(exit_file(pod.id()), ec);
    throw;
  }
}

bool RuncBackend::pod_alive(const st::SandboxRecord& pod) {
  return proc_of(pod.infra()).alive();
}

void RuncBackend::stop_pod(st::SandboxRecord& pod) {
  std::vector<std::string> ids;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(members(pod.id()), ec)) ids.push_back(e.path().filename());
  for (auto& id : ids) kill(id, SIGKILL, true);
  for (auto& id : ids)
    if (!wait_exit(id, 10s))
      common::log::warn("runc", "container {} did not exit within 10 s of SIGKILL",
                        id.substr(0, 12));
  if (!fs::exists(bundle(pod.id()) / "pidfile")) return;  // the infra never started
  if (!wait_exit(pod.id(), 0ms)) {
    kill(pod.id(), SIGTERM, false);
    if (!wait_exit(pod.id(), 2s)) {
      kill(pod.id(), SIGKILL, true);
      if (!wait_exit(pod.id(), 10s))
        fail(StatusCode::DEADLINE_EXCEEDED, "the infra of pod {} did not exit", pod.id());
    }
  }
}

void RuncBackend::remove_pod(const st::SandboxRecord& pod) {
  remove_runc(pod.id());
  unmount(bundle(pod.id()) / "shm");  // before remove_all, which would empty the live tmpfs
  std::error_code ec;
  fs::remove_all(bundle(pod.id()), ec);
  fs::remove(exit_file(pod.id()), ec);
}

void RuncBackend::create_container(const st::SandboxRecord& pod, st::ContainerRecord& c,
                                   const ImageUse& image) {
  if (!pod_alive(pod))
    fail(StatusCode::FAILED_PRECONDITION, "the infra process of pod {} is gone: create a new pod",
         pod.id());
  // Refusals that need no host state come before anything is made: the seccomp profile
  // (a Localhost file must exist and parse) and the target of PID namespace mode TARGET.
  container_seccomp(pod.config(), c.config(), {});
  pid_t target = target_pid(pod, c.config());
  const std::string& id = c.id();
  fs::path b = bundle(id), ov = overlay_dir(id), rootfs = b / "rootfs";
  // Each step pushes its undo; a failure runs them backwards so nothing half-made stays.
  std::vector<std::function<void()>> undo;
  try {
    std::error_code ec;
    fs::create_directories(rootfs);
    undo.push_back([b] {
      std::error_code e;
      fs::remove_all(b, e);
    });
    fs::create_directories(ov / "upper");
    fs::create_directories(ov / "work");
    undo.push_back([ov] {
      std::error_code e;
      fs::remove_all(ov, e);
    });
    std::string image_id = image.image.id.str();
    fs::path lower = images_.acquire(image_id, image.fs_image, id);
    undo.push_back([this, image_id, id] { images_.release(image_id, id); });
    mount_overlay(lower, ov / "upper", ov / "work", rootfs);
    undo.push_back([rootfs] { unmount(rootfs); });
    fs::path pb = bundle(pod.id());
    PodPaths paths{static_cast<pid_t>(pod.infra().pid()), pb / "resolv.conf", pb / "hostname",
                   is_mount_point(pb / "shm") ? pb / "shm" : fs::path(), target};
    auto spec = container_spec(pod.config(), c.config(), image.image.config, rootfs, paths,
                               cgroups_path(pod.config(), id));
    write_file(b / "config.json", spec.dump(2));
    write_file(members(pod.id()) / id, "");
    undo.push_back([this, &pod, id] {
      std::error_code e;
      fs::remove(members(pod.id()) / id, e);
    });
    fs::path log = c.log_path().empty() ? b / "container.log" : fs::path(c.log_path());
    pid_t monitor = create(id, log, c.config().tty());
    auto ref = sandbox::ProcRef::of(monitor);
    c.mutable_monitor()->set_pid(static_cast<uint32_t>(monitor));
    c.mutable_monitor()->set_start_time(ref.start);
    c.set_pid(static_cast<uint32_t>(read_pid(b / "pidfile")));
  } catch (...) {
    try {
      remove_runc(id);
    } catch (const std::exception& e) {
      common::log::warn("runc", "cleaning up container {}: {}", id.substr(0, 12), e.what());
    }
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
      try {
        (*it)();
      } catch (const std::exception& e) {
        common::log::warn("runc", "cleaning up container {}: {}", id.substr(0, 12), e.what());
      }
    }
    std::error_code ec;
    fs::remove(exit_file(id), ec);
    throw;
  }
}

pid_t RuncBackend::target_pid(const st::SandboxRecord& pod, const rt::ContainerConfig& c) {
  const auto& cns = c.linux().security_context().namespace_options();
  const auto& pns = pod.config().linux().security_context().namespace_options();
  if (cns.pid() != rt::TARGET || pns.pid() == rt::NODE) return 0;
  const std::string& target = cns.target_id();
  bool is_id = !target.empty() && target.size() <= 64 &&
               target.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (!is_id || !fs::exists(bundle(target) / "config.json") || fs::exists(members(target)))
    fail(StatusCode::NOT_FOUND, "PID namespace target container '{}' not found",
         target.substr(0, 64));
  if (!fs::exists(members(pod.id()) / target))
    fail(StatusCode::FAILED_PRECONDITION,
         "PID namespace target container {} belongs to another pod", target.substr(0, 12));
  auto r = runc({"state", target}, 30s);
  auto state = nlohmann::json::parse(r.out, nullptr, false);
  pid_t pid = 0;
  if (r.status == 0 && state.is_object() && state.value("status", "") == "running")
    pid = state.value("pid", 0);
  if (pid <= 0)
    fail(StatusCode::FAILED_PRECONDITION,
         "PID namespace target container {} is not running: start it first", target.substr(0, 12));
  return pid;
}

void RuncBackend::sweep(const std::set<std::string>& pod_ids, const std::set<std::string>& container_ids) {
  auto is_id = [](const std::string& n) {
    return n.size() == 64 && n.find_first_not_of("0123456789abcdef") == std::string::npos;
  };
  // What runc knows plus bundles runc never saw (a kill before `runc create`).
  std::set<std::string> found;
  try {
    auto r = runc({"list", "-q"}, 30s);
    if (r.status != 0) throw std::runtime_error("runc list: " + trimmed(r.err));
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);)
      if (!trimmed(line).empty()) found.insert(trimmed(line));
  } catch (const std::exception& e) {
    common::log::warn("runc", "sweep: {}; only bundles are swept", e.what());
  }
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir_, ec))
    if (is_id(e.path().filename())) found.insert(e.path().filename());
  std::vector<std::string> orphans;
  for (auto& id : found)
    if (!pod_ids.count(id) && !container_ids.count(id)) orphans.push_back(id);
  // Containers before pod infras, so a pod's namespaces outlive its members' removal.
  std::stable_partition(orphans.begin(), orphans.end(),
                        [this](const std::string& id) { return !fs::exists(members(id)); });
  for (auto& id : orphans) {
    try {
      bool in_runc = runc({"state", id}, 30s).status == 0;
      remove_runc(id);
      unmount(bundle(id) / "rootfs");
      unmount(bundle(id) / "shm");
      std::error_code e;
      for (auto& img : fs::directory_iterator(dir_ / "images", e)) {
        std::string n = img.path().filename();
        if (n.size() > 6 && n.ends_with(".users") && fs::exists(img.path() / id))
          images_.release(n.substr(0, n.size() - 6), id);
      }
      fs::remove_all(bundle(id), e);
      fs::remove_all(overlay_dir(id), e);
      fs::remove(overlay_dir(id).parent_path(), e);  // only when empty: a record would stay
      fs::remove(exit_file(id), e);
      for (auto& pod : fs::directory_iterator(dir_, e))
        if (fs::exists(pod.path() / "members" / id)) fs::remove(pod.path() / "members" / id, e);
      common::log::warn("runc", "sweep: {} {} had no record; deleted it, unmounted and removed its bundle",
                        in_runc ? "runc container" : "bundle", id.substr(0, 12));
    } catch (const std::exception& e) {
      common::log::warn("runc", "sweep: orphan {}: {}", id.substr(0, 12), e.what());
    }
  }
}

void RuncBackend::start_container(const st::SandboxRecord&, st::ContainerRecord& c) {
  if (c.config().tty() && c.pid() > 0) set_terminal_onlcr(static_cast<pid_t>(c.pid()), c.id());
  auto r = runc({"start", c.id()});
  if (r.status != 0)
    fail(StatusCode::UNKNOWN, "runc start {}: {}", c.id().substr(0, 12), trimmed(r.err));
}

void RuncBackend::stop_container(const st::SandboxRecord&, st::ContainerRecord& c,
                                 std::chrono::seconds timeout, int stop_signal) {
  if (timeout > 0s) {
    kill(c.id(), stop_signal, false);
    if (wait_exit(c.id(), timeout)) return;
  }
  kill(c.id(), SIGKILL, true);
  if (!wait_exit(c.id(), 10s))
    fail(StatusCode::DEADLINE_EXCEEDED, "container {} did not exit within 10 s of SIGKILL", c.id());
}

void RuncBackend::remove_container(const st::SandboxRecord& pod, const st::ContainerRecord& c) {
  const std::string& id = c.id();
  remove_runc(id);
  fs::path rootfs = bundle(id) / "rootfs";
  unmount(rootfs);
  images_.release(c.image_id(), id);
  std::error_code ec;
  fs::remove_all(bundle(id), ec);
  fs::remove_all(overlay_dir(id), ec);
  fs::remove(exit_file(id), ec);
  fs::remove(members(pod.id()) / id, ec);
}

bool RuncBackend::refresh(const st::SandboxRecord& pod, st::ContainerRecord& c) {
  if (c.state() == rt::CONTAINER_EXITED) return false;
  fs::path ef = exit_file(c.id());
  std::error_code ec;
  if (fs::exists(ef, ec)) {
    int code = -1;
    std::ifstream(ef) >> code;
    c.set_state(rt::CONTAINER_EXITED);
    c.set_exit_code(code);
    struct stat sb;
    int64_t finished = ::stat(ef.c_str(), &sb) == 0
                           ? sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec
                           : now_ns();
    // The Runtime stamps started_at after `runc start` returned; a quick process may be done by
    // then.
    c.set_finished_at(std::max(finished, c.started_at()));
    bool oom = oom_killed(cgroups_path(pod.config(), c.id()));
    c.set_reason(oom ? "OOMKilled" : code == 0 ? "Completed" : "Error");
    if (code < 0) c.set_message("conmon's exit file was unreadable");
    return true;
  }
  if (proc_of(c.monitor()).alive()) return false;
  // conmon is gone without an exit file (killed): ask runc what became of the container.
  auto r = runc({"state", c.id()}, 30s);
  if (r.status == 0 && (r.out.find("\"running\"") != std::string::npos ||
                        r.out.find("\"created\"") != std::string::npos))
    return false;
  c.set_state(rt::CONTAINER_EXITED);
  c.set_exit_code(255);
  c.set_finished_at(now_ns());
  c.set_reason("Error");
  c.set_message("its monitor (conmon) died, so the exit code is unknown");
  return true;
}

ExecResult RuncBackend::exec_sync(const st::SandboxRecord&, const st::ContainerRecord& c,
                                  const std::vector<std::string>& cmd,
                                  std::chrono::seconds timeout) {
  static std::atomic<uint64_t> counter{0};
  fs::path pidfile = bundle(c.id()) / fmt::format("exec-{}-{}.pid", ::getpid(), counter++);
  std::vector<std::string> args = {
      runc_bin_.string(), "--root", (dir_ / "state").string(), "exec", "--pid-file",
      pidfile.string(),   c.id()};
  args.insert(args.end(), cmd.begin(), cmd.end());
  // On timeout the process inside the container is killed, not only runc exec. (runc exec
  // adopts and waits for what the command leaves running, `cmd &`, as containerd's exec does.)
  auto r = run_process(args, timeout, [&] {
    if (pid_t pid = read_pid(pidfile); pid > 0) ::kill(pid, SIGKILL);
  });
  std::error_code ec;
  fs::remove(pidfile, ec);
  if (r.timed_out)
    fail(StatusCode::DEADLINE_EXCEEDED, "command '{}' timed out after {} s and was killed",
         fmt::join(cmd, " "), timeout.count());
  return {std::move(r.out), std::move(r.err), r.status};
}

rt::ContainerStats RuncBackend::stats(const st::SandboxRecord& pod, const st::ContainerRecord& c) {
  std::string cg = cgroups_path(pod.config(), c.id());
  fs::path mem = "/sys/fs/cgroup/memory" + cg, cpu = "/sys/fs/cgroup/cpuacct" + cg;
  int64_t ts = now_ns();
  rt::ContainerStats s;
  auto* attr = s.mutable_attributes();
  attr->set_id(c.id());
  *attr->mutable_metadata() = c.config().metadata();
  *attr->mutable_labels() = c.config().labels();
  *attr->mutable_annotations() = c.config().annotations();
  s.mutable_cpu()->set_timestamp(ts);
  s.mutable_cpu()->mutable_usage_core_nano_seconds()->set_value(
      cgroup_number(cpu / "cpuacct.usage"));
  uint64_t usage = cgroup_number(mem / "memory.usage_in_bytes");
  uint64_t inactive = cgroup_value(mem / "memory.stat", "total_inactive_file");
  auto* m = s.mutable_memory();
  m->set_timestamp(ts);
  m->mutable_usage_bytes()->set_value(usage);
  m->mutable_working_set_bytes()->set_value(usage > inactive ? usage - inactive : 0);
  m->mutable_rss_bytes()->set_value(cgroup_value(mem / "memory.stat", "total_rss"));
  m->mutable_page_faults()->set_value(cgroup_value(mem / "memory.stat", "total_pgfault"));
  m->mutable_major_page_faults()->set_value(cgroup_value(mem / "memory.stat", "total_pgmajfault"));
  auto [bytes, inodes] = tree_usage(overlay_dir(c.id()) / "upper");
  auto* w = s.mutable_writable_layer();
  w->set_timestamp(ts);
  w->mutable_fs_id()->set_mountpoint(overlay_dir(c.id()).string());
  w->mutable_used_bytes()->set_value(bytes);
  w->mutable_inodes_used()->set_value(inodes);
  return s;
}

void RuncBackend::reopen_log(const st::SandboxRecord&, const st::ContainerRecord& c) {
  // conmon's control FIFO: "2 0 0\n" is its reopen-log event (1 would be a terminal resize).
  fs::path ctl = bundle(c.id()) / "ctl";
  common::Fd fd(::open(ctl.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd)
    fail(StatusCode::FAILED_PRECONDITION, "the monitor of container {} is not running ({})", c.id(),
         std::strerror(errno));
  static constexpr char kReopen[] = "2 0 0\n";
  common::write_all(fd.get(), kReopen, sizeof kReopen - 1, "conmon's control FIFO");
}

void RuncBackend::update_resources(const st::SandboxRecord&, const st::ContainerRecord& c,
                                   const rt::LinuxContainerResources& resources) {
  const auto& id = c.id();
  auto body = update_request(c.resources(), resources, id);
  if (body.empty()) return;  // nothing to change
  static std::atomic<uint64_t> counter{0};
  fs::path file = bundle(id) / fmt::format("update-{}-{}.json", ::getpid(), counter++);
  write_file(file, body.dump());
  auto r = runc({"update", "--resources", file.string(), id}, 30s);
  std::error_code ec;
  fs::remove(file, ec);
  if (r.timed_out)
    fail(StatusCode::DEADLINE_EXCEEDED, "runc update of container {} did not finish within 30 s",
         id);
  if (r.status == 0) return;
  // runc names the cgroup file the kernel refused; the kernel's reason picks the code.
  const std::string& e = r.err;
  auto has = [&](const char* s) { return e.find(s) != std::string::npos; };
  StatusCode code = has("not running") || has("does not exist") || has("stopped")
                        ? StatusCode::FAILED_PRECONDITION
                    : has("invalid argument") || has("out of range") ? StatusCode::INVALID_ARGUMENT
                    : has("resource busy") ? StatusCode::FAILED_PRECONDITION
                                           : StatusCode::UNKNOWN;
  fail(code, "runc update of container {} ({}) failed: {}", id, body.dump(), trimmed(e));
}

}  // namespace frakti::cri
