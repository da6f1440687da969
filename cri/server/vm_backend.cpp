#include "cri/server/vm_backend.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <thread>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/log.hpp"
#include "cri/server/container_options.hpp"
#include "cri/server/errors.hpp"
#include "cri/server/oci_spec.hpp"
#include "cri/server/resources.hpp"
#include "sandbox/proc_ref.hpp"

namespace frakti::cri {

namespace fs = std::filesystem;
namespace sv1 = frakti::shim::v1;
using namespace std::chrono_literals;
using grpc::StatusCode;

namespace {

std::unique_ptr<grpc::ClientContext> ctx(std::chrono::milliseconds limit) {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + limit);
  return c;
}

// A failed shim call as a CriError: the shim's code, the pod named.
[[noreturn]] void shim_failed(const st::SandboxRecord& pod, const std::string& what, const grpc::Status& s) {
  auto code = s.error_code();
  if (code == StatusCode::UNAVAILABLE && s.error_message().find("connect") != std::string::npos)
    fail(StatusCode::UNAVAILABLE, "{}: the shim of pod {} is not reachable ({}); the pod VM has stopped", what,
         pod.id().substr(0, 12), s.error_message());
  throw CriError(code, fmt::format("{}: {}", what, s.error_message()));
}

void check(const st::SandboxRecord& pod, const std::string& what, const grpc::Status& s) {
  if (!s.ok()) shim_failed(pod, what, s);
}

// A CRI Device for a VM pod: only a host block device can cross into the VM (as a virtio-blk
// drive); character devices (GPUs, /dev/fuse...) stay on the host, where a runc pod can have them.
sv1::HostDevice vm_device(const std::string& container, const rt::Device& d) {
  const std::string& perms = d.permissions().empty() ? "rwm" : d.permissions();
  if (d.container_path().empty() || d.container_path()[0] != '/' || d.container_path().find("/../") != std::string::npos)
    fail(StatusCode::INVALID_ARGUMENT, "container {}: device container_path '{}' must be an absolute path", container,
         d.container_path().substr(0, 256));
  if (perms.find_first_not_of("rwm") != std::string::npos)
    fail(StatusCode::INVALID_ARGUMENT, "container {}: device {}: permissions '{}' may only hold r, w and m", container,
         d.host_path().substr(0, 256), perms.substr(0, 16));
  struct stat st {};
  if (d.host_path().empty() || d.host_path()[0] != '/' || ::stat(d.host_path().c_str(), &st) != 0)
    fail(StatusCode::INVALID_ARGUMENT, "container {}: device {}: no such host device", container,
         d.host_path().substr(0, 256));
  if (!S_ISBLK(st.st_mode))
    fail(StatusCode::INVALID_ARGUMENT, "container {}: device {} is not a block device: only block devices can be "
         "passed into a VM pod (run the pod privileged or with runtime handler runc to use character devices)",
         container, d.host_path());
  sv1::HostDevice out;
  out.set_host_path(d.host_path());
  out.set_container_path(d.container_path());
  out.set_writable(perms.find('w') != std::string::npos);
  return out;
}

sandbox::ProcRef proc_of(const st::ProcRef& p) { return {static_cast<pid_t>(p.pid()), p.start_time()}; }

// Memory and vCPUs for the pod's VM: the pod's declared resources (sum of container limits)
// plus overhead plus the guest's own needs, never below the flag defaults.
std::pair<unsigned, unsigned> vm_size(const rt::PodSandboxConfig& cfg, const Options& opts) {
  constexpr int64_t kMiB = 1 << 20;
  constexpr unsigned kGuestMiB = 128;  // kernel, agent, page cache for the image drives
  const auto& res = cfg.linux().resources();
  const auto& ovh = cfg.linux().overhead();
  int64_t mem = res.memory_limit_in_bytes() + ovh.memory_limit_in_bytes();
  unsigned memory = opts.memory_mib;
  if (mem > 0) memory = std::max<unsigned>(memory, static_cast<unsigned>((mem + kMiB - 1) / kMiB) + kGuestMiB);
  unsigned cpus = opts.cpu;
  int64_t quota = res.cpu_quota() + ovh.cpu_quota(), period = res.cpu_period() ? res.cpu_period() : 100000;
  if (quota > 0) cpus = std::max<unsigned>(cpus, static_cast<unsigned>((quota + period - 1) / period));
  return {cpus, memory};
}

std::string resolv_conf_of(const rt::DNSConfig& dns) {
  std::string out;
  if (dns.searches_size()) out += fmt::format("search {}\n", fmt::join(dns.searches(), " "));
  for (auto& s : dns.servers()) out += "nameserver " + s + "\n";
  if (dns.options_size()) out += fmt::format("options {}\n", fmt::join(dns.options(), " "));
  return out;
}

// Starts frakti-shim in its own session, detached from the daemon (double fork: init reaps
// it), and returns its pid once it said how the boot went.
pid_t spawn_shim(const fs::path& binary, const fs::path& dir, std::chrono::milliseconds limit) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) common::throw_errno("creating the shim's notify pipe");
  common::Fd rd(pipefd[0]), wr(pipefd[1]);
  common::Fd log(::open((dir / "shim.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log) common::throw_errno("creating " + (dir / "shim.log").string());
  int pidpipe[2];
  if (::pipe2(pidpipe, O_CLOEXEC) != 0) common::throw_errno("creating a pipe");
  common::Fd pid_rd(pidpipe[0]), pid_wr(pidpipe[1]);
  pid_t child = ::fork();
  if (child < 0) common::throw_errno("fork");
  if (child == 0) {
    ::setsid();
    pid_t grandchild = ::fork();
    if (grandchild != 0) {
      (void)!::write(pid_wr.get(), &grandchild, sizeof grandchild);
      ::_exit(grandchild < 0 ? 1 : 0);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(log.get(), 1);
    ::dup2(log.get(), 2);
    ::dup2(wr.get(), 3);
    ::syscall(SYS_close_range, 4u, ~0u, 0u);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execl(binary.c_str(), "frakti-shim", dir.c_str(), nullptr);
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  pid_t shim = -1;
  pid_wr.reset();
  if (::read(pid_rd.get(), &shim, sizeof shim) != sizeof shim || shim <= 0) fail(StatusCode::INTERNAL, "starting frakti-shim failed (fork)");
  wr.reset();

  std::string said;
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) {
      ::kill(shim, SIGKILL);
      fail(StatusCode::DEADLINE_EXCEEDED, "the pod VM did not boot within {} s (see {})", limit.count() / 1000,
           (dir / "shim.log").string());
    }
    pollfd p{rd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(rd.get(), buf, sizeof buf);
    if (n <= 0) break;
    said.append(buf, static_cast<size_t>(n));
  }
  if (said == "ok\n") return shim;
  ::kill(shim, SIGKILL);
  if (said.rfind("error: ", 0) == 0) said = said.substr(7);
  if (said.empty()) said = fmt::format("frakti-shim ended without a word; see {}", (dir / "shim.log").string());
  fail(StatusCode::UNAVAILABLE, "starting the pod VM: {}", said);
}

void wait_gone(const sandbox::ProcRef& p, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (p.alive() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
}

// A pod directory's name: the first 12 hex digits of a pod id (runtime_dir).
bool pod_dir_name(const std::string& name) {
  return name.size() == 12 && name.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The processes whose command line is exactly `frakti-shim <dir>` (how spawn_shim runs a
// shim): a name alone could be anybody's process.
std::vector<sandbox::ProcRef> shims_of(const fs::path& dir) {
  std::string want = std::string("frakti-shim") + '\0' + dir.string() + '\0';
  std::vector<sandbox::ProcRef> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline != want) continue;
    auto ref = sandbox::ProcRef::of(static_cast<pid_t>(std::stol(name)));
    if (ref.alive()) out.push_back(ref);
  }
  return out;
}

}  // namespace

VmBackend::VmBackend(const Options& opts) : opts_(opts) {
  fs::path self = fs::read_symlink("/proc/self/exe");
  shim_binary_ = self.parent_path() / "frakti-shim";
  fs::create_directories(opts_.state_directory);
  ::chmod(opts_.state_directory.c_str(), 0700);
}

fs::path VmBackend::runtime_dir(const std::string& pod_id) const { return opts_.state_directory / pod_id.substr(0, 12); }

std::shared_ptr<frakti::shim::v1::Shim::Stub> VmBackend::shim(const st::SandboxRecord& pod) {
  std::lock_guard lock(mu_);
  auto& stub = stubs_[pod.id()];
  if (!stub) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 64 << 20);
    auto channel = grpc::CreateCustomChannel("unix:" + (fs::path(pod.runtime_dir()) / "shim.sock").string(),
                                             grpc::InsecureChannelCredentials(), args);
    stub = sv1::Shim::NewStub(channel);
  }
  return stub;
}

void VmBackend::forget(const std::string& pod_id) {
  std::lock_guard lock(mu_);
  stubs_.erase(pod_id);
}

void VmBackend::run_pod(st::SandboxRecord& pod) {
  if (!fs::exists(shim_binary_))
    fail(StatusCode::FAILED_PRECONDITION, "{} is missing: build the project (tools/setup) and run frakti from build/bin",
         shim_binary_.string());
  fs::path dir = runtime_dir(pod.id());
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  ::chmod(dir.c_str(), 0700);
  auto [cpus, memory] = vm_size(pod.config(), opts_);
  pod.set_cpus(cpus);
  pod.set_memory_mib(memory);
  pod.set_runtime_dir(dir.string());
  nlohmann::json j = {{"pod_id", pod.id()},
                      {"cpus", cpus},
                      {"memory_mib", memory},
                      {"drive_slots", 8},
                      {"hostname", pod.config().hostname()},
                      {"resolv_conf", resolv_conf_of(pod.config().dns_config())},
                      {"boot_timeout_ms", std::chrono::milliseconds(opts_.boot_timeout).count()}};
  std::ofstream(dir / "shim.json") << j.dump(2) << "\n";
  try {
    pid_t pid = spawn_shim(shim_binary_, dir, opts_.boot_timeout + 15s);
    auto ref = sandbox::ProcRef::of(pid);
    pod.mutable_shim()->set_pid(static_cast<uint32_t>(pid));
    pod.mutable_shim()->set_start_time(ref.start);
  } catch (...) {
    fs::remove_all(dir, ec);
    throw;
  }
}

bool VmBackend::pod_alive(const st::SandboxRecord& pod) {
  if (!proc_of(pod.shim()).alive()) return false;
  sv1::StatusResponse r;
  auto c = ctx(5s);
  return shim(pod)->Status(c.get(), {}, &r).ok() && r.vm_running();
}

void VmBackend::stop_pod(st::SandboxRecord& pod) {
  auto proc = proc_of(pod.shim());
  if (proc.alive()) {
    sv1::ShutdownRequest req;
    req.set_grace_period_ms(2000);
    sv1::Empty out;
    auto c = ctx(30s);
    auto s = shim(pod)->Shutdown(c.get(), req, &out);
    if (!s.ok()) common::log::warn("cri", "pod {}: shutdown through the shim failed ({}); killing it", pod.id().substr(0, 12), s.error_message());
    wait_gone(proc, s.ok() ? 5s : 0s);
    if (proc.alive()) {
      ::kill(proc.pid, SIGKILL);  // the VMM dies with it (parent-death signal)
      wait_gone(proc, 5s);
    }
  }
  forget(pod.id());
}

void VmBackend::remove_pod(const st::SandboxRecord& pod) {
  std::error_code ec;
  if (!pod.runtime_dir().empty()) fs::remove_all(pod.runtime_dir(), ec);
  forget(pod.id());
}

void VmBackend::sweep(const std::set<std::string>& pod_ids, const std::set<std::string>&) {
  std::set<std::string> known;
  for (auto& id : pod_ids) known.insert(id.substr(0, 12));
  std::error_code ec;
  std::vector<fs::path> orphans;
  for (auto& e : fs::directory_iterator(opts_.state_directory, ec)) {
    std::string name = e.path().filename();
    if (pod_dir_name(name) && !known.count(name) && e.is_directory(ec)) orphans.push_back(e.path());
  }
  if (ec) common::log::warn("cri", "sweep: listing {}: {}", opts_.state_directory.string(), ec.message());
  for (auto& dir : orphans) {
    try {
      // SIGTERM lets the shim stop its VM; its VMM dies with it in any case (parent-death signal).
      auto shims = shims_of(dir);
      for (auto& p : shims) ::kill(p.pid, SIGTERM);
      for (auto& p : shims) wait_gone(p, 5s);
      for (auto& p : shims)
        if (p.alive()) {
          ::kill(p.pid, SIGKILL);
          wait_gone(p, 5s);
        }
      std::string still;
      for (auto& p : shims)
        if (p.alive()) still += fmt::format(" {}", p.pid);
      if (!still.empty()) {
        common::log::warn("cri", "sweep: pod directory {} has no record but its shim (pid{}) did not exit; left in place",
                          dir.string(), still);
        continue;
      }
      std::error_code rec;
      fs::remove_all(dir, rec);
      if (rec) {
        common::log::warn("cri", "sweep: removing {} (no pod record): {}", dir.string(), rec.message());
        continue;
      }
      common::log::warn("cri", "sweep: pod directory {} had no record; stopped {} shim process(es) and removed it",
                        dir.string(), shims.size());
    } catch (const std::exception& e) {
      common::log::warn("cri", "sweep: pod directory {}: {}", dir.string(), e.what());
    }
  }
}

void VmBackend::create_container(const st::SandboxRecord& pod, st::ContainerRecord& c, const ImageUse& image) {
  auto opts = container_options(pod, c);
  sv1::CreateContainerRequest req;
  try {
    *req.mutable_container() = sandbox::make_create_request(image.image.config, opts);
  } catch (const std::invalid_argument& e) {
    fail(StatusCode::INVALID_ARGUMENT, "container {}: {}", c.config().metadata().name(), e.what());
  }
  for (auto& [k, v] : c.config().annotations()) (*req.mutable_container()->mutable_annotations())[k] = v;
  auto* res = req.mutable_container()->mutable_resources();
  int64_t pids = res->pids_limit();
  *res = agent_resources(c.config().linux().resources());
  res->set_pids_limit(pids);
  // The pod's sysctls (net.*, IPC): each container applies them in the VM's namespaces.
  for (auto& [k, v] : pod_sysctls(pod.config())) (*req.mutable_container()->mutable_sysctls())[k] = v;
  req.set_image_fs_path(image.fs_image.string());
  req.set_image_fs_type("erofs");
  req.set_image_id(image.image.id.str());
  req.set_log_path(c.log_path());
  req.set_stdin(c.config().stdin());
  for (const auto& m : c.config().mounts()) {
    if (m.host_path().empty() || m.container_path().empty() || m.container_path()[0] != '/')
      fail(StatusCode::INVALID_ARGUMENT, "container {}: a mount needs a host_path and an absolute container_path "
           "(got '{}' -> '{}')", c.config().metadata().name(), m.host_path().substr(0, 256), m.container_path().substr(0, 256));
    auto* hm = req.add_host_mounts();
    hm->set_host_path(m.host_path());
    hm->set_container_path(m.container_path());
    hm->set_readonly(m.readonly());
  }
  for (const auto& d : c.config().devices()) *req.add_devices() = vm_device(c.config().metadata().name(), d);
  sv1::Empty out;
  auto cx = ctx(90s);
  check(pod, "creating container " + c.config().metadata().name(), shim(pod)->CreateContainer(cx.get(), req, &out));
}

void VmBackend::start_container(const st::SandboxRecord& pod, st::ContainerRecord& c) {
  sv1::ContainerRef ref;
  ref.set_container_id(c.id());
  sv1::ContainerStatus out;
  auto cx = ctx(90s);
  check(pod, "starting container " + c.config().metadata().name(), shim(pod)->StartContainer(cx.get(), ref, &out));
  c.set_pid(out.pid());
}

void VmBackend::stop_container(const st::SandboxRecord& pod, st::ContainerRecord& c, std::chrono::seconds timeout,
                               int stop_signal) {
  auto send = [&](int sig, bool all) {
    sv1::SignalRequest req;
    req.set_container_id(c.id());
    req.set_signal(sig);
    req.set_all(all);
    sv1::Empty out;
    auto cx = ctx(15s);
    check(pod, fmt::format("signalling container {}", c.config().metadata().name()), shim(pod)->SignalContainer(cx.get(), req, &out));
  };
  auto wait = [&](std::chrono::seconds limit) {
    sv1::ContainerRef ref;
    ref.set_container_id(c.id());
    sv1::ContainerStatus out;
    auto cx = ctx(limit + 1s);
    check(pod, "waiting for container " + c.config().metadata().name(), shim(pod)->WaitContainer(cx.get(), ref, &out));
    return out.state() == sv1::ContainerStatus::EXITED;
  };
  if (timeout > 0s) {
    send(stop_signal, false);
    if (wait(timeout)) return;
  }
  send(SIGKILL, true);
  if (!wait(10s)) fail(StatusCode::DEADLINE_EXCEEDED, "container {} did not exit within 10 s of SIGKILL", c.id());
}

void VmBackend::remove_container(const st::SandboxRecord& pod, const st::ContainerRecord& c) {
  if (!proc_of(pod.shim()).alive()) return;  // the VM and everything in it is gone
  sv1::ContainerRef ref;
  ref.set_container_id(c.id());
  sv1::Empty out;
  auto cx = ctx(60s);
  auto s = shim(pod)->RemoveContainer(cx.get(), ref, &out);
  if (!s.ok() && s.error_code() != StatusCode::NOT_FOUND) shim_failed(pod, "removing container " + c.config().metadata().name(), s);
}

bool VmBackend::refresh(const st::SandboxRecord& pod, st::ContainerRecord& c) {
  if (c.state() == rt::CONTAINER_EXITED) return false;
  sv1::StatusResponse r;
  bool reachable = false;
  if (proc_of(pod.shim()).alive()) {
    auto cx = ctx(5s);
    reachable = shim(pod)->Status(cx.get(), {}, &r).ok();
    if (!reachable) return false;  // busy or starting: keep what we know
  }
  const sv1::ContainerStatus* s = nullptr;
  for (auto& x : r.containers())
    if (x.container_id() == c.id()) s = &x;
  auto old = c.SerializeAsString();
  if (!s) {
    if (c.state() == rt::CONTAINER_CREATED && reachable) return false;
    c.set_state(rt::CONTAINER_EXITED);
    c.set_exit_code(255);
    c.set_finished_at(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    c.set_reason("Error");
    c.set_message(reachable ? "the container is no longer in its pod VM" : "the pod VM is gone");
    return true;
  }
  // The guest's clock was set from the host's at boot and drifts from it (by milliseconds
  // under emulation), so its times are kept in the host's order: created <= started <= finished.
  if (s->started_at_unix_ns())
    c.set_started_at(std::max<int64_t>(s->started_at_unix_ns(), c.created_at()));
  if (s->state() == sv1::ContainerStatus::RUNNING) c.set_state(rt::CONTAINER_RUNNING);
  if (s->state() == sv1::ContainerStatus::EXITED) {
    c.set_state(rt::CONTAINER_EXITED);
    c.set_exit_code(s->exit_code());
    c.set_finished_at(std::max<int64_t>(s->finished_at_unix_ns(), c.started_at()));
    c.set_reason(s->oom_killed() ? "OOMKilled" : s->exit_code() == 0 ? "Completed" : "Error");
    c.set_message(s->message());
  }
  if (s->pid()) c.set_pid(s->pid());
  return c.SerializeAsString() != old;
}

ExecResult VmBackend::exec_sync(const st::SandboxRecord& pod, const st::ContainerRecord& c,
                                const std::vector<std::string>& cmd, std::chrono::seconds timeout) {
  sv1::ExecSyncRequest req;
  req.set_container_id(c.id());
  for (auto& a : cmd) req.add_cmd(a);
  req.set_timeout_ms(std::chrono::milliseconds(timeout).count());
  sv1::ExecSyncResponse out;
  auto cx = ctx(timeout > 0s ? timeout + 15s : std::chrono::hours(24));
  check(pod, fmt::format("exec in container {}", c.config().metadata().name()), shim(pod)->ExecSync(cx.get(), req, &out));
  if (out.timed_out())
    fail(StatusCode::DEADLINE_EXCEEDED, "command '{}' timed out after {} s and was killed", fmt::join(cmd, " "), timeout.count());
  return {out.stdout(), out.stderr(), out.exit_code()};
}

rt::ContainerStats VmBackend::stats(const st::SandboxRecord& pod, const st::ContainerRecord& c) {
  agent::v1::ContainerStatsRequest req;
  req.add_container_ids(c.id());
  agent::v1::ContainerStatsResponse out;
  auto cx = ctx(10s);
  check(pod, "reading stats of container " + c.config().metadata().name(), shim(pod)->Stats(cx.get(), req, &out));
  rt::ContainerStats s;
  auto* attr = s.mutable_attributes();
  attr->set_id(c.id());
  *attr->mutable_metadata() = c.config().metadata();
  *attr->mutable_labels() = c.config().labels();
  *attr->mutable_annotations() = c.config().annotations();
  for (auto& x : out.stats()) {
    if (x.container_id() != c.id()) continue;
    s.mutable_cpu()->set_timestamp(x.timestamp_unix_ns());
    s.mutable_cpu()->mutable_usage_core_nano_seconds()->set_value(x.cpu().usage_ns());
    s.mutable_memory()->set_timestamp(x.timestamp_unix_ns());
    s.mutable_memory()->mutable_working_set_bytes()->set_value(x.memory().working_set_bytes());
    s.mutable_memory()->mutable_usage_bytes()->set_value(x.memory().usage_bytes());
    // As cadvisor reports it: what the limit leaves over the working set (none without a limit).
    uint64_t limit = x.memory().limit_bytes(), ws = x.memory().working_set_bytes();
    if (limit > 0 && limit < (uint64_t{1} << 62))
      s.mutable_memory()->mutable_available_bytes()->set_value(limit > ws ? limit - ws : 0);
    s.mutable_memory()->mutable_rss_bytes()->set_value(x.memory().rss_bytes());
    s.mutable_memory()->mutable_page_faults()->set_value(x.memory().page_faults());
    s.mutable_memory()->mutable_major_page_faults()->set_value(x.memory().major_page_faults());
    // The writable layer lives in guest memory (tmpfs upper): counted in memory above.
    s.mutable_writable_layer()->set_timestamp(x.timestamp_unix_ns());
    s.mutable_writable_layer()->mutable_fs_id()->set_mountpoint("/");
  }
  return s;
}

void VmBackend::update_resources(const st::SandboxRecord& pod, const st::ContainerRecord& c,
                                 const rt::LinuxContainerResources& resources) {
  agent::v1::UpdateContainerRequest req;
  req.set_container_id(c.id());
  *req.mutable_resources() = agent_resources(resources);
  sv1::Empty out;
  auto cx = ctx(15s);
  check(pod, "updating the limits of container " + c.config().metadata().name(),
        shim(pod)->UpdateContainer(cx.get(), req, &out));
}

void VmBackend::reopen_log(const st::SandboxRecord& pod, const st::ContainerRecord& c) {
  sv1::ContainerRef ref;
  ref.set_container_id(c.id());
  sv1::Empty out;
  auto cx = ctx(10s);
  check(pod, "reopening the log of container " + c.config().metadata().name(), shim(pod)->ReopenLog(cx.get(), ref, &out));
}

}  // namespace frakti::cri
