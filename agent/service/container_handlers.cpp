// Handlers: CreateContainer, StartContainer, RemoveContainer, UpdateContainer, ListProcesses,
// ContainerStats.

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <set>

#include "agent/agent_error.hpp"
#include "agent/container/spec.hpp"
#include "agent/service/agent_service.hpp"
#include "agent/sys/files.hpp"

namespace frakti::agent::service {

namespace {

// ppid and argv of a process from procfs; false when it is gone.
bool read_process_info(pid_t pid, v1::ProcessInfo* info) {
  auto stat = sys::try_read_file(fmt::format("/proc/{}/stat", pid));
  if (!stat) return false;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; the last ')' ends it.
  size_t close = stat->rfind(')');
  if (close == std::string::npos) return false;
  unsigned ppid = 0;
  char state = 0;
  if (std::sscanf(stat->c_str() + close + 1, " %c %u", &state, &ppid) != 2) return false;
  info->set_pid(static_cast<uint32_t>(pid));
  info->set_ppid(ppid);
  auto cmdline = sys::try_read_file(fmt::format("/proc/{}/cmdline", pid)).value_or("");
  size_t start = 0;
  while (start < cmdline.size()) {
    size_t end = cmdline.find('\0', start);
    if (end == std::string::npos) end = cmdline.size();
    info->add_args(cmdline.substr(start, end - start));
    start = end + 1;
  }
  return true;
}

std::string ns_link(pid_t pid, const char* ns) {
  char buf[64] = {};
  std::string path = fmt::format("/proc/{}/ns/{}", pid, ns);
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// Without cgroups: every process in the container's mount namespace.
std::vector<pid_t> pids_in_mount_namespace(pid_t init) {
  std::vector<pid_t> out;
  std::string want = ns_link(init, "mnt");
  if (want.empty()) return out;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir("/proc"), ::closedir);
  if (!dir) return out;
  while (dirent* e = ::readdir(dir.get())) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid > 0 && ns_link(pid, "mnt") == want) out.push_back(pid);
  }
  return out;
}

}  // namespace

void AgentService::create_container(Session& s, const Request& r, Responder resp) {
  guarded("CreateContainer", resp, [&] {
    if (shutting_down_) throw AgentError(v1::Error::CODE_UNAVAILABLE, "the agent is shutting down");
    auto spec = container::parse_container_spec(r.create_container());
    if (containers_.count(spec.id)) {
      throw AgentError(v1::Error::CODE_ALREADY_EXISTS,
                       fmt::format("container '{}' already exists", spec.id));
    }
    if (spec.namespaces.pod_pid) ensure_pod_pid_namespace();
    auto c = container::create_container(spec, environment(deadline_of(r)));
    watch(spec.id, c->init);
    process::StdioRequest streams{spec.process.terminal,      spec.process.stdin_stream,
                                  spec.process.stdout_stream, spec.process.stderr_stream,
                                  spec.process.rows,          spec.process.cols};
    c->init->set_io(
        process::IoPump::start(io_, s.shared_from_this(), streams, std::move(c->init_stdio)));
    containers_[spec.id] = std::move(c);
    common::log::info("agent", "container {} created", spec.id);
    v1::Response response;
    response.mutable_create_container();
    resp(response);
  });
}

void AgentService::start_container(Session&, const Request& r, Responder resp) {
  guarded("StartContainer", resp, [&] {
    auto& c = find(r.start_container().container_id());
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline_of(r) - std::chrono::steady_clock::now());
    container::start_container(c, left);
    v1::Response response;
    response.mutable_start_container()->set_pid(static_cast<uint32_t>(c.init->pid()));
    resp(response);
  });
}

void AgentService::remove_container(Session&, const Request& r, Responder resp) {
  guarded("RemoveContainer", resp, [&] {
    const auto& id = r.remove_container().container_id();
    auto& c = find(id);
    container::kill_container(c);
    pending_removals_[id].push_back(resp);
    // Answered once every process is reaped (at once when none runs).
    finish_removal_if_done(id);
  });
}

void AgentService::update_container(Session&, const Request& r, Responder resp) {
  guarded("UpdateContainer", resp, [&] {
    auto& c = find(r.update_container().container_id());
    auto limits = container::parse_resources(r.update_container().resources());
    if (!c.cgroup.valid() || !cgroup_root_)
      throw AgentError(v1::Error::CODE_FAILED_PRECONDITION,
                       fmt::format("container {} has no cgroup (the agent runs without cgroups)", c.spec.id));
    try {
      c.cgroup.update(*cgroup_root_, limits);
    } catch (const std::system_error& e) {
      if (e.code().value() != EBUSY) throw;
      throw AgentError(v1::Error::CODE_FAILED_PRECONDITION,
                       fmt::format("container {} uses more memory than the new limit {} and cannot give it back",
                                   c.spec.id, limits.memory_limit),
                       EBUSY);
    }
    v1::Response response;
    response.mutable_update_container();
    resp(response);
  });
}

void AgentService::list_processes(Session&, const Request& r, Responder resp) {
  guarded("ListProcesses", resp, [&] {
    auto& c = find(r.list_processes().container_id());
    std::vector<pid_t> pids;
    if (c.init->running())
      pids = c.cgroup.valid() ? c.cgroup.pids() : pids_in_mount_namespace(c.init->pid());
    std::sort(pids.begin(), pids.end());
    v1::Response response;
    auto* list = response.mutable_list_processes();
    for (pid_t pid : pids) {
      v1::ProcessInfo info;
      if (!read_process_info(pid, &info)) continue;
      if (pid == c.init->pid()) info.set_exec_id("");
      for (const auto& [exec_id, p] : c.execs) {
        if (p->pid() == pid && p->running()) {
          info.set_exec_id(exec_id);
          info.set_is_exec(true);
        }
      }
      *list->add_processes() = std::move(info);
    }
    resp(response);
  });
}

void AgentService::container_stats(Session&, const Request& r, Responder resp) {
  guarded("ContainerStats", resp, [&] {
    std::vector<container::Container*> which;
    if (r.container_stats().container_ids_size() == 0) {
      for (auto& [id, c] : containers_) which.push_back(c.get());
    } else {
      for (const auto& id : r.container_stats().container_ids()) which.push_back(&find(id));
    }
    v1::Response response;
    auto* out = response.mutable_container_stats();
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    for (auto* c : which) {
      auto* st = out->add_stats();
      st->set_container_id(c->spec.id);
      st->set_timestamp_unix_ns(static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec);
      if (!c->cgroup.valid()) continue;
      auto s = c->cgroup.stats();
      st->mutable_cpu()->set_usage_ns(s.cpu_usage_ns);
      st->mutable_cpu()->set_user_ns(s.cpu_user_ns);
      st->mutable_cpu()->set_system_ns(s.cpu_system_ns);
      st->mutable_cpu()->set_throttled_periods(s.throttled_periods);
      st->mutable_cpu()->set_throttled_ns(s.throttled_ns);
      auto* m = st->mutable_memory();
      m->set_usage_bytes(s.memory_usage);
      m->set_working_set_bytes(s.memory_working_set);
      m->set_rss_bytes(s.memory_rss);
      m->set_cache_bytes(s.memory_cache);
      m->set_limit_bytes(s.memory_limit);
      m->set_page_faults(s.page_faults);
      m->set_major_page_faults(s.major_page_faults);
      m->set_oom_kills(s.oom_kills);
      st->mutable_pids()->set_current(s.pids_current);
      st->mutable_pids()->set_limit(s.pids_limit);
      report_oom(*c);
    }
    resp(response);
  });
}

}  // namespace frakti::agent::service
