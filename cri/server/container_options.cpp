#include "cri/server/container_options.hpp"

#include <signal.h>
#include <string.h>

#include "common/log.hpp"
#include "cri/server/errors.hpp"

namespace frakti::cri {

sandbox::ContainerOptions container_options(const st::SandboxRecord& pod, const st::ContainerRecord& c) {
  const auto& cfg = c.config();
  sandbox::ContainerOptions o;
  o.id = c.id();
  if (cfg.command_size() > 0) o.entrypoint = std::vector<std::string>(cfg.command().begin(), cfg.command().end());
  o.cmd.assign(cfg.args().begin(), cfg.args().end());
  for (const auto& kv : cfg.envs()) {
    if (kv.key().empty() || kv.key().find('=') != std::string::npos)
      fail(grpc::StatusCode::INVALID_ARGUMENT, "env name '{}' is not valid: it must be non-empty and hold no '='", kv.key());
    o.env.push_back(kv.key() + "=" + kv.value());
  }
  o.working_dir = cfg.working_dir();
  o.hostname = pod.config().hostname();
  o.terminal = cfg.tty();
  const auto& sc = cfg.linux().security_context();
  if (sc.run_as_username().size()) {
    o.user = sc.run_as_username();
  } else if (sc.has_run_as_user()) {
    o.user = std::to_string(sc.run_as_user().value());
    if (sc.has_run_as_group()) o.user += ":" + std::to_string(sc.run_as_group().value());
  } else if (sc.has_run_as_group()) {
    fail(grpc::StatusCode::INVALID_ARGUMENT, "run_as_group needs run_as_user or run_as_username (CRI rule)");
  }
  o.read_only_rootfs = sc.readonly_rootfs();
  o.privileged = sc.privileged();
  o.cap_add.assign(sc.capabilities().add_capabilities().begin(), sc.capabilities().add_capabilities().end());
  o.cap_drop.assign(sc.capabilities().drop_capabilities().begin(), sc.capabilities().drop_capabilities().end());
  const auto& r = cfg.linux().resources();
  if (r.memory_limit_in_bytes() < 0 || r.cpu_quota() < -1 || r.cpu_period() < 0)
    fail(grpc::StatusCode::INVALID_ARGUMENT, "negative resource limits (memory {}, cpu quota {}, period {})",
         r.memory_limit_in_bytes(), r.cpu_quota(), r.cpu_period());
  o.memory_limit_bytes = r.memory_limit_in_bytes();
  if (r.cpu_quota() > 0) o.cpus = static_cast<double>(r.cpu_quota()) / static_cast<double>(r.cpu_period() ? r.cpu_period() : 100000);
  return o;
}

int stop_signal_of(const image::ImageConfig& config) {
  std::string s = config.stop_signal;
  if (s.empty()) return SIGTERM;
  if (std::all_of(s.begin(), s.end(), ::isdigit)) return std::stoi(s.substr(0, 3));
  if (s.rfind("SIG", 0) == 0) s = s.substr(3);
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* abbrev = sigabbrev_np(sig);
    if (abbrev && s == abbrev) return sig;
  }
  return SIGTERM;
}

}  // namespace frakti::cri
