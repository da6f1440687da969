// frakti-shim: the host process that owns one VM pod (see proto/shim/shim.proto).
//
//   frakti-shim <pod runtime dir>
//
// Reads <dir>/shim.json (written by frakti), boots the VM, then serves <dir>/shim.sock. It
// tells its starter how the boot went on fd 3 when that is open ("ok\n" or "error: ...\n"),
// and runs until Shutdown or SIGTERM, in its own session so it outlives the daemon.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "common/log.hpp"
#include "cri/shim/shim_service.hpp"

namespace shim = frakti::cri::shim;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

shim::PodVmOptions read_config(const fs::path& dir) {
  std::ifstream in(dir / "shim.json");
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", (dir / "shim.json").string()));
  auto j = nlohmann::json::parse(in);
  shim::PodVmOptions o;
  o.pod_id = j.at("pod_id").get<std::string>();
  o.dir = dir;
  o.cpus = j.value("cpus", 1u);
  o.memory_mib = j.value("memory_mib", 256u);
  o.drive_slots = j.value("drive_slots", 8u);
  o.device_slots = j.value("device_slots", 4u);
  o.hostname = j.value("hostname", "");
  o.resolv_conf = j.value("resolv_conf", "");
  o.hosts = j.value("hosts", "");
  o.boot_timeout = std::chrono::milliseconds(j.value("boot_timeout_ms", 60000));
  o.vmm_log_level = j.value("vmm_log_level", "");
  return o;
}

void notify(const std::string& text) {
  if (::fcntl(3, F_GETFD) < 0) return;
  (void)!::write(3, text.data(), text.size());
  ::close(3);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fmt::print(stderr, "usage: frakti-shim POD-RUNTIME-DIR (started by frakti, not by hand)\n");
    return 2;
  }
  fs::path dir = argv[1];
  // Signals are taken by sigwait below; every thread inherits this mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<shim::PodVm> vm;
  try {
    auto opts = read_config(dir);
    vm = std::make_unique<shim::PodVm>(opts);
    vm->boot();
  } catch (const std::exception& e) {
    frakti::common::log::error("shim", "{}", e.what());
    notify(fmt::format("error: {}\n", e.what()));
    return 1;
  }

  std::atomic<bool> stop{false};
  shim::ShimService service(*vm, [&] {
    stop = true;
    ::kill(::getpid(), SIGTERM);
  });
  grpc::ServerBuilder builder;
  std::string sock = (dir / "shim.sock").string();
  std::error_code ec;
  fs::remove(sock, ec);
  builder.AddListeningPort("unix:" + sock, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  mode_t old = ::umask(077);  // the socket is owner-only from its creation
  auto server = builder.BuildAndStart();
  ::umask(old);
  if (!server) {
    notify(fmt::format("error: cannot serve {}\n", sock));
    vm->shutdown(0ms);
    return 1;
  }
  ::chmod(sock.c_str(), 0600);
  notify("ok\n");

  int sig = 0;
  sigwait(&sigs, &sig);
  if (!stop) {
    frakti::common::log::info("shim", "signal {}: powering the pod VM off", sig);
    vm->shutdown(2s);
  }
  server->Shutdown(std::chrono::system_clock::now() + 2s);
  fs::remove(sock, ec);
  vm.reset();
  return 0;
}
