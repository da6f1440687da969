#include "agent/container/cgroup.hpp"

#include <fcntl.h>
#include <fmt/ranges.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <charconv>
#include <sstream>
#include <system_error>
#include <thread>

#include "agent/agent_error.hpp"
#include "agent/sys/files.hpp"
#include "common/error.hpp"
#include "common/log.hpp"

namespace frakti::agent::container {

namespace {

std::set<std::string> words(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  std::string w;
  while (in >> w) out.insert(w);
  return out;
}

uint64_t parse_u64(std::string_view s) {
  s = sys::trim_right(s);
  uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

void require(const CgroupRoot& root, const char* controller, const char* what) {
  if (!root.has(controller)) {
    throw AgentError(
        v1::Error::CODE_FAILED_PRECONDITION,
        fmt::format("{} requested, but the cgroup v2 '{}' controller is not available at {} "
                    "(available: '{}')",
                    what, controller, root.path(), fmt::join(root.controllers(), " ")));
  }
}

}  // namespace

uint64_t stat_value(const std::string& text, const std::string& key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ') {
      return parse_u64(line.substr(key.size() + 1));
    }
    pos = end + 1;
  }
  return 0;
}

CgroupRoot CgroupRoot::open(const std::string& path) {
  sys::make_dirs(path);
  struct statfs fs {};
  common::check(::statfs(path.c_str(), &fs), "statfs {}", path);
  if (fs.f_type != CGROUP2_SUPER_MAGIC) {
    common::throw_error(ENOTSUP,
                        fmt::format("{} is not on a cgroup v2 file system (mount cgroup2 there, or "
                                    "run the agent with --cgroup-root=none)",
                                    path));
  }
  CgroupRoot root;
  root.path_ = path;
  // Enable controllers top-down: a child can only use what its parent enabled. The parent of
  // path is enabled too when it is on cgroup2 (the guest's /sys/fs/cgroup itself).
  std::string parent = path.substr(0, path.find_last_of('/'));
  for (const std::string& dir : {parent, path}) {
    struct statfs pfs {};
    if (dir.empty() || ::statfs(dir.c_str(), &pfs) < 0 || pfs.f_type != CGROUP2_SUPER_MAGIC)
      continue;
    auto available = words(sys::try_read_file(dir + "/cgroup.controllers").value_or(""));
    for (const auto& c : available) {
      if (c != "cpu" && c != "memory" && c != "pids" && c != "cpuset" && c != "io") continue;
      try {
        sys::write_file(dir + "/cgroup.subtree_control", "+" + c);
      } catch (const std::system_error&) {
        // A parent with processes of its own cannot enable controllers; the children of
        // path then simply do not get them (reported when a limit asks for one).
      }
    }
  }
  root.controllers_ = words(sys::try_read_file(path + "/cgroup.subtree_control").value_or(""));
  return root;
}

namespace {

void require_controllers(const CgroupRoot& root, const ResourcesSpec& r) {
  if (r.memory_limit || r.memory_reservation || r.memory_swap_limit)
    require(root, "memory", "a memory limit");
  if (r.cpu_quota_us > 0 || r.cpu_weight) require(root, "cpu", "a CPU quota or weight");
  if (!r.cpuset_cpus.empty() || !r.cpuset_mems.empty()) require(root, "cpuset", "a cpuset");
  if (r.pids_limit > 0) require(root, "pids", "a pids limit");
}

// Writes the limits r sets into the cgroup at p. At creation a 0 field means "no limit";
// at an update it means "unchanged" (runc update's rule), and -1 lifts a quota or limit.
void write_limits(const CgroupRoot& root, const std::string& p, const ResourcesSpec& r, bool update) {
  if (r.memory_limit) {
    // Lowering below current usage makes the kernel reclaim first, then fail with EBUSY.
    sys::write_file(p + "/memory.max", std::to_string(r.memory_limit));
  }
  bool has_swap_file = sys::try_read_file(p + "/memory.swap.max").has_value();
  if (has_swap_file) {
    // Without swap accounting the limit would leak into swap; memory+swap minus memory.
    int64_t mem = r.memory_limit;
    if (r.memory_swap_limit > 0 && mem > 0) {
      sys::write_file(p + "/memory.swap.max", std::to_string(r.memory_swap_limit - mem));
    } else if (r.memory_swap_limit == -1) {
      sys::write_file(p + "/memory.swap.max", "max");
    } else if (r.memory_swap_limit == 0 && mem > 0 && !update) {
      sys::write_file(p + "/memory.swap.max", "0");
    }
  }
  if (r.memory_reservation) sys::write_file(p + "/memory.low", std::to_string(r.memory_reservation));
  if (r.cpu_quota_us > 0 || (r.cpu_quota_us == -1 && update) || (r.cpu_period_us && root.has("cpu"))) {
    std::string quota = r.cpu_quota_us > 0 ? std::to_string(r.cpu_quota_us) : "max";
    if (update && r.cpu_quota_us == 0) {  // a new period alone keeps the quota
      auto cur = sys::try_read_file(p + "/cpu.max").value_or("max");
      quota = cur.substr(0, cur.find(' '));
    }
    uint64_t period = r.cpu_period_us ? r.cpu_period_us : 100000;
    sys::write_file(p + "/cpu.max", fmt::format("{} {}", quota, period));
  }
  if (r.cpu_weight) sys::write_file(p + "/cpu.weight", std::to_string(r.cpu_weight));
  if (!r.cpuset_cpus.empty()) sys::write_file(p + "/cpuset.cpus", r.cpuset_cpus);
  if (!r.cpuset_mems.empty()) sys::write_file(p + "/cpuset.mems", r.cpuset_mems);
  if (r.pids_limit > 0) sys::write_file(p + "/pids.max", std::to_string(r.pids_limit));
  if (r.pids_limit == -1 && update) sys::write_file(p + "/pids.max", "max");
}

}  // namespace

