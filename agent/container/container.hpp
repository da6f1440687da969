#pragma once
// Container: what the agent keeps about one container between requests, and the
// lifecycle verbs (one file each): create.cpp, start.cpp, exec.cpp, remove.cpp.
// Owned by the service; used on the agent's thread only.

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "agent/container/cgroup.hpp"
#include "agent/container/drives.hpp"
#include "agent/container/spec.hpp"
#include "agent/process/process.hpp"
#include "agent/process/stdio.hpp"
#include "common/fd.hpp"

namespace frakti::agent::container {

enum class ContainerState { created, running, stopped };

/// "created", "running", "stopped".
const char* state_name(ContainerState state);

struct Container {
  ContainerSpec spec;
  ContainerState state = ContainerState::created;
  /// The init process (exists from create on; it waits for StartContainer before exec).
  std::shared_ptr<process::Process> init;
  /// pidfd of init: joins its namespaces for exec.
  common::Fd init_pidfd;
  /// Processes started by ExecProcess, by exec id.
  std::map<std::string, std::shared_ptr<process::Process>> execs;
  /// Invalid when the agent runs without cgroups.
  Cgroup cgroup;
  /// The agent's end of the sync channel until the start (see sync.hpp).
  common::Fd sync;
  /// The agent's stdio ends of init until the service starts pumping them.
  process::AgentStdio init_stdio;
  /// memory.events oom_kill already reported.
  uint64_t oom_kills_reported = 0;
  /// state_dir/containers/<id>: the overlay's mount points (inside the container's mount
  /// namespace only).
  std::string scratch_dir;
};

/// What container creation needs from the agent around it.
struct Environment {
  Drives* drives = nullptr;
  /// nullptr = no cgroups (host test mode without cgroup v2).
  const CgroupRoot* cgroup_root = nullptr;
  /// The agent's state directory (/run/frakti in the guest).
  std::string state_dir;
  /// pidfd of the pod-wide PID namespace's init (for MODE_POD pid namespaces), or -1.
  int pod_pid_fd = -1;
  /// The agent's own PID namespace (to return to after cloning into another one).
  int agent_pid_ns_fd = -1;
  /// Budget for the whole call (drive wait included).
  std::chrono::steady_clock::time_point deadline;
};

/// Creates the container up to the point where its init waits for StartContainer. Throws
/// AgentError / std::system_error; nothing is left behind on failure.
std::unique_ptr<Container> create_container(const ContainerSpec& spec, const Environment& env);
/// Lets init exec; returns when it did (or throws the exec error). Init is already watched.
void start_container(Container& container, std::chrono::milliseconds timeout);
/// Starts an extra process in the container's namespaces and cgroup. Returns the pid; the
/// agent's stdio ends go to *stdio. Throws AgentError / std::system_error.
pid_t exec_in_container(const Container& container, const ProcessSpec& spec, const Environment& env,
                        process::AgentStdio* stdio, std::chrono::milliseconds timeout);
/// Kills every process of the container (init first: with its own PID namespace the kernel
/// kills the rest). Never throws: the shutdown timer, exit handlers and destructors call it.
void kill_container(const Container& container) noexcept;
/// Frees what the container held outside its mount namespace (cgroup, scratch dir).
/// Call after every process was reaped. False when the cgroup is still busy.
bool cleanup_container(Container& container);

}  // namespace frakti::agent::container
