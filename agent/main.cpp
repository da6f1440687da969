// frakti-agent: PID 1 of the pod VM's initrd (or, run as any other PID, the same agent in
// host test mode). It sets up the guest, listens for the host on vsock and serves the agent
// protocol on one single-threaded event loop until Shutdown.

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <cstdio>
#include <exception>

#include "agent/container/drives.hpp"
#include "agent/init/pid1.hpp"
#include "agent/listener.hpp"
#include "agent/options.hpp"
#include "agent/protocol/server.hpp"
#include "agent/protocol/version.hpp"
#include "agent/service/agent_service.hpp"
#include "common/error.hpp"
#include "common/log.hpp"

namespace frakti::agent {
namespace {

constexpr const char* kLog = "agent";
/// How long containers get between SIGTERM and SIGKILL when the VMM asks for a shutdown. It
/// fits inside frakti-vmm's default graceful-stop timeout (5 s), leaving time to sync.
constexpr std::chrono::milliseconds kCtrlAltDelGrace{3000};

std::optional<container::CgroupRoot> open_cgroups(const AgentOptions& o) {
  if (o.cgroup_root == "none") return std::nullopt;
  try {
    return container::CgroupRoot::open(o.cgroup_root);
  } catch (const std::exception& e) {
    common::log::warn(kLog, "running containers without cgroups: {}", e.what());
    return std::nullopt;
  }
}

v1::HelloReply identity(bool has_cgroups) {
  v1::HelloReply id;
  id.set_protocol_version(protocol::kProtocolVersion);
  id.set_agent_version("frakti-agent 0.1.0");
  utsname u{};
  if (::uname(&u) == 0) {
    id.set_kernel_release(u.release);
    id.set_kernel_version(u.version);
  }
  for (const auto& c : service::AgentService::capabilities(has_cgroups)) id.add_capabilities(c);
  return id;
}

int run(const AgentOptions& o, bool pid1) {
  common::log::set_level(common::log::parse_level(o.log_level));
  // Writes to a pipe whose reader is gone must fail with EPIPE, not kill the agent.
  ::signal(SIGPIPE, SIG_IGN);
  if (pid1) {
    init::bring_up_loopback();
  } else {
    // Host test mode: orphans of containers come back to us, and SetHostname and pod-wide
    // UTS/IPC namespaces stay away from the host's.
    common::check(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl PR_SET_CHILD_SUBREAPER");
    common::check(::unshare(CLONE_NEWUTS | CLONE_NEWIPC),
                  "unshare UTS and IPC namespaces for host test mode");
  }
  boost::asio::io_context io;
  auto cgroups = open_cgroups(o);
  protocol::Server server(io, identity(cgroups.has_value()));
  service::ServiceOptions so;
  so.pid1 = pid1;
  so.state_dir = o.state_dir;
  so.on_shutdown = [&io, pid1](bool reboot) {
    if (pid1) init::end_vm(reboot);
    io.stop();
  };
  service::AgentService service(io, server,
                                container::make_drives(o.drives, o.state_dir + "/drives"),
                                std::move(cgroups), so);
  service.install();
  server.listen(protocol::adopt_acceptor(io, listen_on(o.listen)));
  std::string where = o.listen.kind == ListenAddress::Kind::vsock
                          ? fmt::format("vsock:{}", o.listen.port)
                          : "unix:" + o.listen.path;
  // The VMM asks for a shutdown by typing Ctrl-Alt-Del (frakti-vmm's graceful stop), which
  // reaches PID 1 as SIGINT once init::route_ctrl_alt_del_to_init() ran.
  boost::asio::signal_set cad(io);
  if (pid1) {
    cad.add(SIGINT);
    cad.async_wait([&service](const boost::system::error_code& ec, int) {
      if (!ec) service.shutdown_on_request_from_vmm(kCtrlAltDelGrace);
    });
    init::route_ctrl_alt_del_to_init();
    init::announce_ready("agent=" + where);
  } else {
    common::log::info(kLog, "listening on {} (host test mode)", where);
  }
  io.run();
  return 0;
}

}  // namespace
}  // namespace frakti::agent

int main(int argc, char** argv) {
  using namespace frakti::agent;
  bool pid1 = ::getpid() == 1;
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    bool rerooted = std::find(args.begin(), args.end(), "--rerooted=1") != args.end();
    if (pid1 && !rerooted) init::move_off_initramfs("--rerooted=1");
    if (pid1) init::mount_base_filesystems();
    AgentOptions options;
    try {
      options = parse_options(args);
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "frakti-agent: %s\n%s", e.what(), usage());
      if (!pid1) return 2;
      options = parse_options({});
    }
    return run(options, pid1);
  } catch (const std::exception& e) {
    frakti::common::log::error("agent", "fatal: {}", e.what());
    if (pid1) init::end_vm(false);
    return 1;
  }
}
