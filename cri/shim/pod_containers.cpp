// PodVm's container calls: create/start/signal/wait/remove, ExecSync, stats, limits, logs,
// shutdown.

#include <signal.h>

#include <future>

#include <fmt/format.h>

#include "common/guest_abi.hpp"
#include "common/log.hpp"
#include "cri/shim/host_files.hpp"
#include "cri/shim/pod_vm.hpp"
#include "cri/shim/pod_entry.hpp"

namespace frakti::cri::shim {

using namespace std::chrono_literals;
using sandbox::LogStream;
using Kind = ShimError::Kind;

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Reads one agent stream to its end: each chunk goes to sink, then end(). The handler
// in flight owns the reader, so it lives exactly as long as the stream.
using Reader = std::function<void(uint32_t)>;
std::shared_ptr<Reader> make_reader(sandbox::AgentClient& agent, std::function<void(const std::string&)> sink,
                                    std::function<void()> end) {
  auto reader = std::make_shared<Reader>();
  *reader = [&agent, sink, end, weak = std::weak_ptr(reader)](uint32_t sid) {
    auto self = weak.lock();
    agent.session().async_read_stream(sid, [self, sid, sink, end](std::error_code ec, std::string data) {
      if (ec) {
        end();
        return;
      }
      sink(data);
      (*self)(sid);
    });
  };
  return reader;
}

}  // namespace

struct PodVm::ExecRun {
  std::string out, err;
  int open = 2;
  std::optional<v1::ProcessExited> exited;
  std::exception_ptr failure;
  std::promise<void> done;
  bool settled = false;
  static constexpr size_t kMaxOutput = 16 << 20;  // like containerd's cap on ExecSync output
  void settle() {
    if (settled || !(failure || (exited && open == 0))) return;
    settled = true;
    done.set_value();
  }
  void append(std::string& into, const std::string& data) {
    if (into.size() < kMaxOutput) into.append(data, 0, kMaxOutput - into.size());
  }
};

void PodVm::copy_host_mounts(const sv1::CreateContainerRequest& req, v1::CreateContainerRequest& create) {
  const std::string& id = req.container().container_id();
  for (int i = 0; i < req.host_mounts_size(); ++i) {
    const auto& hm = req.host_mounts(i);
    std::vector<v1::PutFilesRequest> batches;
    try {
      batches = snapshot_host_path(hm.host_path());
    } catch (const std::exception& e) {
      throw ShimError(Kind::invalid, fmt::format("mount of {} at {}: {}", hm.host_path(), hm.container_path(), e.what()));
    }
    for (auto& b : batches) {
      v1::Request r;
      b.set_container_id(id);
      b.set_index(static_cast<uint32_t>(i));
      *r.mutable_put_files() = std::move(b);
      call(r, 30s, fmt::format("copying {} into the VM", hm.host_path()));
    }
    auto* m = create.add_mounts();
    m->set_destination(hm.container_path());
    m->set_type("bind");
    m->set_path(fmt::format("{}/{}/{}", guest_abi::kGuestHostFilesDir, id, i));
    m->add_options("rbind");
    if (hm.readonly()) m->add_options("ro");
  }
}

