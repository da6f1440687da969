// Handlers: Ping, SetTime, SetHostname, ConfigureNetwork, MountDrive, UnmountDrive, Shutdown.

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent_error.hpp"
#include "agent/service/agent_service.hpp"
#include "agent/sys/files.hpp"
#include "common/error.hpp"
#include "common/log.hpp"

namespace frakti::agent::service {

namespace {
constexpr const char* kLog = "agent";

bool valid_guest_path(const std::string& p) {
  return !p.empty() && p[0] == '/' && p.find('\0') == std::string::npos &&
         p.find(",") == std::string::npos && p.find("/../") == std::string::npos &&
         p.substr(p.size() >= 3 ? p.size() - 3 : 0) != "/..";
}
}  // namespace

void AgentService::ping(Session&, const Request& r, Responder resp) {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  v1::Response response;
  response.mutable_ping()->set_nonce(r.ping().nonce());
  response.mutable_ping()->set_guest_monotonic_ns(static_cast<int64_t>(ts.tv_sec) * 1000000000 +
                                                  ts.tv_nsec);
  resp(response);
}

void AgentService::set_time(Session&, const Request& r, Responder resp) {
  guarded("SetTime", resp, [&] {
    if (!options_.pid1) {
      throw AgentError(
          v1::Error::CODE_FAILED_PRECONDITION,
          "the agent is not the guest's init (host test mode): it does not set the clock");
    }
    int64_t ns = r.set_time().unix_time_ns();
    if (ns <= 0) invalid_argument("unix_time_ns {} is not a time after 1970", ns);
    timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    common::check(::clock_settime(CLOCK_REALTIME, &ts), "clock_settime");
    v1::Response response;
    response.mutable_set_time();
    resp(response);
  });
}

void AgentService::set_hostname(Session&, const Request& r, Responder resp) {
  guarded("SetHostname", resp, [&] {
    const auto& name = r.set_hostname().hostname();
    if (name.empty() || name.size() > 64 || name.find('\0') != std::string::npos)
      invalid_argument("hostname '{}' is not valid", name);
    // In host test mode the agent runs in a UTS namespace of its own (see main.cpp).
    common::check(::sethostname(name.data(), name.size()), "sethostname {}", name);
    v1::Response response;
    response.mutable_set_hostname();
    resp(response);
  });
}

// The pod's DNS files live in <state_dir>/pod/; the host bind-mounts them into each container
// (mounts of type bind from guest paths), as runtimes do with resolv.conf and hosts.
void AgentService::configure_network(Session&, const Request& r, Responder resp) {
  guarded("ConfigureNetwork", resp, [&] {
    const auto& req = r.configure_network();
    if (req.interfaces_size() || req.routes_size())
      throw AgentError(v1::Error::CODE_UNIMPLEMENTED,
                       "network interfaces and routes are not configured by this agent yet (CNI for VM "
                       "pods comes later); send resolv_conf and hosts only");
    constexpr size_t kMaxFile = 64 * 1024;
    if (req.resolv_conf().size() > kMaxFile || req.hosts().size() > kMaxFile)
      invalid_argument("resolv_conf and hosts may be at most {} bytes each", kMaxFile);
    for (const auto* text : {&req.resolv_conf(), &req.hosts()})
      if (text->find('\0') != std::string::npos) invalid_argument("resolv_conf and hosts may not contain NUL");
    std::string dir = options_.state_dir + "/pod";
    sys::make_dirs(dir, 0755);
    if (!req.resolv_conf().empty()) sys::replace_file(dir + "/resolv.conf", req.resolv_conf());
    if (!req.hosts().empty()) sys::replace_file(dir + "/hosts", req.hosts());
    v1::Response response;
    response.mutable_configure_network();
    resp(response);
  });
}

void AgentService::mount_drive(Session&, const Request& r, Responder resp) {
  guarded("MountDrive", resp, [&] {
    const auto& req = r.mount_drive();
    if (req.fs_type().empty()) invalid_argument("mount_drive.fs_type is empty");
    if (!req.mount_point().empty() && !valid_guest_path(req.mount_point())) {
      invalid_argument("mount_drive.mount_point '{}' is not an absolute path", req.mount_point());
    }
    std::string options;
    for (const auto& o : req.options()) {
      if (o.find_first_of(",\0", 0, 2) != std::string::npos)
        invalid_argument("mount option '{}' contains ',' or NUL", o);
      options += (options.empty() ? "" : ",") + o;
    }
    auto drive = drives_->attach(req.serial(), req.fs_type(), req.read_only(), options,
                                 req.mount_point(), deadline_of(r));
    v1::Response response;
    response.mutable_mount_drive()->set_device_path(drive.device);
    response.mutable_mount_drive()->set_mount_point(drive.mount_point);
    resp(response);
  });
}

void AgentService::unmount_drive(Session&, const Request& r, Responder resp) {
  guarded("UnmountDrive", resp, [&] {
    drives_->detach(r.unmount_drive().serial());
    v1::Response response;
    response.mutable_unmount_drive();
    resp(response);
  });
}

void AgentService::shutdown(Session&, const Request& r, Responder resp) {
  guarded("Shutdown", resp, [&] {
    if (shutting_down_)
      throw AgentError(v1::Error::CODE_FAILED_PRECONDITION, "a shutdown is already in progress");
    begin_shutdown(r.shutdown().reboot(), std::chrono::milliseconds(r.shutdown().grace_period_ms()),
                   resp);
  });
}

bool AgentService::shutdown_on_request_from_vmm(std::chrono::milliseconds grace) {
  if (shutting_down_) return false;
  common::log::info(kLog, "the VMM asked for a shutdown (Ctrl-Alt-Del): stopping {} container(s), "
                    "then powering off", containers_.size());
  begin_shutdown(false, grace, std::nullopt);
  return true;
}

void AgentService::begin_shutdown(bool reboot, std::chrono::milliseconds grace,
                                  std::optional<Responder> resp) {
  shutting_down_ = true;
  // SIGTERM first; whatever is left after the grace period gets SIGKILL.
  bool any = false;
  for (auto& [id, c] : containers_) {
    if (c->init && c->init->running()) {
      c->init->signal(SIGTERM);
      any = true;
    }
  }
  if (!any) grace = std::chrono::milliseconds(0);
  shutdown_timer_ = std::make_unique<boost::asio::steady_timer>(io_, grace);
  shutdown_timer_->async_wait([this, reboot, resp](const boost::system::error_code&) {
    for (auto& [id, c] : containers_) container::kill_container(*c);
    // Give the reaper a moment to collect them before unmounting.
    shutdown_timer_ =
        std::make_unique<boost::asio::steady_timer>(io_, std::chrono::milliseconds(100));
    shutdown_timer_->async_wait([this, reboot, resp](const boost::system::error_code&) {
      finish_shutdown(reboot, resp);
    });
  });
}

void AgentService::release_everything() {
  reaper_.reap();
  for (auto& [id, c] : containers_) container::cleanup_container(*c);
  ::sync();
  drives_->detach_all();
}

void AgentService::finish_shutdown(bool reboot, std::optional<Responder> resp) {
  if (!resp) {
    // Nobody waits for an answer: end the VM even if a clean-up step failed.
    try {
      release_everything();
    } catch (const std::exception& e) {
      common::log::error(kLog, "shutdown: {}; powering off anyway", e.what());
    }
    if (options_.on_shutdown) options_.on_shutdown(reboot);
    return;
  }
  guarded("Shutdown", *resp, [&] {
    release_everything();
    v1::Response response;
    response.mutable_shutdown();
    (*resp)(response);
    // Let the response reach the host before the VM ends.
    shutdown_timer_ =
        std::make_unique<boost::asio::steady_timer>(io_, std::chrono::milliseconds(200));
    shutdown_timer_->async_wait([this, reboot](const boost::system::error_code&) {
      if (options_.on_shutdown) options_.on_shutdown(reboot);
    });
  });
}

}  // namespace frakti::agent::service
