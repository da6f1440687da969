#include "agent/process/stdio.hpp"

#include <fcntl.h>

#include "agent/sys/process.hpp"
#include "common/error.hpp"

namespace frakti::agent::process {

namespace {
common::Fd open_null() {
  common::Fd fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!fd) common::throw_errno("open /dev/null for a process's unused stdio");
  return fd;
}

common::Fd dup_fd(const common::Fd& fd) {
  return common::Fd(common::check(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3), "dup the pty slave"));
}
}  // namespace

common::Fd open_child_pty(ChildStdio& stdio, unsigned rows, unsigned cols) {
  auto pty = sys::open_pty(rows, cols);
  stdio.in = dup_fd(pty.slave);
  stdio.out = dup_fd(pty.slave);
  stdio.err = std::move(pty.slave);
  return std::move(pty.master);
}

StdioPlan make_stdio(const StdioRequest& r) {
  StdioPlan plan;
  if (r.terminal) {
    plan.child.terminal = true;
    return plan;
  }
  if (r.stdin_stream) {
    auto p = common::make_pipe();
    common::check(::fcntl(p.write.get(), F_SETFL, O_NONBLOCK), "set the stdin pipe non-blocking");
    plan.child.in = std::move(p.read);
    plan.agent.in = std::move(p.write);
  } else {
    plan.child.in = open_null();
  }
  if (r.stdout_stream) {
    auto p = common::make_pipe();
    common::check(::fcntl(p.read.get(), F_SETFL, O_NONBLOCK), "set the stdout pipe non-blocking");
    plan.child.out = std::move(p.write);
    plan.agent.out = std::move(p.read);
  } else {
    plan.child.out = open_null();
  }
  if (r.stderr_stream) {
    auto p = common::make_pipe();
    common::check(::fcntl(p.read.get(), F_SETFL, O_NONBLOCK), "set the stderr pipe non-blocking");
    plan.child.err = std::move(p.write);
    plan.agent.err = std::move(p.read);
  } else {
    plan.child.err = open_null();
  }
  return plan;
}

}  // namespace frakti::agent::process