void PodVm::create_container(const sv1::CreateContainerRequest& req) {
  const std::string id = req.container().container_id();
  auto c = std::make_unique<Container>();
  c->status.set_container_id(id);
  c->status.set_state(sv1::ContainerStatus::CREATED);
  c->image_id = req.image_id();
  c->log_path = req.log_path();
  {
    std::lock_guard lock(mu_);
    if (!vm_running_) throw ShimError(Kind::precondition, "the pod VM is not running: " + vm_exit_);
    if (containers_.count(id)) throw ShimError(Kind::exists, fmt::format("container {} already exists in this pod", id));
  }
  if (!req.log_path().empty()) {
    try {
      c->log->writer = std::make_unique<sandbox::CriLogWriter>(req.log_path());
    } catch (const std::exception& e) {
      throw ShimError(Kind::invalid, fmt::format("opening the container log: {}", e.what()));
    }
  }
  std::string serial = attach_image(req.image_id(), req.image_fs_path(), req.image_fs_type());
  auto create = req.container();
  create.mutable_rootfs()->set_drive_serial(serial);
  // The pod's DNS files, unless the container brings its own.
  auto pod_file = [&](const std::string& file, bool present) {
    std::string dest = "/etc/" + file;
    if (!present) return;
    for (auto& m : create.mounts())
      if (m.destination() == dest) return;
    auto* m = create.add_mounts();
    m->set_destination(dest);
    m->set_type("bind");
    m->set_path(std::string(guest_abi::kGuestPodFilesDir) + "/" + file);
    m->add_options("rbind");
  };
  pod_file("resolv.conf", !opts_.resolv_conf.empty());
  pod_file("hosts", !opts_.hosts.empty());
  try {
    copy_host_mounts(req, create);
  } catch (...) {
    release_image(req.image_id());
    throw;
  }
  try {
    c->device_slots = attach_devices(req, create);
  } catch (...) {
    release_image(req.image_id());
    throw;
  }
  if (!req.image_fs_type().empty()) create.mutable_rootfs()->set_fs_type(req.image_fs_type());
  auto sink = c->log;
  try {
    auto ids = std::make_shared<std::pair<uint32_t, uint32_t>>();
    // Streams must exist before the request that names them; both on the loop.
    on_loop([&] {
      auto& s = agent_->session();
      ids->first = s.new_stream_id();
      ids->second = s.new_stream_id();
      s.open_receive_stream(ids->first);
      s.open_receive_stream(ids->second);
    });
    create.mutable_process()->set_stdout_stream(ids->first);
    create.mutable_process()->set_stderr_stream(create.process().terminal() ? 0 : ids->second);
    create.mutable_process()->set_stdin_stream(0);
    v1::Request r;
    *r.mutable_create_container() = create;
    call(r, 60s, "creating container " + id);
    // Pump output into the log until each stream's FIN.
    on_loop([this, sink, ids] {
      make_reader(*agent_, [sink](const std::string& d) { sink->write(LogStream::stdout_, d); },
                  [sink] { sink->finish(LogStream::stdout_); })->operator()(ids->first);
      make_reader(*agent_, [sink](const std::string& d) { sink->write(LogStream::stderr_, d); },
                  [sink] { sink->finish(LogStream::stderr_); })->operator()(ids->second);
    });
  } catch (...) {
    release_devices(c->device_slots);
    release_image(req.image_id());
    throw;
  }
  c->process = create.process();
  c->status.set_created_at_unix_ns(now_ns());
  std::lock_guard lock(mu_);
  containers_[id] = std::move(c);
}

sv1::ContainerStatus PodVm::start_container(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    auto& c = find(id);
    if (c.status.state() != sv1::ContainerStatus::CREATED)
      throw ShimError(Kind::precondition, fmt::format("container {} was already started", id));
  }
  auto resp = call(sandbox::make_request([&](v1::Request& r) { r.mutable_start_container()->set_container_id(id); }), 60s,
                   "starting container " + id);
  std::lock_guard lock(mu_);
  auto& c = find(id);
  // The exit event may have come first (a process that ends at once).
  if (c.status.state() == sv1::ContainerStatus::CREATED) c.status.set_state(sv1::ContainerStatus::RUNNING);
  c.status.set_pid(resp.start_container().pid());
  c.status.set_started_at_unix_ns(now_ns());
  return c.status;
}

void PodVm::signal(const std::string& id, int sig, bool all) {
  {
    std::lock_guard lock(mu_);
    if (find(id).status.state() != sv1::ContainerStatus::RUNNING) return;  // nothing to signal
  }
  try {
    call(sandbox::make_request([&](v1::Request& r) {
           auto* s = r.mutable_signal_process();
           s->set_container_id(id);
           s->set_signal(sig);
           s->set_all(all);
         }),
         10s, fmt::format("sending signal {} to container {}", sig, id));
  } catch (const ShimError& e) {
    // The process may have ended between the check and the call.
    std::lock_guard lock(mu_);
    if (find(id).status.state() != sv1::ContainerStatus::EXITED) throw;
  }
}

sv1::ContainerStatus PodVm::wait(const std::string& id, std::chrono::milliseconds limit) {
  std::unique_lock lock(mu_);
  find(id);
  changed_.wait_for(lock, limit, [&] { return find(id).status.state() == sv1::ContainerStatus::EXITED; });
  auto s = find(id).status;
  return s;
}

void PodVm::remove_container(const std::string& id) {
  std::string image_id;
  std::vector<uint32_t> devices;
  bool vm_up;
  {
    std::lock_guard lock(mu_);
    auto& c = find(id);
    image_id = c.image_id;
    devices = c.device_slots;
    vm_up = vm_running_;
  }
  if (vm_up)
    call(sandbox::make_request([&](v1::Request& r) { r.mutable_remove_container()->set_container_id(id); }), 30s,
         "removing container " + id);
  if (vm_up) {
    release_devices(devices);
    release_image(image_id);
  }
  std::lock_guard lock(mu_);
  containers_.erase(id);
}

