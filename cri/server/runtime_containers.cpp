// Runtime: containers.

#include <signal.h>

#include <algorithm>
#include <future>
#include <optional>

#include <fmt/format.h>

#include "common/log.hpp"
#include "cri/server/container_options.hpp"
#include "cri/server/errors.hpp"
#include "cri/server/lookup.hpp"
#include "cri/server/resources.hpp"
#include "cri/server/runtime.hpp"

namespace frakti::cri {

using grpc::StatusCode;
namespace fs = std::filesystem;

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}


}  // namespace

std::shared_ptr<Runtime::Container> Runtime::container(const std::string& id) {
  std::lock_guard lock(mu_);
  return find_by_prefix(containers_, id, "container");
}

void Runtime::commit(Container& c, const st::ContainerRecord& rec) {
  store_.save(rec);
  std::lock_guard lock(mu_);
  c.rec = rec;
}

Runtime::View Runtime::view(Container& c) {
  std::lock_guard lock(mu_);
  auto& p = *pods_.at(c.rec.sandbox_id());
  return {c.rec, p.rec, p.backend};
}

void Runtime::refresh(Container& c) {
  std::unique_lock op(c.op, std::try_to_lock);
  if (!op) return;  // an operation is running; it will record the outcome
  st::ContainerRecord rec;
  st::SandboxRecord pod;
  Backend* backend;
  {
    std::lock_guard lock(mu_);
    rec = c.rec;
    auto it = pods_.find(rec.sandbox_id());
    if (it == pods_.end()) return;
    pod = it->second->rec;
    backend = it->second->backend;
  }
  if (rec.state() == rt::CONTAINER_EXITED) return;
  try {
    if (backend->refresh(pod, rec)) commit(c, rec);
  } catch (const std::exception& e) {
    common::log::warn("cri", "refreshing container {}: {}", rec.id().substr(0, 12), e.what());
  }
}

std::string Runtime::create_container(const std::string& pod_id, const rt::ContainerConfig& config,
                                      const rt::PodSandboxConfig& pod_config) {
  auto p = pod(pod_id);
  const auto& m = config.metadata();
  if (m.name().empty()) fail(StatusCode::INVALID_ARGUMENT, "container metadata.name is empty");
  if (config.image().image().empty()) fail(StatusCode::INVALID_ARGUMENT, "container {}: image is empty", m.name());
  check_resources(config.linux().resources());
  st::SandboxRecord pod;
  {
    std::lock_guard lock(mu_);
    pod = p->rec;
  }
  if (pod.state() != rt::SANDBOX_READY)
    fail(StatusCode::FAILED_PRECONDITION, "pod {} is not ready (stopped or its VM is gone): create a new pod", pod.id());

  auto image = images_.find(config.image().image());
  if (!image)
    fail(StatusCode::NOT_FOUND, "image {} is not present: pull it first (crictl pull {})", config.image().image(),
         config.image().image());
  ImageUse use{*image, {}};
  try {
    use.fs_image = images_.fs_image(image->id.str());
  } catch (const std::exception& e) {
    fail(StatusCode::INTERNAL, "preparing the filesystem image of {}: {}", config.image().image(), e.what());
  }

  const auto& pm = pod.config().metadata();
  std::string name = fmt::format("{}_{}_{}_{}_{}_{}", m.name(), pm.name(), pm.namespace_(), pm.uid(), pm.attempt(), m.attempt());
  auto c = std::make_shared<Container>();
  st::ContainerRecord rec;
  rec.set_id(new_id());
  rec.set_sandbox_id(pod.id());
  *rec.mutable_config() = config;
  rec.set_state(rt::CONTAINER_CREATED);
  rec.set_created_at(now_ns());
  rec.set_image_id(image->id.str());
  rec.set_image_ref(image->repo_digests.empty() ? image->id.str() : image->repo_digests.front());
  std::string log_dir = pod_config.log_directory().empty() ? pod.config().log_directory() : pod_config.log_directory();
  if (!config.log_path().empty()) {
    if (log_dir.empty())
      fail(StatusCode::INVALID_ARGUMENT, "container {} has log_path '{}' but its pod has no log_directory", m.name(), config.log_path());
    fs::path lp = fs::path(log_dir) / config.log_path();
    if (lp.lexically_normal().string().rfind(fs::path(log_dir).lexically_normal().string(), 0) != 0)
      fail(StatusCode::INVALID_ARGUMENT, "container log_path '{}' leaves the pod's log directory", config.log_path());
    rec.set_log_path(lp.string());
    std::error_code ec;
    fs::create_directories(lp.parent_path(), ec);
  }
  *rec.mutable_resources() = config.linux().resources();
  {
    std::lock_guard lock(mu_);
    if (auto it = names_.find(name); it != names_.end())
      fail(StatusCode::ALREADY_EXISTS, "container name {} is already used by container {}; remove it first", name, it->second);
    names_[name] = rec.id();
    c->rec = rec;
    containers_[rec.id()] = c;
  }
  // Pod lock first, as StopPodSandbox takes them (pod, then each container): the pod may
  // not stop under a create, and the opposite order could deadlock with a stop.
  std::lock_guard pod_op(p->op);
  std::lock_guard op(c->op);
  try {
    p->backend->create_container(pod, rec, use);
    commit(*c, rec);
  } catch (...) {
    std::lock_guard lock(mu_);
    names_.erase(name);
    containers_.erase(rec.id());
    throw;
  }
  return rec.id();
}

