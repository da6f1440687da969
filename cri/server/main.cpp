// frakti: the CRI runtime daemon. Wiring only: options -> image service -> runtime (records
// recovered) -> gRPC services on the Unix socket, until SIGTERM/SIGINT. Stopping the daemon
// never stops a pod: VM pods live in their shims (docs/cri.md).

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include "common/log.hpp"
#include "cri/image/image_grpc_service.hpp"
#include "cri/server/options.hpp"
#include "cri/server/runtime.hpp"
#include "cri/server/runtime_service.hpp"

namespace fs = std::filesystem;
namespace flog = frakti::common::log;
using namespace frakti;

namespace {

// A socket file nobody listens on is left by a killed frakti: replace it. One that answers
// belongs to a running frakti: refuse.
void claim_socket(const std::string& path) {
  struct stat sb;
  if (::lstat(path.c_str(), &sb) != 0) return;
  if (!S_ISSOCK(sb.st_mode))
    throw std::runtime_error(fmt::format("{} exists and is not a socket; remove it or choose another --listen", path));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  if (live) throw std::runtime_error(fmt::format("another frakti is serving {}; stop it first", path));
  ::unlink(path.c_str());
}

void setup_logging(const cri::Options& o) {
  flog::set_level(o.verbosity >= 4 ? flog::Level::debug : flog::Level::info);
  if (o.log_to_stderr || o.log_dir.empty()) return;
  fs::create_directories(o.log_dir);
  int fd = ::open((o.log_dir / "frakti.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot open {}", (o.log_dir / "frakti.log").string()));
  flog::set_fd(fd);
}

}  // namespace

int main(int argc, char** argv) {
  cri::Options opts;
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
      fmt::print("{}", cri::usage());
      return 0;
    }
    if (!args.empty() && args[0] == "--version") {
      fmt::print("frakti 0.1.0 (CRI runtime.v1)\n");
      return 0;
    }
    opts = cri::parse_options(args);
    cri::validate_options(opts);
  } catch (const cri::UsageError& e) {
    fmt::print(stderr, "frakti: {}\n", e.what());
    return 2;
  }
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  try {
    setup_logging(opts);
    if (::geteuid() != 0) flog::warn("frakti", "not running as root: VM pods need /dev/kvm and root-owned state");
    image::ServiceOptions io;
    io.root = opts.root_directory;
    io.registries = image::RegistryConfig::load(opts.registry_config, !opts.registry_config_given);
    image::ImageService images(io);
    cri::Runtime runtime(opts, images);
    runtime.recover();

    cri::RuntimeGrpcService runtime_service(runtime, opts);
    cri::ImageGrpcService image_service(images);
    fs::create_directories(fs::path(opts.listen).parent_path());
    claim_socket(opts.listen);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + opts.listen, grpc::InsecureServerCredentials());
    builder.RegisterService(&runtime_service);
    builder.RegisterService(&image_service);
    builder.SetMaxReceiveMessageSize(16 << 20);
    mode_t old = ::umask(077);  // the socket is root-only from the moment it exists
    auto server = builder.BuildAndStart();
    ::umask(old);
    if (!server) throw std::runtime_error(fmt::format("cannot serve on {}", opts.listen));
    ::chmod(opts.listen.c_str(), 0600);
    flog::info("frakti", "serving CRI runtime.v1 on {} (root {}, state {})", opts.listen, opts.root_directory.string(),
              opts.state_directory.string());
    int sig = 0;
    sigwait(&sigs, &sig);
    flog::info("frakti", "signal {}: stopping (pods keep running)", sig);
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ::unlink(opts.listen.c_str());
  } catch (const std::exception& e) {
    fmt::print(stderr, "frakti: {}\n", e.what());
    return 1;
  }
  return 0;
}