sv1::ExecSyncResponse PodVm::exec_sync(const sv1::ExecSyncRequest& req, std::chrono::milliseconds limit) {
  v1::Process process;
  std::string exec_id;
  {
    std::lock_guard lock(mu_);
    auto& c = find(req.container_id());
    if (c.status.state() != sv1::ContainerStatus::RUNNING)
      throw ShimError(Kind::precondition, fmt::format("container {} is not running", req.container_id()));
    process = c.process;
    exec_id = fmt::format("sync-{}", next_exec_++);
  }
  if (req.cmd().empty()) throw ShimError(Kind::invalid, "ExecSync needs a command (cmd is empty)");
  process.clear_args();
  for (auto& a : req.cmd()) process.add_args(a);
  process.set_terminal(false);
  process.set_stdin_stream(0);

  auto run = std::make_shared<ExecRun>();
  auto finished = run->done.get_future();
  const std::string cid = req.container_id();
  on_loop([&, run] {
    auto& s = agent_->session();
    uint32_t out = s.new_stream_id(), err = s.new_stream_id();
    s.open_receive_stream(out);
    s.open_receive_stream(err);
    process.set_stdout_stream(out);
    process.set_stderr_stream(err);
    auto end = [run] {
      --run->open;
      run->settle();
    };
    make_reader(*agent_, [run](const std::string& d) { run->append(run->out, d); }, end)->operator()(out);
    make_reader(*agent_, [run](const std::string& d) { run->append(run->err, d); }, end)->operator()(err);
    v1::Request r;
    auto* e = r.mutable_exec_process();
    e->set_container_id(cid);
    e->set_exec_id(exec_id);
    *e->mutable_process() = process;
    agent_->call_async(r, 30s, "starting the exec", [this, run, cid, exec_id](std::exception_ptr ex, v1::Response) {
      if (ex) {
        run->failure = ex;
        run->settle();
        return;
      }
      v1::Request w;
      w.mutable_wait_process()->set_container_id(cid);
      w.mutable_wait_process()->set_exec_id(exec_id);
      agent_->call_async(w, std::chrono::hours(24), "waiting for the exec", [run](std::exception_ptr ex, v1::Response resp) {
        if (ex)
          run->failure = ex;
        else
          run->exited = resp.wait_process().status();
        run->settle();
      });
    });
  });

  sv1::ExecSyncResponse resp;
  if (finished.wait_for(limit) != std::future_status::ready) {
    try {
      call(sandbox::make_request([&](v1::Request& r) {
             r.mutable_signal_process()->set_container_id(cid);
             r.mutable_signal_process()->set_exec_id(exec_id);
             r.mutable_signal_process()->set_signal(SIGKILL);
           }),
           5s, "killing the timed-out exec");
    } catch (const std::exception& e) {
      common::log::warn("shim", "{}", e.what());
    }
    finished.wait_for(5s);
    resp.set_timed_out(true);
    return resp;
  }
  on_loop([&] {
    if (run->failure) std::rethrow_exception(run->failure);
    resp.set_stdout(run->out);
    resp.set_stderr(run->err);
    resp.set_exit_code(run->exited->signal() ? 128 + run->exited->signal() : run->exited->exit_code());
  });
  return resp;
}

v1::ContainerStatsResponse PodVm::stats(const v1::ContainerStatsRequest& req) {
  v1::Request r;
  *r.mutable_container_stats() = req;
  return call(r, 10s, "reading container stats").container_stats();
}

void PodVm::update(const v1::UpdateContainerRequest& req) {
  v1::Request r;
  *r.mutable_update_container() = req;
  call(r, 10s, "updating container limits");
}

void PodVm::reopen_log(const std::string& id) {
  std::shared_ptr<LogSink> sink;
  std::string path;
  {
    std::lock_guard lock(mu_);
    auto& c = find(id);
    sink = c.log;
    path = c.log_path;
  }
  std::lock_guard lock(sink->mu);
  if (!sink->writer) throw ShimError(Kind::precondition, fmt::format("container {} has no log file", id));
  try {
    sink->writer->reopen();
  } catch (const std::exception& e) {
    throw ShimError(Kind::internal, fmt::format("reopening the log {}: {}", path, e.what()));
  }
}

void PodVm::shutdown(std::chrono::milliseconds grace) {
  if (!vm_stopped()) {
    try {
      call(sandbox::make_request([&](v1::Request& r) {
             r.mutable_shutdown()->set_grace_period_ms(static_cast<uint32_t>(grace.count()));
           }),
           grace + 10s, "powering the pod VM off");
    } catch (const std::exception& e) {
      common::log::warn("shim", "{}; stopping the VMM", e.what());
    }
  }
  std::lock_guard lock(mu_);
  if (vm_ && !vm_->wait_for(10s)) vm_->kill();
  vm_running_ = false;
  if (vm_exit_.empty()) vm_exit_ = "shut down";
  for (auto& [id, c] : containers_) {
    auto& s = c->status;
    if (s.state() == sv1::ContainerStatus::EXITED) continue;
    s.set_state(sv1::ContainerStatus::EXITED);
    s.set_exit_code(137);
    s.set_signal(SIGKILL);
    s.set_finished_at_unix_ns(now_ns());
  }
  changed_.notify_all();
}

}  // namespace frakti::cri::shim
