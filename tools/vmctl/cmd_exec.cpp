// vmctl exec: another process in a running container, over a new agent connection.

#include <signal.h>
#include <unistd.h>

#include <random>

#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>

#include "sandbox/container_spec.hpp"
#include "tools/vmctl/context.hpp"
#include "tools/vmctl/lifecycle.hpp"
#include "tools/vmctl/stdio.hpp"

namespace frakti::vmctl {

namespace v1 = agent::v1;
using namespace std::chrono_literals;

int cmd_exec(Context& ctx) {
  Args args(ctx.args, {"-e", "--env", "-w", "--workdir", "-u", "--user"},
            {"-i", "--interactive", "-t", "--tty", "-d", "--detach"}, 1);
  if (args.positional().size() < 2) throw UsageError("expected a container and a command");
  bool interactive = args.flag("-i") || args.flag("--interactive");
  bool tty = args.flag("-t") || args.flag("--tty");
  bool detach = args.flag("-d") || args.flag("--detach");
  if (tty && interactive && !::isatty(STDIN_FILENO)) throw UsageError("the input is not a terminal: drop -t");
  StateDir state(ctx.state);
  state.collect_leftovers();
  auto rec = state.find(args.positional()[0]);
  ctx.action = "exec " + rec.name;

  v1::Request req;
  auto& e = *req.mutable_exec_process();
  e.set_container_id(rec.id);
  std::random_device rd;
  e.set_exec_id(fmt::format("exec-{:08x}{:08x}", rd(), rd()));
  auto& p = *e.mutable_process();
  for (size_t i = 1; i < args.positional().size(); ++i) p.add_args(args.positional()[i]);
  // The container's environment with -e on top.
  image::ImageConfig base;
  base.env = rec.env;
  sandbox::ContainerOptions o;
  o.terminal = tty;
  for (auto* k : {"-e", "--env"}) {
    for (auto& v : args.values(k)) o.env.push_back(v);
  }
  try {
    for (auto& kv : sandbox::resolve_env(base, o)) p.add_env(kv);
    sandbox::set_user(p, args.value("-u").value_or(args.value("--user").value_or(rec.user)));
  } catch (const std::invalid_argument& err) {
    throw UsageError(err.what());
  }
  p.set_cwd(args.value("-w").value_or(args.value("--workdir").value_or(rec.cwd.empty() ? "/" : rec.cwd)));
  p.set_terminal(tty);
  if (tty) {
    auto [rows, cols] = terminal_size(STDIN_FILENO);
    p.set_terminal_rows(rows);
    p.set_terminal_cols(cols);
  }
  for (auto& c : rec.caps) {
    p.mutable_capabilities()->add_bounding(c);
    p.mutable_capabilities()->add_effective(c);
    p.mutable_capabilities()->add_permitted(c);
  }

  boost::asio::io_context io;
  std::optional<sandbox::AgentClient> slot;
  auto& client = connect_agent(state, rec, io, slot);
  std::optional<StdioBridge> stdio;
  if (!detach) {
    StdioBridge::Options so;
    so.input = interactive;
    so.terminal = tty;
    stdio.emplace(client, so);
    stdio->attach(p);
  }
  try {
    client.call(req, 60s, "starting " + fmt::format("{}", fmt::join(p.args(), " ")));
  } catch (const sandbox::AgentError& err) {
    std::string m = err.what();
    fmt::print(stderr, "vmctl: exec: {}\n", m);
    return m.find("No such file") != std::string::npos ? 127 : (m.find("ermission denied") != std::string::npos ? 126 : 125);
  }
  if (detach) return 0;
  stdio->start();

  std::optional<RawTerminal> raw;
  boost::asio::signal_set sigs(io, SIGINT, SIGTERM, SIGHUP);
  sigs.add(SIGQUIT);
  auto forward = [&](int sig) {
    v1::Request s;
    s.mutable_signal_process()->set_container_id(rec.id);
    s.mutable_signal_process()->set_exec_id(e.exec_id());
    s.mutable_signal_process()->set_signal(sig);
    client.call_async(s, 10s, "forwarding a signal", [](std::exception_ptr, v1::Response) {});
  };
  auto resize = [&] {
    auto [rows, cols] = terminal_size(STDIN_FILENO);
    if (!rows) return;
    v1::Request s;
    s.mutable_resize_terminal()->set_container_id(rec.id);
    s.mutable_resize_terminal()->set_exec_id(e.exec_id());
    s.mutable_resize_terminal()->set_rows(rows);
    s.mutable_resize_terminal()->set_cols(cols);
    client.call_async(s, 10s, "resizing the terminal", [](std::exception_ptr, v1::Response) {});
  };
  if (tty && ::isatty(STDIN_FILENO)) {
    raw.emplace(STDIN_FILENO);
    sigs.add(SIGWINCH);
  }
  std::function<void()> watch = [&] {
    sigs.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGWINCH) {
        resize();
      } else {
        forward(sig);
      }
      watch();
    });
  };
  watch();

  v1::Request w;
  w.mutable_wait_process()->set_container_id(rec.id);
  w.mutable_wait_process()->set_exec_id(e.exec_id());
  std::optional<v1::ProcessExited> exited;
  std::exception_ptr failure;
  client.call_async(w, std::chrono::hours(24 * 40), "waiting for the process", [&](std::exception_ptr err, v1::Response r) {
    failure = err;
    if (!err) exited = r.wait_process().status();
  });
  client.run_until([&] { return exited || failure; }, std::chrono::hours(24 * 40));
  sigs.cancel();
  client.run_until([&] { return stdio->output_done(); }, 3s);
  raw.reset();
  if (failure) std::rethrow_exception(failure);
  return exited->signal() ? 128 + exited->signal() : exited->exit_code();
}

}  // namespace frakti::vmctl
