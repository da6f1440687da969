#pragma once
// A process's stdio as the agent sets it up: pipes (or one pty) whose child ends become fds
// 0-2 of the process and whose agent ends are pumped to and from the host's streams.

#include <cstdint>

#include "common/fd.hpp"

namespace frakti::agent::process {

/// The ends the child dup2()s onto 0, 1, 2 (/dev/null for a stream the host did not open).
/// For a terminal all three are empty: the child opens the pty inside the container's own
/// devpts (so ttyname() works there) and passes the master back (open_child_pty).
struct ChildStdio {
  common::Fd in, out, err;
  bool terminal = false;
};

/// The agent's ends (invalid when unused). For a terminal only `pty_master` is set.
struct AgentStdio {
  common::Fd in;   // write end of the stdin pipe
  common::Fd out;  // read end of the stdout pipe
  common::Fd err;  // read end of the stderr pipe
  common::Fd pty_master;
};

struct StdioPlan {
  ChildStdio child;
  AgentStdio agent;
};

/// Which streams the host opened (0 = none) and the terminal settings of the process.
struct StdioRequest {
  bool terminal = false;
  uint32_t stdin_stream = 0, stdout_stream = 0, stderr_stream = 0;
  unsigned rows = 0, cols = 0;
};

/// Child side of a terminal: opens a pty from the current /dev/ptmx, makes its slave fds
/// 0-2 material (stdio.in/out/err) and returns the master for the agent.
common::Fd open_child_pty(ChildStdio& stdio, unsigned rows, unsigned cols);

/// Creates the pipes (a terminal's pty is opened by the child, see ChildStdio). Agent ends are
/// O_NONBLOCK (they go to the event loop); child ends stay blocking. Throws std::system_error.
StdioPlan make_stdio(const StdioRequest& request);

}  // namespace frakti::agent::process
