#pragma once
// Verbs on containers that already run (shared by exec, stop and rm).

#include <chrono>
#include <optional>

#include <boost/asio/io_context.hpp>

#include "sandbox/agent_client.hpp"
#include "tools/vmctl/state.hpp"

namespace frakti::vmctl {

/// A new agent connection to a running container's VM. Throws CommandError when it is not
/// running or its VM does not answer.
sandbox::AgentClient& connect_agent(const StateDir& state, const ContainerRecord& rec, boost::asio::io_context& io,
                                    std::optional<sandbox::AgentClient>& slot);

/// Sends the stop signal, waits up to grace for the container to exit, then SIGKILLs
/// everything in it; returns once the record says exited (the supervisor shut the VM down)
/// or, when the supervisor is gone too, after stopping the VM itself.
void stop_container(const StateDir& state, const ContainerRecord& rec, std::chrono::seconds grace);

/// "SIGTERM", "TERM", "15" -> 15; 0 for unknown names.
int signal_number(const std::string& name);

}  // namespace frakti::vmctl