void Runtime::start_container(const std::string& id) {
  auto c = container(id);
  std::lock_guard op(c->op);
  auto [rec, pod, backend] = view(*c);
  if (rec.state() != rt::CONTAINER_CREATED)
    fail(StatusCode::FAILED_PRECONDITION, "container {} is {}, not created: it can be started once",
         rec.id(), rt::ContainerState_Name(rec.state()));
  // Taken before the start: a process as quick as `true` can have exited (and the shim noted
  // its end) by the time start_container returns, and finished_at must not precede it.
  int64_t started_at = now_ns();
  try {
    backend->start_container(pod, rec);
  } catch (const CriError& e) {
    // A start that failed leaves the container exited with the reason, as runc runtimes do.
    rec.set_state(rt::CONTAINER_EXITED);
    rec.set_exit_code(128);
    rec.set_reason("StartError");
    rec.set_message(e.what());
    rec.set_finished_at(now_ns());
    commit(*c, rec);
    throw;
  }
  rec.set_state(rt::CONTAINER_RUNNING);
  rec.set_started_at(started_at);
  backend->refresh(pod, rec);  // it may have exited already
  commit(*c, rec);
}

void Runtime::stop_container(const std::string& id, int64_t timeout_s) {
  auto c = container(id);
  std::lock_guard op(c->op);
  auto [rec, pod, backend] = view(*c);
  backend->refresh(pod, rec);
  if (rec.state() == rt::CONTAINER_EXITED) {
    commit(*c, rec);
    return;
  }
  if (rec.state() == rt::CONTAINER_RUNNING) {
    int sig = SIGTERM;
    if (auto img = images_.find(rec.image_id())) sig = stop_signal_of(img->config);
    backend->stop_container(pod, rec, std::chrono::seconds(std::max<int64_t>(timeout_s, 0)), sig);
    backend->refresh(pod, rec);
  } else {  // created, never started
    rec.set_state(rt::CONTAINER_EXITED);
    rec.set_finished_at(now_ns());
  }
  commit(*c, rec);
}

void Runtime::remove_container(const std::string& id) {
  std::shared_ptr<Container> c;
  try {
    c = container(id);
  } catch (const CriError& e) {
    if (e.code() == StatusCode::NOT_FOUND) return;  // CRI: idempotent
    throw;
  }
  std::lock_guard op(c->op);
  auto [rec, pod, backend] = view(*c);
  backend->refresh(pod, rec);
  if (rec.state() == rt::CONTAINER_RUNNING)
    fail(StatusCode::FAILED_PRECONDITION, "container {} is running: stop it first (crictl stop)", rec.id());
  backend->remove_container(pod, rec);
  store_.remove_container(rec.id());
  std::lock_guard lock(mu_);
  for (auto it = names_.begin(); it != names_.end(); ++it)
    if (it->second == rec.id()) {
      names_.erase(it);
      break;
    }
  containers_.erase(rec.id());
}

