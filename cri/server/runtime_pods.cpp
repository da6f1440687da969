// Runtime: construction, recovery, routing, pods.

#include <fcntl.h>
#include <unistd.h>

#include <random>

#include "common/error.hpp"
#include "common/fd.hpp"

#include <fmt/format.h>

#include "common/log.hpp"
#include "cri/server/errors.hpp"
#include "cri/server/lookup.hpp"
#include "cri/server/runtime.hpp"
#include "cri/server/runc_backend.hpp"
#include "cri/server/vm_backend.hpp"

namespace frakti::cri {

using grpc::StatusCode;

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

constexpr const char* kOsContainerAnnotation = "runtime.frakti.alpha.kubernetes.io/OSContainer";

std::string pod_name(const rt::PodSandboxMetadata& m) {
  return fmt::format("{}_{}_{}_{}", m.name(), m.namespace_(), m.uid(), m.attempt());
}


}  // namespace

Runtime::Runtime(const Options& opts, image::ImageService& images)
    : opts_(opts), images_(images), store_(opts.root_directory), vm_(std::make_unique<VmBackend>(opts)),
      runc_(std::make_unique<RuncBackend>(opts)) {}

std::string Runtime::new_id() {
  unsigned char b[32];
  common::Fd fd(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
  if (!fd || ::read(fd.get(), b, sizeof b) != sizeof b) common::throw_errno("reading /dev/urandom");
  std::string id;
  for (auto c : b) id += fmt::format("{:02x}", c);
  return id;
}

Backend* Runtime::route(const rt::PodSandboxConfig& cfg, const std::string& handler, st::SandboxRecord::Backend& kind) {
  if (!handler.empty() && handler != "frakti" && handler != "runc" && handler != "kata")
    fail(StatusCode::INVALID_ARGUMENT, "unknown runtime handler '{}' (frakti serves the default handler and 'runc')", handler);
  const auto& sc = cfg.linux().security_context();
  const auto& ns = sc.namespace_options();
  std::string why;
  if (handler == "runc") why = "runtime handler runc";
  else if (sc.privileged()) why = "privileged";
  else if (ns.network() == rt::NODE) why = "host network";
  else if (ns.pid() == rt::NODE) why = "host PID namespace";
  else if (ns.ipc() == rt::NODE) why = "host IPC namespace";
  else if (auto it = cfg.annotations().find(kOsContainerAnnotation); it != cfg.annotations().end() && it->second == "true")
    why = std::string("annotation ") + kOsContainerAnnotation;
  if (why.empty()) {
    kind = st::SandboxRecord::VM;
    return vm_.get();
  }
  if (!opts_.enable_alternative_runtime)
    fail(StatusCode::FAILED_PRECONDITION, "pod {} needs runc ({}) but --enable-alternative-runtime=false",
         cfg.metadata().name(), why);
  common::log::info("cri", "pod {} runs with runc ({})", cfg.metadata().name(), why);
  kind = st::SandboxRecord::RUNC;
  return runc_.get();
}

std::shared_ptr<Runtime::Pod> Runtime::pod(const std::string& id) {
  std::lock_guard lock(mu_);
  return find_by_prefix(pods_, id, "pod sandbox");
}

void Runtime::commit(Pod& p, const st::SandboxRecord& rec) {
  store_.save(rec);
  std::lock_guard lock(mu_);
  p.rec = rec;
}

void Runtime::recover() {
  auto pods = store_.load_sandboxes();
  auto containers = store_.load_containers();
  for (auto& rec : pods) {
    auto p = std::make_shared<Pod>();
    p->backend = rec.backend() == st::SandboxRecord::RUNC ? runc_.get() : vm_.get();
    bool alive = p->backend->pod_alive(rec);
    if (rec.state() == rt::SANDBOX_READY && !alive) {
      rec.set_state(rt::SANDBOX_NOTREADY);
      rec.set_message("the pod VM was gone when frakti started");
      store_.save(rec);
    }
    common::log::info("cri", "recovered pod {} ({}): {}", rec.id().substr(0, 12), rec.config().metadata().name(),
                      alive ? "running" : "not ready");
    names_[pod_name(rec.config().metadata())] = rec.id();
    p->rec = rec;
    pods_[rec.id()] = p;
  }
  for (auto& rec : containers) {
    auto pit = pods_.find(rec.sandbox_id());
    if (pit == pods_.end()) {
      common::log::warn("cri", "container {} belongs to no known pod; its record is removed", rec.id());
      store_.remove_container(rec.id());
      continue;
    }
    auto c = std::make_shared<Container>();
    c->rec = rec;
    containers_[rec.id()] = c;
    names_[fmt::format("{}_{}_{}", rec.config().metadata().name(), pod_name(pit->second->rec.config().metadata()),
                       rec.config().metadata().attempt())] = rec.id();
    refresh(*c);
  }
  // Each backend removes what no record names (Backend::sweep).
  std::set<std::string> pod_ids, container_ids;
  for (auto& [id, p] : pods_) pod_ids.insert(id);
  for (auto& [id, c] : containers_) container_ids.insert(id);
  // A record the store could not parse is moved aside, not gone: its things stay untouched.
  auto broken = [](const std::filesystem::path& dir, const char* file, std::set<std::string>& ids) {
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(dir, ec))
      if (std::filesystem::exists(e.path() / (std::string(file) + ".broken"), ec)) ids.insert(e.path().filename());
  };
  broken(opts_.root_directory / "sandboxes", "sandbox.json", pod_ids);
  broken(opts_.root_directory / "containers", "container.json", container_ids);
  for (Backend* b : {vm_.get(), runc_.get()}) {
    try {
      b->sweep(pod_ids, container_ids);
    } catch (const std::exception& e) {
      common::log::warn("cri", "sweeping unrecorded pods and containers: {}", e.what());
    }
  }
}

