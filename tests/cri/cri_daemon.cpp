#include "tests/cri/cri_daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "image/image_service.hpp"

namespace frakti::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

fs::path build_dir() {
  const char* b = std::getenv("FRAKTI_BUILD_DIR");
  if (!b) throw std::runtime_error("FRAKTI_BUILD_DIR is not set (run the test through ctest)");
  return b;
}

// The bundled busybox layout tools/setup makes; built here when it is missing.
fs::path busybox_layout(const fs::path& scratch) {
  fs::path bundled = "/var/lib/frakti/bundled/busybox";
  if (fs::exists(bundled / "index.json")) return bundled;
  const char* src = std::getenv("FRAKTI_SOURCE_DIR");
  if (!src) throw std::runtime_error("FRAKTI_SOURCE_DIR is not set (run the test through ctest)");
  fs::path out = scratch / "busybox-layout";
  std::string cmd = fmt::format("{}/tools/make-busybox-image {} >/dev/null", src, out.string());
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("tools/make-busybox-image failed");
  return out;
}

fs::path make_temp(const char* pattern) {
  std::string t = pattern;
  if (!::mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
  return t;
}

}  // namespace

std::unique_ptr<grpc::ClientContext> deadline(std::chrono::seconds s) {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + s);
  return c;
}

CriDaemon::CriDaemon() {
  dir_ = make_temp("/tmp/frakti-cri-XXXXXX");
  state_ = make_temp("/tmp/fs-XXXXXX");  // short: VM socket paths live under it
  fs::create_directories(log_dir());
  image::ServiceOptions o;
  o.root = root();
  image::ImageService images(o);
  image::ImportOptions io;
  io.name = kImage;
  images.load(busybox_layout(dir_), io);
  images.fs_image(kImage);
}

CriDaemon::~CriDaemon() {
  if (pid_ > 0) {
    try {
      rt::ListPodSandboxResponse pods;
      if (runtime_->ListPodSandbox(deadline(10s).get(), {}, &pods).ok()) {
        for (auto& p : pods.items()) {
          rt::RemovePodSandboxRequest r;
          r.set_pod_sandbox_id(p.id());
          rt::RemovePodSandboxResponse out;
          runtime_->RemovePodSandbox(deadline(60s).get(), r, &out);
        }
      }
    } catch (...) {
    }
    stop();
  }
  for (pid_t p : processes_matching("frakti-shim " + state_.string())) ::kill(p, SIGKILL);
  std::error_code ec;
  fs::remove_all(dir_, ec);
  fs::remove_all(state_, ec);
}

void CriDaemon::start(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {(build_dir() / "bin" / "frakti").string(),
                                   "--listen", socket().string(),
                                   "--root-directory", root().string(),
                                   "--state-directory", state_.string(),
                                   "--memory", "192",
                                   "--boot-timeout", "240"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int log = ::open((dir_ / "frakti.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(log, 1);
    ::dup2(log, 2);
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::syscall(SYS_close_range, 3u, ~0u, 0u);  // never hold the test runner's pipes
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log);
  auto channel = grpc::CreateChannel("unix:" + socket().string(), grpc::InsecureChannelCredentials());
  runtime_ = rt::RuntimeService::NewStub(channel);
  images_ = rt::ImageService::NewStub(channel);
  for (int i = 0; i < 300; ++i) {
    rt::VersionResponse v;
    if (fs::exists(socket()) && runtime_->Version(deadline(2s).get(), {}, &v).ok()) return;
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("frakti exited at start:\n" + daemon_log());
    }
    std::this_thread::sleep_for(100ms);
  }
  throw std::runtime_error("frakti did not serve its socket within 30 s:\n" + daemon_log());
}

void CriDaemon::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void CriDaemon::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(100ms);
  }
  kill9();
}

std::string CriDaemon::leftovers() const {
  std::string left;
  for (auto& e : fs::recursive_directory_iterator(state_)) {
    auto rel = fs::relative(e.path(), state_);
    bool skeleton = e.is_directory() && *rel.begin() == "runc" && std::distance(rel.begin(), rel.end()) <= 2;
    if (!skeleton) left += e.path().string() + "\n";
  }
  return left;
}

std::string CriDaemon::daemon_log() const {
  std::ifstream in(dir_ / "frakti.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

rt::PodSandboxConfig pod_config(const std::string& name, const fs::path& log_dir) {
  static std::atomic<int> counter{0};
  rt::PodSandboxConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_metadata()->set_namespace_("test");
  c.mutable_metadata()->set_uid(fmt::format("uid-{}-{}-{}", name, ::getpid(), counter++));
  c.set_hostname(name);
  fs::path dir = log_dir / c.metadata().uid();
  fs::create_directories(dir);
  c.set_log_directory(dir.string());
  (*c.mutable_labels())["test"] = "frakti";
  return c;
}

rt::ContainerConfig container_config(const std::string& name, const std::vector<std::string>& cmd) {
  rt::ContainerConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_image()->set_image(CriDaemon::kImage);
  for (auto& a : cmd) c.add_command(a);
  c.set_log_path(name + ".log");
  (*c.mutable_labels())["container"] = name;
  return c;
}

std::vector<pid_t> processes_matching(const std::string& needle) {
  std::vector<pid_t> out;
  for (auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "cmdline");
    std::string cmd;
    std::getline(in, cmd, '\0');
    std::string all = cmd, arg;
    while (std::getline(in, arg, '\0')) all += " " + arg;
    if (all.find(needle) != std::string::npos) out.push_back(std::stoi(name));
  }
  return out;
}

}  // namespace frakti::test