rt::ContainerStatusResponse Runtime::container_status(const std::string& id, bool verbose) {
  auto c = container(id);
  refresh(*c);
  st::ContainerRecord rec;
  {
    std::lock_guard lock(mu_);
    rec = c->rec;
  }
  rt::ContainerStatusResponse out;
  auto* s = out.mutable_status();
  s->set_id(rec.id());
  *s->mutable_metadata() = rec.config().metadata();
  s->set_state(rec.state());
  s->set_created_at(rec.created_at());
  s->set_started_at(rec.started_at());
  s->set_finished_at(rec.finished_at());
  s->set_exit_code(rec.exit_code());
  *s->mutable_image() = rec.config().image();
  s->set_image_ref(rec.image_ref());
  s->set_image_id(rec.image_id());
  s->set_reason(rec.reason());
  s->set_message(rec.message());
  *s->mutable_labels() = rec.config().labels();
  *s->mutable_annotations() = rec.config().annotations();
  *s->mutable_mounts() = rec.config().mounts();
  s->set_log_path(rec.log_path());
  *s->mutable_resources()->mutable_linux() = rec.resources();
  if (verbose)
    (*out.mutable_info())["info"] = fmt::format(R"({{"sandboxID":"{}","pid":{}}})", rec.sandbox_id(), rec.pid());
  return out;
}

std::vector<rt::Container> Runtime::list_containers(const rt::ContainerFilter& f) {
  std::vector<std::shared_ptr<Container>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, c] : containers_) all.push_back(c);
  }
  for (auto& c : all) refresh(*c);
  std::vector<rt::Container> out;
  std::lock_guard lock(mu_);
  for (auto& c : all) {
    const auto& rec = c->rec;
    if (!f.id().empty() && rec.id().rfind(f.id(), 0) != 0) continue;
    if (!f.pod_sandbox_id().empty() && rec.sandbox_id().rfind(f.pod_sandbox_id(), 0) != 0) continue;
    if (f.has_state() && f.state().state() != rec.state()) continue;
    if (!labels_match(rec.config().labels(), f.label_selector())) continue;
    rt::Container x;
    x.set_id(rec.id());
    x.set_pod_sandbox_id(rec.sandbox_id());
    *x.mutable_metadata() = rec.config().metadata();
    *x.mutable_image() = rec.config().image();
    x.set_image_ref(rec.image_ref());
    x.set_image_id(rec.image_id());
    x.set_state(rec.state());
    x.set_created_at(rec.created_at());
    *x.mutable_labels() = rec.config().labels();
    *x.mutable_annotations() = rec.config().annotations();
    out.push_back(std::move(x));
  }
  return out;
}

rt::ExecSyncResponse Runtime::exec_sync(const std::string& id, const std::vector<std::string>& cmd, int64_t timeout_s) {
  if (cmd.empty()) fail(StatusCode::INVALID_ARGUMENT, "ExecSync needs a command (cmd is empty)");
  if (timeout_s < 0) fail(StatusCode::INVALID_ARGUMENT, "ExecSync timeout {} is negative", timeout_s);
  auto c = container(id);
  refresh(*c);
  auto [rec, pod, backend] = view(*c);
  if (rec.state() != rt::CONTAINER_RUNNING)
    fail(StatusCode::FAILED_PRECONDITION, "container {} is not running", rec.id());
  // No container lock: execs run beside each other and beside stop (as in containerd).
  auto r = backend->exec_sync(pod, rec, cmd, std::chrono::seconds(timeout_s));
  rt::ExecSyncResponse out;
  out.set_stdout(r.out);
  out.set_stderr(r.err);
  out.set_exit_code(r.exit_code);
  return out;
}

rt::ContainerStats Runtime::container_stats(const std::string& id) {
  auto c = container(id);
  auto [rec, pod, backend] = view(*c);
  if (rec.state() != rt::CONTAINER_RUNNING) {
    rt::ContainerStats s;
    s.mutable_attributes()->set_id(rec.id());
    *s.mutable_attributes()->mutable_metadata() = rec.config().metadata();
    return s;
  }
  return backend->stats(pod, rec);
}