Cgroup Cgroup::create(const CgroupRoot& root, const std::string& name, const ResourcesSpec& r) {
  require_controllers(root, r);
  Cgroup cg;
  cg.path_ = root.path() + "/" + name;
  if (::mkdir(cg.path_.c_str(), 0755) < 0) {
    if (errno != EEXIST) common::throw_errno(fmt::format("create cgroup {}", cg.path_));
  }
  cg.dir_ = common::Fd(::open(cg.path_.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!cg.dir_) common::throw_errno(fmt::format("open cgroup {}", cg.path_));
  write_limits(root, cg.path_, r, false);
  return cg;
}

void Cgroup::update(const CgroupRoot& root, const ResourcesSpec& r) const {
  require_controllers(root, r);
  write_limits(root, path_, r, true);
}

std::vector<pid_t> Cgroup::pids() const {
  std::vector<pid_t> out;
  auto text = sys::try_read_file(path_ + "/cgroup.procs");
  if (!text) return out;
  std::istringstream in(*text);
  pid_t pid;
  while (in >> pid) out.push_back(pid);
  return out;
}

void Cgroup::signal_all(int signal) const noexcept {
  try {
    if (signal == SIGKILL && ::access((path_ + "/cgroup.kill").c_str(), W_OK) == 0) {
      try {
        sys::write_file(path_ + "/cgroup.kill", "1");
        return;
      } catch (const std::system_error& e) {
        common::log::warn("agent-cgroup", "{}; killing its processes one by one", e.what());
      }
    }
    for (pid_t pid : pids()) ::kill(pid, signal);
  } catch (const std::exception& e) {  // bad_alloc, or a read error of cgroup.procs
    common::log::error("agent-cgroup", "signalling the processes of {}: {}", path_, e.what());
  }
}

uint64_t Cgroup::oom_kills() const {
  auto text = sys::try_read_file(path_ + "/memory.events");
  return text ? stat_value(*text, "oom_kill") : 0;
}

CgroupStats Cgroup::stats() const {
  CgroupStats s;
  if (auto cpu = sys::try_read_file(path_ + "/cpu.stat")) {
    s.cpu_usage_ns = stat_value(*cpu, "usage_usec") * 1000;
    s.cpu_user_ns = stat_value(*cpu, "user_usec") * 1000;
    s.cpu_system_ns = stat_value(*cpu, "system_usec") * 1000;
    s.throttled_periods = stat_value(*cpu, "nr_throttled");
    s.throttled_ns = stat_value(*cpu, "throttled_usec") * 1000;
  }
  if (auto current = sys::try_read_file(path_ + "/memory.current")) {
    s.memory_usage = parse_u64(*current);
    auto stat = sys::try_read_file(path_ + "/memory.stat").value_or("");
    uint64_t inactive_file = stat_value(stat, "inactive_file");
    s.memory_working_set = s.memory_usage > inactive_file ? s.memory_usage - inactive_file : 0;
    s.memory_rss = stat_value(stat, "anon");
    s.memory_cache = stat_value(stat, "file");
    s.page_faults = stat_value(stat, "pgfault");
    s.major_page_faults = stat_value(stat, "pgmajfault");
    auto max = sys::try_read_file(path_ + "/memory.max").value_or("max");
    s.memory_limit = sys::trim_right(max) == "max" ? 0 : parse_u64(max);
    s.oom_kills = oom_kills();
  }
  if (auto current = sys::try_read_file(path_ + "/pids.current")) {
    s.pids_current = parse_u64(*current);
    auto max = sys::try_read_file(path_ + "/pids.max").value_or("max");
    s.pids_limit = sys::trim_right(max) == "max" ? 0 : parse_u64(max);
  } else {
    s.pids_current = pids().size();
  }
  return s;
}

bool Cgroup::remove() {
  if (path_.empty()) return true;
  dir_.reset();
  for (int i = 0; i < 50; ++i) {
    if (::rmdir(path_.c_str()) == 0 || errno == ENOENT) {
      path_.clear();
      return true;
    }
    if (errno != EBUSY) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace frakti::agent::container
