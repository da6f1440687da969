#pragma once
// The sync socket between the agent (parent) and a child it is turning into a container
// process. SOCK_SEQPACKET keeps message boundaries; the child's end is CLOEXEC, so after
// a successful execve the parent reads end-of-file: that is how "exec worked" is reported.
// A child that fails sends one error message (code, errno, sentence) and exits.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "common/fd.hpp"
#include "proto/agent/agent.pb.h"

namespace frakti::agent::container {

/// The numbered sync points of container creation (see create.cpp).
enum class SyncStep : uint32_t {
  child_ready = 1,       // child: alive in its new namespaces, waiting
  parent_done = 2,       // parent: cgroup and the rest of the outside set up; go on
  child_configured = 3,  // child: rootfs, mounts, user, capabilities done; waiting for start
  start = 4,             // parent: StartContainer; exec now
  pty_master = 5,        // child: the master of the pty it opened in the container's devpts
  error = 255,           // child: failed (see the message), exiting
};

struct SyncMessage {
  SyncStep step = SyncStep::error;
  v1::Error::Code code = v1::Error::CODE_INTERNAL;
  int32_t errno_value = 0;
  std::string text;
};

struct SyncPair {
  common::Fd parent;
  common::Fd child;
};
SyncPair make_sync_pair();

/// Sends a step (no text).
void sync_send(int fd, SyncStep step);
/// Child: reports the exception being handled (AgentError keeps its code, system_error its
/// errno); best effort.
void sync_send_current_exception(int fd, const char* during);
/// Waits up to timeout for a message; nullopt on end-of-file (the peer exec'd or died).
/// Throws AgentError(CODE_DEADLINE_EXCEEDED) on timeout.
std::optional<SyncMessage> sync_receive(int fd, std::chrono::milliseconds timeout,
                                        const char* waiting_for);
/// Sends `step` with fd attached (SCM_RIGHTS).
void sync_send_fd(int sock, SyncStep step, int fd);
/// Receives a message that must be `step` with an fd attached; an error message is rethrown
/// as AgentError like sync_expect.
common::Fd sync_receive_fd(int sock, SyncStep step, std::chrono::milliseconds timeout,
                           const char* waiting_for);
/// Receives and requires `step`: an error message is rethrown as AgentError with the child's
/// code and text; EOF is an error naming what was awaited.
void sync_expect(int fd, SyncStep step, std::chrono::milliseconds timeout, const char* waiting_for);

}  // namespace frakti::agent::container