std::vector<rt::ContainerStats> Runtime::list_container_stats(const rt::ContainerStatsFilter& f) {
  rt::ContainerFilter cf;
  cf.set_id(f.id());
  cf.set_pod_sandbox_id(f.pod_sandbox_id());
  *cf.mutable_label_selector() = f.label_selector();
  // Each VM container's stats are a call into its pod's VM: ask up to kParallel at once, so a
  // hung VM costs the listing one call deadline, not one per container, and others add nothing.
  constexpr size_t kParallel = 16;
  auto containers = list_containers(cf);
  std::vector<std::optional<rt::ContainerStats>> got(containers.size());
  for (size_t first = 0; first < containers.size(); first += kParallel) {
    std::vector<std::future<void>> batch;
    for (size_t i = first; i < std::min(containers.size(), first + kParallel); ++i) {
      batch.push_back(std::async(std::launch::async, [this, &containers, &got, i] {
        const std::string& id = containers[i].id();
        try {
          got[i] = container_stats(id);
        } catch (const std::exception& e) {
          common::log::warn("cri", "stats of container {}: {}", id.substr(0, 12), e.what());
        }
      }));
    }
    for (auto& f : batch) f.get();
  }
  std::vector<rt::ContainerStats> out;
  for (auto& s : got)
    if (s) out.push_back(std::move(*s));
  return out;
}

rt::PodSandboxStats Runtime::pod_stats(const std::string& id) {
  auto p = pod(id);
  rt::PodSandboxStats out;
  auto* a = out.mutable_attributes();
  a->set_id(p->rec.id());
  *a->mutable_metadata() = p->rec.config().metadata();
  *a->mutable_labels() = p->rec.config().labels();
  *a->mutable_annotations() = p->rec.config().annotations();
  rt::ContainerStatsFilter f;
  f.set_pod_sandbox_id(p->rec.id());
  uint64_t cpu = 0, mem = 0;
  int64_t ts = now_ns();
  for (auto& s : list_container_stats(f)) {
    cpu += s.cpu().usage_core_nano_seconds().value();
    mem += s.memory().working_set_bytes().value();
    *out.mutable_linux()->add_containers() = s;
  }
  out.mutable_linux()->mutable_cpu()->set_timestamp(ts);
  out.mutable_linux()->mutable_cpu()->mutable_usage_core_nano_seconds()->set_value(cpu);
  out.mutable_linux()->mutable_memory()->set_timestamp(ts);
  out.mutable_linux()->mutable_memory()->mutable_working_set_bytes()->set_value(mem);
  return out;
}

void Runtime::update_container_resources(const std::string& id, const rt::LinuxContainerResources& r) {
  check_resources(r);
  auto c = container(id);
  std::lock_guard op(c->op);
  auto [rec, pod, backend] = view(*c);
  backend->refresh(pod, rec);
  if (rec.state() != rt::CONTAINER_CREATED && rec.state() != rt::CONTAINER_RUNNING)
    fail(StatusCode::FAILED_PRECONDITION, "container {} is {}: only created or running containers take new limits",
         rec.id(), rt::ContainerState_Name(rec.state()));
  backend->update_resources(pod, rec, r);
  // What ContainerStatus reports: the old values where the update left a field 0.
  auto& cur = *rec.mutable_resources();
  if (r.memory_limit_in_bytes()) cur.set_memory_limit_in_bytes(r.memory_limit_in_bytes());
  if (r.memory_swap_limit_in_bytes()) cur.set_memory_swap_limit_in_bytes(r.memory_swap_limit_in_bytes());
  if (r.cpu_quota()) cur.set_cpu_quota(r.cpu_quota());
  if (r.cpu_period()) cur.set_cpu_period(r.cpu_period());
  if (r.cpu_shares()) cur.set_cpu_shares(r.cpu_shares());
  if (!r.cpuset_cpus().empty()) cur.set_cpuset_cpus(r.cpuset_cpus());
  if (!r.cpuset_mems().empty()) cur.set_cpuset_mems(r.cpuset_mems());
  commit(*c, rec);
}

void Runtime::reopen_log(const std::string& id) {
  auto c = container(id);
  auto [rec, pod, backend] = view(*c);
  if (rec.state() != rt::CONTAINER_RUNNING)
    fail(StatusCode::FAILED_PRECONDITION, "container {} is not running: its log is closed", rec.id());
  backend->reopen_log(pod, rec);
}

}  // namespace frakti::cri