std::string Runtime::run_pod(const rt::PodSandboxConfig& config, const std::string& handler) {
  const auto& m = config.metadata();
  if (m.name().empty() || m.namespace_().empty() || m.uid().empty())
    fail(StatusCode::INVALID_ARGUMENT, "pod metadata needs name, namespace and uid (got name '{}', namespace '{}', uid '{}')",
         m.name(), m.namespace_(), m.uid());
  st::SandboxRecord::Backend kind;
  Backend* backend = route(config, handler, kind);
  std::string name = pod_name(m);
  auto p = std::make_shared<Pod>();
  p->backend = backend;
  st::SandboxRecord rec;
  rec.set_id(new_id());
  *rec.mutable_config() = config;
  rec.set_runtime_handler(handler);
  rec.set_backend(kind);
  rec.set_state(rt::SANDBOX_NOTREADY);
  rec.set_created_at(now_ns());
  {
    std::lock_guard lock(mu_);
    if (auto it = names_.find(name); it != names_.end())
      fail(StatusCode::ALREADY_EXISTS, "pod name {} is already used by pod {}; remove that pod first", name, it->second);
    names_[name] = rec.id();
    pods_[rec.id()] = p;
    p->rec = rec;
  }
  std::lock_guard op(p->op);
  try {
    store_.save(rec);  // first, so a crash during the boot leaves a record to clean up
    backend->run_pod(rec);
    rec.set_state(rt::SANDBOX_READY);
    commit(*p, rec);
  } catch (...) {
    try {
      backend->stop_pod(rec);
      backend->remove_pod(rec);
    } catch (const std::exception& e) {
      common::log::warn("cri", "cleaning up pod {} after a failed start: {}", rec.id(), e.what());
    }
    store_.remove_sandbox(rec.id());
    std::lock_guard lock(mu_);
    names_.erase(name);
    pods_.erase(rec.id());
    throw;
  }
  common::log::info("cri", "pod {} ({}) ready: {} vCPU, {} MiB", rec.id().substr(0, 12), name, rec.cpus(), rec.memory_mib());
  return rec.id();
}

