// ExecProcess: one more process inside a running container. The agent enters the
// container's PID namespace for its next child only (setns pid_for_children), clones straight
// into the container's cgroup, and the child joins the rest of init's namespaces through its
// pidfd before the same process setup as init.

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent_error.hpp"
#include "agent/container/child.hpp"
#include "agent/container/container.hpp"
#include "agent/container/sync.hpp"
#include "agent/sys/process.hpp"
#include "common/error.hpp"
#include "common/log.hpp"

namespace frakti::agent::container {

namespace {

[[noreturn]] void exec_child(const Container& c, const ProcessSpec& spec,
                             process::ChildStdio& stdio, int sync) {
  const char* during = "joining the container";
  try {
    // Everything but the PID namespace (joined by the parent for us) and the user namespace
    // (there is none); the mount namespace puts us in the container's root.
    sys::set_namespaces(c.init_pidfd.get(),
                        CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWCGROUP,
                        "into the container's namespaces");
    if (stdio.terminal) {
      auto master = process::open_child_pty(stdio, spec.rows, spec.cols);
      sync_send_fd(sync, SyncStep::pty_master, master.get());
    }
    during = "switching to the process's user";
    ResolvedUser user = resolve_container_user(spec.user);
    apply_process_settings(spec, user, stdio, c.spec.seccomp_profile_json);
    during = "starting the process";
    exec_process(spec, user, c.spec.seccomp_profile_json);
  } catch (...) {
    sync_send_current_exception(sync, during);
  }
  ::_exit(127);
}

struct ReturnToPidNamespace {
  int fd;
  ~ReturnToPidNamespace() {
    if (::setns(fd, CLONE_NEWPID) < 0) {
      common::log::error("agent-container", "cannot return to the agent's PID namespace: {}",
                         std::strerror(errno));
    }
  }
};

}  // namespace

pid_t exec_in_container(const Container& c, const ProcessSpec& spec, const Environment& env,
                        process::AgentStdio* agent_stdio, std::chrono::milliseconds timeout) {
  if (c.state != ContainerState::running || !c.init || !c.init->running()) {
    throw AgentError(v1::Error::CODE_FAILED_PRECONDITION,
                     fmt::format("container {} is {}: exec needs a running container", c.spec.id,
                                 c.init && !c.init->running() ? "stopped" : state_name(c.state)));
  }
  process::StdioRequest streams{spec.terminal,      spec.stdin_stream, spec.stdout_stream,
                                spec.stderr_stream, spec.rows,         spec.cols};
  auto stdio = process::make_stdio(streams);
  auto sync = make_sync_pair();
  sys::CloneResult child;
  {
    sys::set_namespaces(c.init_pidfd.get(), CLONE_NEWPID, "into the container's PID namespace");
    ReturnToPidNamespace back{env.agent_pid_ns_fd};
    child = sys::clone_process(0, c.cgroup.valid() ? c.cgroup.fd() : -1);
    if (child.pid == 0) {
      sync.parent.reset();
      exec_child(c, spec, stdio.child, sync.child.get());
    }
  }
  sync.child.reset();
  stdio.child = {};
  if (spec.terminal) {
    try {
      stdio.agent.pty_master =
          sync_receive_fd(sync.parent.get(), SyncStep::pty_master, timeout, "the exec's terminal");
      common::check(::fcntl(stdio.agent.pty_master.get(), F_SETFL, O_NONBLOCK),
                    "set the pty master non-blocking");
    } catch (...) {
      ::kill(child.pid, SIGKILL);
      ::waitpid(child.pid, nullptr, 0);
      throw;
    }
  }
  auto reply = sync_receive(sync.parent.get(), timeout, "the exec'd process to start");
  if (reply && reply->step == SyncStep::error) {
    ::waitpid(child.pid, nullptr, 0);
    throw AgentError(reply->code, reply->text, reply->errno_value);
  }
  *agent_stdio = std::move(stdio.agent);
  return child.pid;
}

}  // namespace frakti::agent::container
