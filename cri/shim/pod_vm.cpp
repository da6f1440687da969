#include "cri/shim/pod_vm.hpp"

#include <signal.h>

#include <future>

#include <fmt/format.h>

#include "common/guest_abi.hpp"
#include "common/log.hpp"
#include "cri/shim/pod_entry.hpp"

namespace frakti::cri::shim {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sandbox::AgentError;
using sandbox::LogStream;
using Kind = ShimError::Kind;

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string tail_of(const fs::path& file, size_t max_bytes) {
  std::error_code ec;
  auto size = fs::file_size(file, ec);
  if (ec) return "(none)";
  FILE* f = std::fopen(file.c_str(), "re");
  if (!f) return "(unreadable)";
  if (size > max_bytes) std::fseek(f, static_cast<long>(size - max_bytes), SEEK_SET);
  std::string out(std::min<uint64_t>(size, max_bytes), '\0');
  out.resize(std::fread(out.data(), 1, out.size(), f));
  std::fclose(f);
  return out;
}

Kind kind_of(const AgentError& e) {
  switch (e.code()) {
    case v1::Error::CODE_INVALID_ARGUMENT: return Kind::invalid;
    case v1::Error::CODE_NOT_FOUND: return Kind::not_found;
    case v1::Error::CODE_ALREADY_EXISTS: return Kind::exists;
    case v1::Error::CODE_FAILED_PRECONDITION: return Kind::precondition;
    case v1::Error::CODE_DEADLINE_EXCEEDED: return Kind::deadline;
    case v1::Error::CODE_UNAVAILABLE: return Kind::unavailable;
    default: return Kind::internal;
  }
}

}  // namespace

PodVm::PodVm(PodVmOptions options) : opts_(std::move(options)) {}

PodVm::~PodVm() {
  work_.reset();
  io_.stop();
  if (loop_.joinable()) loop_.join();
  agent_.reset();
}

void PodVm::fail_boot(const std::string& why) {
  std::string msg = why;
  if (vm_) {
    if (auto e = vm_->poll()) msg += fmt::format(" ({})", e->describe());
    vm_->kill();
  }
  msg += fmt::format("; guest console ({}):\n{}\nfrakti-vmm log ({}):\n{}", (opts_.dir / "console.log").string(),
                     tail_of(opts_.dir / "console.log", 1500), (opts_.dir / "vmm.log").string(),
                     tail_of(opts_.dir / "vmm.log", 800));
  throw ShimError(Kind::unavailable, msg);
}

void PodVm::boot() {
  sandbox::VmConfig vc;
  try {
    vc.assets = sandbox::GuestAssets::locate();
  } catch (const std::exception& e) {
    throw ShimError(Kind::precondition, e.what());
  }
  vc.cpus = opts_.cpus;
  vc.memory_mib = opts_.memory_mib;
  for (unsigned i = 0; i < opts_.drive_slots; ++i) vc.drives.push_back({"", true, ""});
  slots_.resize(opts_.drive_slots);
  for (unsigned i = 0; i < opts_.device_slots; ++i) vc.drives.push_back({"", false, ""});
  device_slots_.resize(opts_.device_slots);
  vc.vsock_uds = opts_.dir / "vsock.sock";
  vc.control_socket = opts_.dir / "control.sock";
  vc.console_log = opts_.dir / "console.log";
  vc.vmm_log = opts_.dir / "vmm.log";
  vc.log_level = opts_.vmm_log_level;
  vm_.emplace(sandbox::VmProcess::spawn(vc));

  common::Fd fd;
  try {
    fd = sandbox::connect_hybrid_vsock(vc.vsock_uds, guest_abi::kAgentVsockPort,
                                       std::chrono::steady_clock::now() + opts_.boot_timeout,
                                       [&] { return !vm_->poll(); });
    agent_ = std::make_unique<sandbox::AgentClient>(io_, std::move(fd), "pod " + opts_.pod_id.substr(0, 12));
    agent_->call(sandbox::make_request([](v1::Request& r) { r.mutable_set_time()->set_unix_time_ns(now_ns()); }), 10s,
                 "setting the guest clock");
    if (!opts_.hostname.empty())
      agent_->call(sandbox::make_request([&](v1::Request& r) { r.mutable_set_hostname()->set_hostname(opts_.hostname); }),
                   10s, "setting the pod hostname");
    if (!opts_.resolv_conf.empty() || !opts_.hosts.empty())
      agent_->call(sandbox::make_request([&](v1::Request& r) {
                     r.mutable_configure_network()->set_resolv_conf(opts_.resolv_conf);
                     r.mutable_configure_network()->set_hosts(opts_.hosts);
                   }),
                   10s, "writing the pod's DNS configuration");
    vmm::control::ControlClient::Options co;
    co.wait_for_socket = true;
    control_ = std::make_unique<vmm::control::ControlClient>(vc.control_socket.string(), co);
  } catch (const std::exception& e) {
    fail_boot(fmt::format("the pod VM did not come up: {}", e.what()));
  }
  agent_->on_event([this](const v1::Event& e) { handle_event(e); });
  agent_->on_close([this](const std::string& reason) { handle_close(reason); });
  {
    std::lock_guard lock(mu_);
    vm_running_ = true;
    ready_at_ns_ = now_ns();
  }
  work_.emplace(io_.get_executor());
  loop_ = std::thread([this] { io_.run(); });
}

