// vmctl stop: the container's stop signal, a grace period, then SIGKILL; the VM goes with it.

#include <signal.h>
#include <string.h>

#include <thread>

#include <fmt/format.h>

#include "common/guest_abi.hpp"
#include "tools/vmctl/context.hpp"
#include "tools/vmctl/lifecycle.hpp"

namespace frakti::vmctl {

namespace v1 = agent::v1;
using namespace std::chrono_literals;

int signal_number(const std::string& name) {
  if (name.empty()) return 0;
  if (std::all_of(name.begin(), name.end(), ::isdigit)) return std::stoi(name) < 65 ? std::stoi(name) : 0;
  std::string n = name.rfind("SIG", 0) == 0 ? name.substr(3) : name;
  for (int s = 1; s < 32; ++s) {
    const char* abbrev = ::sigabbrev_np(s);
    if (abbrev && n == abbrev) return s;
  }
  return 0;
}

sandbox::AgentClient& connect_agent(const StateDir& state, const ContainerRecord& rec, boost::asio::io_context& io,
                                    std::optional<sandbox::AgentClient>& slot) {
  if (rec.status != "running") {
    throw CommandError("container " + rec.name, fmt::format("is not running ({})", rec.status), "start a new one with 'vmctl run'");
  }
  try {
    auto fd = sandbox::connect_hybrid_vsock(state.vsock(rec.id), guest_abi::kAgentVsockPort,
                                            std::chrono::steady_clock::now() + 10s, [&] { return rec.vmm.alive(); });
    slot.emplace(io, std::move(fd), "vmctl " + rec.short_id());
  } catch (const sandbox::AgentError& e) {
    throw CommandError("container " + rec.name, e.what(), "its VM may have died: see 'vmctl ps -a'");
  }
  return *slot;
}

namespace {

bool wait_exited(const StateDir& state, const ContainerRecord& rec, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto now = state.load(rec.id);
    if (!now || now->status == "exited") return true;  // gone (--rm) or finished
    if (!now->supervisor.alive()) return false;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(20ms);
  }
}

void signal(sandbox::AgentClient& c, const ContainerRecord& rec, int sig, bool all) {
  c.call(sandbox::make_request([&](v1::Request& r) {
           r.mutable_signal_process()->set_container_id(rec.id);
           r.mutable_signal_process()->set_signal(sig);
           r.mutable_signal_process()->set_all(all);
         }),
         10s, fmt::format("sending signal {} to {}", sig, rec.name));
}

}  // namespace

void stop_container(const StateDir& state, const ContainerRecord& rec, std::chrono::seconds grace) {
  if (rec.status != "running") return;
  {
    boost::asio::io_context io;
    std::optional<sandbox::AgentClient> slot;
    try {
      auto& c = connect_agent(state, rec, io, slot);
      int sig = signal_number(rec.stop_signal);
      signal(c, rec, sig ? sig : SIGTERM, false);
      if (!wait_exited(state, rec, grace)) signal(c, rec, SIGKILL, true);
    } catch (const std::exception& e) {
      fmt::print(stderr, "vmctl: stop {}: {}; stopping its VM\n", rec.name, e.what());
    }
  }
  if (wait_exited(state, rec, 30s)) return;
  // The supervisor is gone or stuck: finish its work.
  if (rec.supervisor.alive()) ::kill(rec.supervisor.pid, SIGKILL);
  if (rec.vmm.alive()) ::kill(rec.vmm.pid, SIGKILL);
  state.collect_leftovers();
}

int cmd_stop(Context& ctx) {
  Args args(ctx.args, {"-t", "--time"}, {});
  if (args.positional().empty()) throw UsageError("expected at least one container");
  int secs = 10;
  if (auto t = args.value("-t") ? args.value("-t") : args.value("--time")) secs = std::stoi(*t);
  StateDir state(ctx.state);
  state.collect_leftovers();
  int rc = 0;
  for (auto& name : args.positional()) {
    try {
      auto rec = state.find(name);
      stop_container(state, rec, std::chrono::seconds(secs));
      fmt::print(ctx.out, "{}\n", name);
    } catch (const CommandError& e) {
      fmt::print(stderr, "vmctl: stop: {}\n", e.what());
      rc = 1;
    }
  }
  return rc;
}

}  // namespace frakti::vmctl
