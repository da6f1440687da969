#pragma once
// AgentService: the protocol edge of the agent. It registers one handler per request kind
// on the protocol Server, turns requests into calls of the domain code (agent/container,
// agent/process) and their results or exceptions into responses, and sends ProcessExited
// and OOM events. Handlers live in one file per area: container_handlers.cpp,
// process_handlers.cpp, vm_handlers.cpp.
//
// Threading: everything runs on the agent's single io_context thread. The agent must stay
// single-threaded: container creation clones it, and setns(CLONE_NEWNS) in children relies on
// an unshared fs context.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/container/cgroup.hpp"
#include "agent/container/container.hpp"
#include "agent/container/drives.hpp"
#include "agent/process/reaper.hpp"
#include "agent/protocol/server.hpp"
#include "common/fd.hpp"
#include "common/log.hpp"

namespace frakti::agent::service {

struct ServiceOptions {
  /// The agent is the guest's PID 1 (sets the clock, powers off); false in host test mode.
  bool pid1 = false;
  /// /run/frakti in the guest.
  std::string state_dir;
  /// Called after the Shutdown response went out: power off (or reboot) the VM; in host
  /// test mode, stop the agent.
  std::function<void(bool reboot)> on_shutdown;
};

class AgentService {
 public:
  /// cgroup_root = nullopt runs containers without cgroups (no limits, no stats).
  AgentService(boost::asio::io_context& io, protocol::Server& server,
               std::unique_ptr<container::Drives> drives,
               std::optional<container::CgroupRoot> cgroup_root, ServiceOptions options);
  ~AgentService();
  AgentService(const AgentService&) = delete;
  AgentService& operator=(const AgentService&) = delete;

  /// Registers every handler on the server.
  void install();
  /// Capabilities to announce in HelloReply.
  static std::vector<std::string> capabilities(bool has_cgroups);
  /// The VMM asked the guest to shut down (Ctrl-Alt-Del, which reaches PID 1 as SIGINT): like
  /// a Shutdown request without a caller to answer: SIGTERM to every container, SIGKILL after
  /// grace, unmount, sync, power off. False when a shutdown is already under way.
  bool shutdown_on_request_from_vmm(std::chrono::milliseconds grace);

 private:
  using Request = protocol::v1::Request;
  using Responder = protocol::Responder;
  using Session = protocol::Session;

  // Runs body, answering its exceptions as errors (AgentError keeps its code).
  void guarded(const char* what, const Responder& responder, const std::function<void()>& body);
  std::chrono::steady_clock::time_point deadline_of(const Request& request) const;
  container::Environment environment(std::chrono::steady_clock::time_point deadline) const;
  container::Container& find(const std::string& id);
  std::shared_ptr<process::Process> find_process(container::Container& c,
                                                 const std::string& exec_id);
  // Watches pid and routes its exit to on_exit.
  void watch(const std::string& container_id, const std::shared_ptr<process::Process>& p);
  void on_exit(const std::string& container_id, const std::shared_ptr<process::Process>& p,
               int status);
  void report_oom(container::Container& c);
  void finish_removal_if_done(const std::string& id);
  void ensure_pod_pid_namespace();

  // container_handlers.cpp
  void create_container(Session& s, const Request& r, Responder resp);
  void start_container(Session& s, const Request& r, Responder resp);
  void remove_container(Session& s, const Request& r, Responder resp);
  void update_container(Session& s, const Request& r, Responder resp);
  // file_handlers.cpp
  void put_files(Session& s, const Request& r, Responder resp);
  /// Where PutFiles keeps a container's copies of host paths.
  std::string host_files_dir(const std::string& container_id) const;
  void list_processes(Session& s, const Request& r, Responder resp);
  void container_stats(Session& s, const Request& r, Responder resp);
  // process_handlers.cpp
  void exec_process(Session& s, const Request& r, Responder resp);
  void signal_process(Session& s, const Request& r, Responder resp);
  void wait_process(Session& s, const Request& r, Responder resp);
  void resize_terminal(Session& s, const Request& r, Responder resp);
  void close_stdin(Session& s, const Request& r, Responder resp);
  // vm_handlers.cpp
  void ping(Session& s, const Request& r, Responder resp);
  void set_time(Session& s, const Request& r, Responder resp);
  void set_hostname(Session& s, const Request& r, Responder resp);
  void configure_network(Session& s, const Request& r, Responder resp);
  void mount_drive(Session& s, const Request& r, Responder resp);
  void unmount_drive(Session& s, const Request& r, Responder resp);
  void shutdown(Session& s, const Request& r, Responder resp);
  // resp is empty when the VMM asked for the shutdown (no caller to answer).
  void begin_shutdown(bool reboot, std::chrono::milliseconds grace, std::optional<Responder> resp);
  void finish_shutdown(bool reboot, std::optional<Responder> resp);
  // Reaps, cleans every container up, syncs and detaches the drives.
  void release_everything();

  boost::asio::io_context& io_;
  protocol::Server& server_;
  std::unique_ptr<container::Drives> drives_;
  std::optional<container::CgroupRoot> cgroup_root_;
  ServiceOptions options_;
  process::Reaper reaper_;
  common::Fd agent_pid_ns_;
  // The pod-wide PID namespace (created on first use): its init holds it open.
  common::Fd pod_pid_fd_;
  pid_t pod_pid_holder_ = -1;
  std::map<std::string, std::unique_ptr<container::Container>> containers_;
  std::map<std::string, std::vector<Responder>> pending_removals_;
  std::unique_ptr<boost::asio::steady_timer> shutdown_timer_;
  bool shutting_down_ = false;
  common::log::RateLimiter error_log_{20, std::chrono::seconds(10)};
};

}  // namespace frakti::agent::service
