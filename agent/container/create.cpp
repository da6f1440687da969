// CreateContainer: the whole recipe in one function, with the numbered sync points between
// the agent (parent) and the child that becomes the container's init (see sync.hpp).

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent_error.hpp"
#include "agent/container/child.hpp"
#include "agent/container/container.hpp"
#include "agent/container/sync.hpp"
#include "agent/sys/files.hpp"
#include "agent/sys/process.hpp"
#include "common/error.hpp"
#include "common/log.hpp"

namespace frakti::agent::container {

namespace {

std::chrono::milliseconds time_left(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return std::max(left, std::chrono::milliseconds(1));
}

// Runs in the child; never returns.
[[noreturn]] void container_child(const ContainerSpec& spec, const RootfsPlan& plan,
                                  process::ChildStdio& stdio, int sync) {
  const char* during = "container setup";
  try {
    // Sync 1 -> 2: the parent finishes the outside (cgroup, ...) while this child waits.
    sync_send(sync, SyncStep::child_ready);
    sync_expect(sync, SyncStep::parent_done, std::chrono::seconds(60), "the agent (parent_done)");
    during = "preparing the root file system";
    prepare_rootfs(spec, plan);
    during = "setting up the container";
    if (!spec.hostname.empty())
      common::check(::sethostname(spec.hostname.data(), spec.hostname.size()), "sethostname {}",
                    spec.hostname);
    if (stdio.terminal) {
      // The pty comes from the container's own devpts, so the process's ttyname() exists in
      // its /dev/pts; the agent gets the master.
      auto master = process::open_child_pty(stdio, spec.process.rows, spec.process.cols);
      sync_send_fd(sync, SyncStep::pty_master, master.get());
    }
    during = "switching to the container's user";
    ResolvedUser user = resolve_container_user(spec.process.user);
    apply_process_settings(spec.process, user, stdio, spec.seccomp_profile_json);
    // Sync 3 -> 4: configured; exec only when StartContainer arrives.
    sync_send(sync, SyncStep::child_configured);
    auto start = sync_receive(sync, std::chrono::hours(24 * 365), "StartContainer");
    if (!start || start->step != SyncStep::start) ::_exit(0);  // the agent gave up on us
    during = "starting the container process";
    if (spec.init) {
      pid_t child = fork_behind_init(spec.process.terminal);
      if (child > 0) {
        ::close(sync);  // the process's exec (or its error) alone answers the agent
        run_container_init(child, spec.process.terminal);
      }
    }
    exec_process(spec.process, user, spec.seccomp_profile_json);
  } catch (...) {
    sync_send_current_exception(sync, during);
  }
  ::_exit(127);
}

// Restores the agent's PID namespace for its future children when leaving scope.
struct PidNamespaceGuard {
  int agent_ns = -1;
  bool switched = false;
  ~PidNamespaceGuard() {
    if (switched && ::setns(agent_ns, CLONE_NEWPID) < 0) {
      common::log::error("agent-container", "cannot return to the agent's PID namespace: {}",
                         std::strerror(errno));
    }
  }
};

}  // namespace

const char* state_name(ContainerState state) {
  switch (state) {
    case ContainerState::created:
      return "created";
    case ContainerState::running:
      return "running";
    case ContainerState::stopped:
      return "stopped";
  }
  return "?";
}

std::unique_ptr<Container> create_container(const ContainerSpec& spec, const Environment& env) {
  auto c = std::make_unique<Container>();
  c->spec = spec;
  c->scratch_dir = env.state_dir + "/containers/" + spec.id;

  // 1. The image: find the drive by serial (it may be hot-swapped in right now) and mount it
  //    read-only in the agent's namespace (shared by every container using the image).
  RootfsPlan plan;
  plan.lower =
      env.drives->attach(spec.rootfs.drive_serial, spec.rootfs.fs_type, true, "", "", env.deadline)
          .mount_point;

  // 2. The writable layer: a tmpfs the child mounts in its own namespace, or a directory on
  //    a scratch drive.
  sys::make_dirs(c->scratch_dir, 0700);
  plan.scratch = c->scratch_dir;
  plan.rootfs = c->scratch_dir + "/rootfs";
  if (spec.rootfs.upper == UpperKind::tmpfs) {
    plan.upper = c->scratch_dir + "/upper";
    plan.work = c->scratch_dir + "/work";
    plan.tmpfs_size = spec.rootfs.upper_size_limit;
  } else {
    auto scratch = env.drives->attach(spec.rootfs.upper_drive_serial,
                                      spec.rootfs.upper_drive_fs_type, false, "", "", env.deadline);
    plan.upper_on_tmpfs = false;
    plan.upper = scratch.mount_point + "/" + spec.id + "/upper";
    plan.work = scratch.mount_point + "/" + spec.id + "/work";
  }

  // 3. Block-device volumes become bind mounts of the drive's mount in the agent's namespace;
  //    raw devices (blockdev) bind mounts of the drive's device node.
  ContainerSpec child_spec = spec;
  for (auto& m : child_spec.mounts) {
    if (m.drive_serial.empty()) continue;
    if (m.type == "blockdev") {
      m.source = env.drives->device_node(m.drive_serial, env.deadline);
      m.type = "bind";
      m.bind = true;
      m.recursive = false;
      m.device_node = true;
      m.drive_serial.clear();
      continue;
    }
    m.source =
        env.drives
            ->attach(m.drive_serial, m.type, (m.flags & MS_RDONLY) != 0, m.data, "", env.deadline)
            .mount_point;
    m.bind = true;
    m.recursive = false;
    m.drive_serial.clear();
  }

  // 4. The cgroup with its limits, before the child exists: it is cloned straight into it.
  const auto& res = spec.resources;
  if (!env.cgroup_root &&
      (res.memory_limit || res.memory_reservation || res.cpu_quota_us > 0 || res.cpu_weight ||
       res.pids_limit > 0 || !res.cpuset_cpus.empty() || !res.cpuset_mems.empty())) {
    throw AgentError(
        v1::Error::CODE_FAILED_PRECONDITION,
        "resource limits (memory, cpu or pids) requested, but the agent runs without cgroups");
  }
  if (env.cgroup_root) c->cgroup = Cgroup::create(*env.cgroup_root, spec.id, spec.resources);
  auto forget_cgroup = [&] { c->cgroup.remove(); };

  try {
    // 5. stdio and the sync channel.
    process::StdioRequest streams{spec.process.terminal,      spec.process.stdin_stream,
                                  spec.process.stdout_stream, spec.process.stderr_stream,
                                  spec.process.rows,          spec.process.cols};
    auto stdio = process::make_stdio(streams);
    auto sync = make_sync_pair();

    // 6. clone3 into the new namespaces (and the pod's PID namespace when asked).
    sys::CloneResult child;
    {
      PidNamespaceGuard guard{env.agent_pid_ns_fd};
      if (spec.namespaces.pod_pid) {
        if (env.pod_pid_fd < 0)
          throw AgentError(v1::Error::CODE_FAILED_PRECONDITION, "no pod PID namespace to join");
        sys::set_namespaces(env.pod_pid_fd, CLONE_NEWPID, "into the pod's PID namespace");
        guard.switched = true;
      }
      child =
          sys::clone_process(spec.namespaces.clone_flags, c->cgroup.valid() ? c->cgroup.fd() : -1);
      if (child.pid == 0) {
        sync.parent.reset();
        container_child(child_spec, plan, stdio.child, sync.child.get());
      }
    }
    sync.child.reset();
    stdio.child = {};
    c->init_pidfd = std::move(child.pidfd);
    auto kill_child = [&] {
      ::kill(child.pid, SIGKILL);
      ::waitpid(child.pid, nullptr, 0);
    };
    try {
      // Sync 1: the child is alive in its namespaces.
      sync_expect(sync.parent.get(), SyncStep::child_ready, time_left(env.deadline),
                  "the container child to start");
      // Between 1 and 2 the parent would write uid/gid maps; there are no user namespaces in
      // the guest (the VM is the boundary), so nothing else is needed from outside.
      // Sync 2: let the child build its rootfs and process settings.
      sync_send(sync.parent.get(), SyncStep::parent_done);
      // (Terminal only) the pty master, opened in the container's devpts.
      if (spec.process.terminal) {
        stdio.agent.pty_master =
            sync_receive_fd(sync.parent.get(), SyncStep::pty_master, time_left(env.deadline),
                            "the container's terminal");
        common::check(::fcntl(stdio.agent.pty_master.get(), F_SETFL, O_NONBLOCK),
                      "set the pty master non-blocking");
      }
      // Sync 3: configured; the child now waits for StartContainer.
      sync_expect(sync.parent.get(), SyncStep::child_configured, time_left(env.deadline),
                  "the container's setup");
    } catch (...) {
      kill_child();
      throw;
    }
    c->init = std::make_shared<process::Process>(spec.id, "", child.pid, spec.process.args);
    c->sync = std::move(sync.parent);
    c->init_stdio = std::move(stdio.agent);
    c->state = ContainerState::created;
    return c;
  } catch (...) {
    forget_cgroup();
    throw;
  }
}

}  // namespace frakti::agent::container
