// StartContainer: sync point 4 of create.cpp: the waiting init execs.

#include "agent/agent_error.hpp"
#include "agent/container/container.hpp"
#include "agent/container/sync.hpp"

namespace frakti::agent::container {

void start_container(Container& c, std::chrono::milliseconds timeout) {
  if (c.state != ContainerState::created || !c.sync) {
    throw AgentError(
        v1::Error::CODE_FAILED_PRECONDITION,
        fmt::format("container {} is {}, not created", c.spec.id, state_name(c.state)));
  }
  common::Fd sync = std::move(c.sync);
  sync_send(sync.get(), SyncStep::start);
  // End-of-file means execve closed the child's CLOEXEC end: the program runs.
  auto reply = sync_receive(sync.get(), timeout, "the container's init to exec");
  c.state = ContainerState::running;
  if (reply && reply->step == SyncStep::error)
    throw AgentError(reply->code, reply->text, reply->errno_value);
}

}  // namespace frakti::agent::container