// --- the loop bridge ---

void PodVm::on_loop(const std::function<void()>& fn) {
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  boost::asio::post(io_, [fn, done] {
    try {
      fn();
      done->set_value();
    } catch (...) {
      done->set_exception(std::current_exception());
    }
  });
  if (future.wait_for(30s) != std::future_status::ready)
    throw ShimError(Kind::internal, "the shim's event loop did not answer within 30 s");
  future.get();
}

v1::Response PodVm::call(const v1::Request& request, std::chrono::milliseconds timeout, const std::string& what) {
  auto result = std::make_shared<std::promise<v1::Response>>();
  auto future = result->get_future();
  boost::asio::post(io_, [this, request, timeout, what, result] {
    if (!agent_->is_open()) {
      result->set_exception(std::make_exception_ptr(
          AgentError(what + ": the pod VM is not running", v1::Error::CODE_UNAVAILABLE)));
      return;
    }
    agent_->call_async(request, timeout, what, [result](std::exception_ptr e, v1::Response r) {
      if (e)
        result->set_exception(e);
      else
        result->set_value(std::move(r));
    });
  });
  // The agent call has its own deadline; the margin covers a busy loop.
  if (future.wait_for(timeout + 5s) != std::future_status::ready)
    throw ShimError(Kind::deadline, what + ": no answer from the shim's event loop");
  try {
    return future.get();
  } catch (const AgentError& e) {
    throw ShimError(kind_of(e), e.what());
  }
}

// --- events ---

void PodVm::handle_event(const v1::Event& event) {
  std::lock_guard lock(mu_);
  if (event.has_oom()) {
    auto it = containers_.find(event.oom().container_id());
    if (it != containers_.end()) it->second->status.set_oom_killed(true);
    return;
  }
  if (!event.has_process_exited()) return;
  const auto& e = event.process_exited();
  if (!e.exec_id().empty()) return;  // execs are waited for by their callers
  auto it = containers_.find(e.container_id());
  if (it == containers_.end()) return;
  auto& s = it->second->status;
  s.set_state(sv1::ContainerStatus::EXITED);
  s.set_signal(e.signal());
  s.set_exit_code(e.signal() ? 128 + e.signal() : e.exit_code());
  s.set_finished_at_unix_ns(e.exited_at_unix_ns() ? e.exited_at_unix_ns() : now_ns());
  changed_.notify_all();
}

