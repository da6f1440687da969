#pragma once
// cgroup v2 for containers: one directory per container under the agent's cgroup root
// (/sys/fs/cgroup/frakti in the guest), limits written before the container's first process
// starts (it is cloned straight into the cgroup), stats, OOM counter, kill-all.
// Only cgroup v2 is supported (the guest kernel has it); a limit whose controller is missing
// is an error naming the controller, never silently ignored.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/container/spec.hpp"
#include "common/fd.hpp"

namespace frakti::agent::container {

/// Where container cgroups are created, and which controllers they can use.
class CgroupRoot {
 public:
  /// Checks path is (or creates it inside) a cgroup2 mount and enables the available
  /// controllers for its children. Throws std::system_error naming the path when path is
  /// not on cgroup2.
  static CgroupRoot open(const std::string& path);
  const std::string& path() const { return path_; }
  /// Controllers the children can use ("memory", "cpu", "pids", "cpuset", ...).
  const std::set<std::string>& controllers() const { return controllers_; }
  bool has(const std::string& controller) const { return controllers_.count(controller) != 0; }

 private:
  std::string path_;
  std::set<std::string> controllers_;
};

struct CgroupStats {
  uint64_t cpu_usage_ns = 0, cpu_user_ns = 0, cpu_system_ns = 0;
  uint64_t throttled_periods = 0, throttled_ns = 0;
  uint64_t memory_usage = 0, memory_working_set = 0, memory_rss = 0, memory_cache = 0;
  uint64_t memory_limit = 0, page_faults = 0, major_page_faults = 0, oom_kills = 0;
  uint64_t pids_current = 0, pids_limit = 0;
};

class Cgroup {
 public:
  /// Creates root/name and writes the limits. Throws AgentError(CODE_FAILED_PRECONDITION)
  /// when a limit needs a controller root lacks; std::system_error for file errors.
  static Cgroup create(const CgroupRoot& root, const std::string& name,
                       const ResourcesSpec& resources);
  Cgroup() = default;
  Cgroup(Cgroup&&) = default;
  Cgroup& operator=(Cgroup&&) = default;

  /// Writes new limits; fields left 0 keep their value, -1 lifts a quota or limit. Throws
  /// like create, and std::system_error (EBUSY) when memory cannot shrink below current use.
  void update(const CgroupRoot& root, const ResourcesSpec& resources) const;
  const std::string& path() const { return path_; }
  bool valid() const { return !path_.empty(); }
  /// An O_DIRECTORY fd for clone3's CLONE_INTO_CGROUP.
  int fd() const { return dir_.get(); }
  /// The pids in the cgroup now.
  std::vector<pid_t> pids() const;
  /// Sends signal to every process; SIGKILL uses cgroup.kill (atomic, also catches forks),
  /// falling back to one kill per pid. Best effort and never throws: its callers are teardown
  /// paths (timers, exit handlers, destructors) that must go on.
  void signal_all(int signal) const noexcept;
  CgroupStats stats() const;
  /// memory.events oom_kill (0 without the memory controller).
  uint64_t oom_kills() const;
  /// Removes the directory, retrying briefly while the last processes leave; false if it
  /// is still busy.
  bool remove();

 private:
  std::string path_;
  common::Fd dir_;
};

/// Parses "key value" lines (cpu.stat, memory.stat, memory.events); missing key = 0.
uint64_t stat_value(const std::string& text, const std::string& key);

}  // namespace frakti::agent::container
