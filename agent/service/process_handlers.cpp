// Handlers: ExecProcess, SignalProcess, WaitProcess, ResizeTerminal, CloseStdin.

#include <signal.h>

#include "agent/agent_error.hpp"
#include "agent/container/spec.hpp"
#include "agent/service/agent_service.hpp"

namespace frakti::agent::service {

void AgentService::exec_process(Session& s, const Request& r, Responder resp) {
  guarded("ExecProcess", resp, [&] {
    const auto& req = r.exec_process();
    auto& c = find(req.container_id());
    if (!container::valid_id(req.exec_id())) {
      invalid_argument(
          "exec_id '{}' is not valid: use 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'",
          req.exec_id());
    }
    if (c.execs.count(req.exec_id())) {
      throw AgentError(
          v1::Error::CODE_ALREADY_EXISTS,
          fmt::format("container '{}' already has an exec '{}'", c.spec.id, req.exec_id()));
    }
    auto spec = container::parse_process_spec(req.process(), "exec_process.process");
    process::AgentStdio stdio;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline_of(r) - std::chrono::steady_clock::now());
    pid_t pid = container::exec_in_container(c, spec, environment(deadline_of(r)), &stdio, left);
    auto p = std::make_shared<process::Process>(c.spec.id, req.exec_id(), pid, spec.args);
    watch(c.spec.id, p);
    process::StdioRequest streams{spec.terminal,      spec.stdin_stream, spec.stdout_stream,
                                  spec.stderr_stream, spec.rows,         spec.cols};
    p->set_io(process::IoPump::start(io_, s.shared_from_this(), streams, std::move(stdio)));
    c.execs[req.exec_id()] = p;
    v1::Response response;
    response.mutable_exec_process()->set_pid(static_cast<uint32_t>(pid));
    resp(response);
  });
}

void AgentService::signal_process(Session&, const Request& r, Responder resp) {
  guarded("SignalProcess", resp, [&] {
    const auto& req = r.signal_process();
    if (req.signal() < 1 || req.signal() >= NSIG)
      invalid_argument("signal {} is not a signal number (1-{})", req.signal(), NSIG - 1);
    auto& c = find(req.container_id());
    auto p = find_process(c, req.exec_id());
    if (req.all() && c.cgroup.valid()) {
      c.cgroup.signal_all(req.signal());
    } else {
      p->signal(req.signal());
    }
    v1::Response response;
    response.mutable_signal_process();
    resp(response);
  });
}

void AgentService::wait_process(Session&, const Request& r, Responder resp) {
  guarded("WaitProcess", resp, [&] {
    auto& c = find(r.wait_process().container_id());
    find_process(c, r.wait_process().exec_id())->add_waiter(resp);
  });
}

void AgentService::resize_terminal(Session&, const Request& r, Responder resp) {
  guarded("ResizeTerminal", resp, [&] {
    const auto& req = r.resize_terminal();
    if (req.rows() == 0 || req.cols() == 0 || req.rows() > 0xffff || req.cols() > 0xffff) {
      invalid_argument("terminal size {}x{} is not valid", req.rows(), req.cols());
    }
    auto& c = find(req.container_id());
    auto p = find_process(c, req.exec_id());
    if (!p->io() || !p->io()->resize(req.rows(), req.cols())) {
      throw AgentError(v1::Error::CODE_FAILED_PRECONDITION, "the process has no terminal");
    }
    v1::Response response;
    response.mutable_resize_terminal();
    resp(response);
  });
}

void AgentService::close_stdin(Session&, const Request& r, Responder resp) {
  guarded("CloseStdin", resp, [&] {
    auto& c = find(r.close_stdin().container_id());
    auto p = find_process(c, r.close_stdin().exec_id());
    if (p->io()) p->io()->close_stdin();
    v1::Response response;
    response.mutable_close_stdin();
    resp(response);
  });
}

}  // namespace frakti::agent::service
