#include "agent/service/agent_service.hpp"

#include <filesystem>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent_error.hpp"
#include "agent/sys/process.hpp"
#include "common/error.hpp"

namespace frakti::agent::service {

namespace {
constexpr const char* kLog = "agent";

void no_op(int) {}

// The pod PID namespace's init: reaps orphans until the VM ends.
[[noreturn]] void pod_pid_holder() {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  ::signal(SIGCHLD, no_op);  // so pause() returns when a child exits
  for (;;) {
    if (::waitpid(-1, nullptr, 0) < 0) ::pause();
  }
}
}  // namespace

AgentService::AgentService(boost::asio::io_context& io, protocol::Server& server,
                           std::unique_ptr<container::Drives> drives,
                           std::optional<container::CgroupRoot> cgroup_root, ServiceOptions options)
    : io_(io),
      server_(server),
      drives_(std::move(drives)),
      cgroup_root_(std::move(cgroup_root)),
      options_(std::move(options)),
      reaper_(io) {
  agent_pid_ns_ = common::Fd(::open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC));
  if (!agent_pid_ns_) common::throw_errno("open /proc/self/ns/pid");
}

AgentService::~AgentService() {
  for (auto& [id, c] : containers_) container::kill_container(*c);
  if (pod_pid_holder_ > 0) ::kill(pod_pid_holder_, SIGKILL);
}

std::vector<std::string> AgentService::capabilities(bool has_cgroups) {
  std::vector<std::string> caps = {"seccomp", "oom-events", "pty", "exec"};
  if (has_cgroups) caps.push_back("cgroup.v2");
  return caps;
}

void AgentService::install() {
  using K = Request::KindCase;
  auto bind = [this](void (AgentService::*method)(Session&, const Request&, Responder)) {
    return [this, method](Session& s, const Request& r, Responder resp) {
      (this->*method)(s, r, std::move(resp));
    };
  };
  server_.handle(K::kPing, bind(&AgentService::ping));
  server_.handle(K::kSetTime, bind(&AgentService::set_time));
  server_.handle(K::kSetHostname, bind(&AgentService::set_hostname));
  server_.handle(K::kConfigureNetwork, bind(&AgentService::configure_network));
  server_.handle(K::kMountDrive, bind(&AgentService::mount_drive));
  server_.handle(K::kUnmountDrive, bind(&AgentService::unmount_drive));
  server_.handle(K::kCreateContainer, bind(&AgentService::create_container));
  server_.handle(K::kStartContainer, bind(&AgentService::start_container));
  server_.handle(K::kExecProcess, bind(&AgentService::exec_process));
  server_.handle(K::kSignalProcess, bind(&AgentService::signal_process));
  server_.handle(K::kWaitProcess, bind(&AgentService::wait_process));
  server_.handle(K::kResizeTerminal, bind(&AgentService::resize_terminal));
  server_.handle(K::kCloseStdin, bind(&AgentService::close_stdin));
  server_.handle(K::kListProcesses, bind(&AgentService::list_processes));
  server_.handle(K::kContainerStats, bind(&AgentService::container_stats));
  server_.handle(K::kRemoveContainer, bind(&AgentService::remove_container));
  server_.handle(K::kUpdateContainer, bind(&AgentService::update_container));
  server_.handle(K::kPutFiles, bind(&AgentService::put_files));
  server_.handle(K::kShutdown, bind(&AgentService::shutdown));
}

void AgentService::guarded(const char* what, const Responder& responder,
                           const std::function<void()>& body) {
  v1::Response response;
  auto* err = response.mutable_error();
  try {
    body();
    return;
  } catch (const AgentError& e) {
    err->set_code(e.code());
    err->set_message(e.what());
    err->set_errno_value(e.errno_value());
  } catch (const std::system_error& e) {
    err->set_code(v1::Error::CODE_INTERNAL);
    err->set_message(e.what());
    err->set_errno_value(e.code().category() == std::generic_category() ? e.code().value() : 0);
  } catch (const std::exception& e) {
    err->set_code(v1::Error::CODE_INTERNAL);
    err->set_message(e.what());
  }
  uint64_t suppressed = 0;
  if (error_log_.allow(&suppressed)) {
    common::log::warn(kLog, "{} failed: {}{}", what, err->message(),
                      suppressed ? fmt::format(" ({} similar lines suppressed)", suppressed) : "");
  }
  if (!responder.answered()) responder(std::move(response));
}