void PodVm::handle_close(const std::string& reason) {
  std::lock_guard lock(mu_);
  vm_running_ = false;
  std::optional<sandbox::VmExit> exit;
  if (vm_) exit = vm_->wait_for(2s);
  vm_exit_ = exit ? exit->describe() : "the agent connection closed: " + reason;
  common::log::warn("shim", "pod {}: {}", opts_.pod_id.substr(0, 12), vm_exit_);
  for (auto& [id, c] : containers_) {
    auto& s = c->status;
    if (s.state() == sv1::ContainerStatus::EXITED) continue;
    s.set_state(sv1::ContainerStatus::EXITED);
    s.set_exit_code(255);
    s.set_finished_at_unix_ns(now_ns());
    s.set_message("the pod VM stopped: " + vm_exit_);
  }
  changed_.notify_all();
}

bool PodVm::vm_stopped() {
  std::lock_guard lock(mu_);
  return !vm_running_;
}

// --- the table ---

PodVm::Container& PodVm::find(const std::string& id) {
  auto it = containers_.find(id);
  if (it == containers_.end()) throw ShimError(Kind::not_found, fmt::format("container {} is not in this pod", id));
  return *it->second;
}

sv1::StatusResponse PodVm::status() {
  sv1::StatusResponse r;
  std::lock_guard lock(mu_);
  r.set_vmm_pid(vm_ ? static_cast<uint32_t>(vm_->pid()) : 0);
  r.set_shim_pid(static_cast<uint32_t>(::getpid()));
  if (agent_) {
    r.set_agent_version(agent_->hello().agent_version());
    r.set_kernel_release(agent_->hello().kernel_release());
  }
  r.set_ready_at_unix_ns(ready_at_ns_);
  r.set_vm_running(vm_running_);
  r.set_vm_exit(vm_exit_);
  for (auto& [id, c] : containers_) *r.add_containers() = c->status;
  return r;
}

// --- image drives ---

std::string PodVm::attach_image(const std::string& image_id, const std::string& path, const std::string& fs_type) {
  std::lock_guard control(control_mu_);
  size_t free_slot = slots_.size();
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].image_id == image_id) {
        ++slots_[i].users;
        return slots_[i].serial;
      }
      if (slots_[i].image_id.empty() && free_slot == slots_.size()) free_slot = i;
    }
  }
  if (free_slot == slots_.size())
    throw ShimError(Kind::precondition,
                    fmt::format("the pod VM has no free image drive: its {} slots hold other images; remove a "
                                "container or use fewer distinct images per pod",
                                slots_.size()));
  std::string hex = image_id.substr(image_id.find(':') == std::string::npos ? 0 : image_id.find(':') + 1);
  std::string serial = "img-" + hex.substr(0, 16);
  try {
    control_->set_drive(static_cast<uint32_t>(free_slot), path, true, serial);
  } catch (const std::exception& e) {
    throw ShimError(Kind::unavailable, fmt::format("attaching image {} to the pod VM: {}", image_id, e.what()));
  }
  std::lock_guard lock(mu_);
  slots_[free_slot] = {image_id, serial, 1};
  (void)fs_type;
  return serial;
}

void PodVm::release_image(const std::string& image_id) {
  std::lock_guard control(control_mu_);
  size_t slot = slots_.size();
  std::string serial;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].image_id == image_id) slot = i;
    if (slot == slots_.size() || --slots_[slot].users > 0) return;
    serial = slots_[slot].serial;
  }
  try {
    call(sandbox::make_request([&](v1::Request& r) { r.mutable_unmount_drive()->set_serial(serial); }), 10s,
         "unmounting image drive " + serial);
  } catch (const ShimError& e) {
    if (e.kind() != Kind::not_found) common::log::warn("shim", "{}", e.what());
  }
  try {
    control_->set_drive(static_cast<uint32_t>(slot), std::nullopt, true, "");
  } catch (const std::exception& e) {
    common::log::warn("shim", "ejecting image drive {}: {}", serial, e.what());
  }
  std::lock_guard lock(mu_);
  slots_[slot] = {};
}

}  // namespace frakti::cri::shim