void Runtime::stop_pod(const std::string& id) {
  auto p = pod(id);
  std::vector<std::shared_ptr<Container>> members;
  {
    std::lock_guard lock(mu_);
    for (auto& [cid, c] : containers_)
      if (c->rec.sandbox_id() == p->rec.id()) members.push_back(c);
  }
  std::lock_guard op(p->op);
  st::SandboxRecord rec;
  {
    std::lock_guard lock(mu_);
    rec = p->rec;
  }
  // Exits that already happened keep their own codes; what still runs is killed with the pod.
  for (auto& c : members) refresh(*c);
  p->backend->stop_pod(rec);
  for (auto& c : members) {
    std::lock_guard cop(c->op);
    st::ContainerRecord cr;
    {
      std::lock_guard lock(mu_);
      cr = c->rec;
    }
    if (cr.state() == rt::CONTAINER_EXITED) continue;
    cr.set_state(rt::CONTAINER_EXITED);
    if (cr.started_at()) {
      cr.set_exit_code(137);
      cr.set_reason("Error");
      cr.set_message("killed when its pod was stopped");
    }
    cr.set_finished_at(now_ns());
    commit(*c, cr);
  }
  if (rec.state() != rt::SANDBOX_NOTREADY) {
    rec.set_state(rt::SANDBOX_NOTREADY);
    commit(*p, rec);
  }
}

void Runtime::remove_pod(const std::string& id) {
  std::shared_ptr<Pod> p;
  try {
    p = pod(id);
  } catch (const CriError& e) {
    if (e.code() == StatusCode::NOT_FOUND) return;  // CRI: removing a removed pod succeeds
    throw;
  }
  stop_pod(p->rec.id());
  std::vector<std::string> members;
  {
    std::lock_guard lock(mu_);
    for (auto& [cid, c] : containers_)
      if (c->rec.sandbox_id() == p->rec.id()) members.push_back(cid);
  }
  for (auto& cid : members) remove_container(cid);
  std::lock_guard op(p->op);
  p->backend->remove_pod(p->rec);
  store_.remove_sandbox(p->rec.id());
  std::lock_guard lock(mu_);
  names_.erase(pod_name(p->rec.config().metadata()));
  pods_.erase(p->rec.id());
}

rt::PodSandboxStatusResponse Runtime::pod_status(const std::string& id, bool verbose) {
  auto p = pod(id);
  st::SandboxRecord rec;
  {
    std::lock_guard lock(mu_);
    rec = p->rec;
  }
  rt::PodSandboxStatusResponse out;
  auto* s = out.mutable_status();
  s->set_id(rec.id());
  *s->mutable_metadata() = rec.config().metadata();
  s->set_state(rec.state());
  s->set_created_at(rec.created_at());
  *s->mutable_labels() = rec.config().labels();
  *s->mutable_annotations() = rec.config().annotations();
  s->set_runtime_handler(rec.runtime_handler());
  auto* ns = s->mutable_linux()->mutable_namespaces()->mutable_options();
  *ns = rec.config().linux().security_context().namespace_options();
  s->mutable_network();  // no CNI yet: no pod IP
  out.set_timestamp(now_ns());
  if (verbose) {
    (*out.mutable_info())["info"] = fmt::format(
        R"({{"backend":"{}","runtimeDir":"{}","shimPid":{},"cpus":{},"memoryMiB":{},"message":"{}"}})",
        rec.backend() == st::SandboxRecord::VM ? "vm" : "runc", rec.runtime_dir(), rec.shim().pid(), rec.cpus(),
        rec.memory_mib(), rec.message());
  }
  return out;
}

std::vector<rt::PodSandbox> Runtime::list_pods(const rt::PodSandboxFilter& f) {
  std::vector<rt::PodSandbox> out;
  std::lock_guard lock(mu_);
  for (auto& [id, p] : pods_) {
    const auto& rec = p->rec;
    if (!f.id().empty() && id.rfind(f.id(), 0) != 0) continue;
    if (f.has_state() && f.state().state() != rec.state()) continue;
    if (!labels_match(rec.config().labels(), f.label_selector())) continue;
    rt::PodSandbox s;
    s.set_id(id);
    *s.mutable_metadata() = rec.config().metadata();
    s.set_state(rec.state());
    s.set_created_at(rec.created_at());
    *s.mutable_labels() = rec.config().labels();
    *s.mutable_annotations() = rec.config().annotations();
    s.set_runtime_handler(rec.runtime_handler());
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace frakti::cri