std::chrono::steady_clock::time_point AgentService::deadline_of(const Request& request) const {
  auto budget = request.timeout_ms() ? std::chrono::milliseconds(request.timeout_ms())
                                     : std::chrono::milliseconds(30000);
  return std::chrono::steady_clock::now() + budget;
}

container::Environment AgentService::environment(
    std::chrono::steady_clock::time_point deadline) const {
  container::Environment env;
  env.drives = drives_.get();
  env.cgroup_root = cgroup_root_ ? &*cgroup_root_ : nullptr;
  env.state_dir = options_.state_dir;
  env.pod_pid_fd = pod_pid_fd_.get();
  env.agent_pid_ns_fd = agent_pid_ns_.get();
  env.deadline = deadline;
  return env;
}

container::Container& AgentService::find(const std::string& id) {
  auto it = containers_.find(id);
  if (it == containers_.end())
    throw AgentError(v1::Error::CODE_NOT_FOUND, fmt::format("no container '{}'", id));
  return *it->second;
}

std::shared_ptr<process::Process> AgentService::find_process(container::Container& c,
                                                             const std::string& exec_id) {
  if (exec_id.empty()) return c.init;
  auto it = c.execs.find(exec_id);
  if (it == c.execs.end()) {
    throw AgentError(v1::Error::CODE_NOT_FOUND,
                     fmt::format("container '{}' has no exec '{}'", c.spec.id, exec_id));
  }
  return it->second;
}

void AgentService::watch(const std::string& container_id,
                         const std::shared_ptr<process::Process>& p) {
  reaper_.watch(p->pid(),
                [this, container_id, p](int status) { on_exit(container_id, p, status); });
}

void AgentService::on_exit(const std::string& container_id,
                           const std::shared_ptr<process::Process>& p, int status) {
  p->mark_exited(process::decode_wait_status(status));
  auto it = containers_.find(container_id);
  if (it != containers_.end() && p == it->second->init) {
    auto& c = *it->second;
    c.state = container::ContainerState::stopped;
    // Killing init kills the container: the kernel does it for a PID namespace of its own;
    // otherwise its cgroup (or its tracked execs) are killed here.
    container::kill_container(c);
    report_oom(c);
  }
  v1::Event event;
  *event.mutable_process_exited() = p->exited_message();
  server_.broadcast_event(event);
  common::log::info(kLog, "container {} process {} (pid {}) exited: code {} signal {}",
                    container_id, p->exec_id().empty() ? "init" : p->exec_id(), p->pid(),
                    p->exit()->exit_code, p->exit()->signal);
  finish_removal_if_done(container_id);
}

void AgentService::report_oom(container::Container& c) {
  if (!c.cgroup.valid()) return;
  uint64_t kills = c.cgroup.oom_kills();
  if (kills <= c.oom_kills_reported) return;
  c.oom_kills_reported = kills;
  v1::Event event;
  event.mutable_oom()->set_container_id(c.spec.id);
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  event.mutable_oom()->set_at_unix_ns(static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec);
  server_.broadcast_event(event);
}

void AgentService::finish_removal_if_done(const std::string& id) {
  auto pending = pending_removals_.find(id);
  auto it = containers_.find(id);
  if (pending == pending_removals_.end() || it == containers_.end()) return;
  auto& c = *it->second;
  if (c.init->running()) return;
  for (const auto& [exec_id, p] : c.execs) {
    if (p->running()) return;
  }
  for (auto* p : {c.init.get()}) {
    if (p->io()) p->io()->stop();
  }
  for (const auto& [exec_id, p] : c.execs) {
    if (p->io()) p->io()->stop();
  }
  container::cleanup_container(c);
  std::error_code ec;
  std::filesystem::remove_all(host_files_dir(id), ec);  // never follows the symlinks inside
  containers_.erase(it);
  auto responders = std::move(pending->second);
  pending_removals_.erase(pending);
  for (auto& r : responders) {
    v1::Response response;
    response.mutable_remove_container();
    r(response);
  }
}

void AgentService::ensure_pod_pid_namespace() {
  if (pod_pid_fd_) return;
  auto child = sys::clone_process(CLONE_NEWPID, -1);
  if (child.pid == 0) pod_pid_holder();
  pod_pid_holder_ = child.pid;
  pod_pid_fd_ = std::move(child.pidfd);
  reaper_.watch(child.pid, [this](int) {
    common::log::error(kLog, "the pod PID namespace's init exited");
    pod_pid_fd_.reset();
    pod_pid_holder_ = -1;
  });
}

}  // namespace frakti::agent::service
