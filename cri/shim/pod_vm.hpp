#pragma once
// PodVm: one pod's micro-VM as the shim holds it — the frakti-vmm child, its control socket,
// the agent connection, and the table of the pod's containers with their logs.
//
// Threading: the agent connection lives on one io_context thread (the loop). The public
// calls come from gRPC's threads; they hand agent work to the loop and wait for it with a
// deadline, and read/write the container table under a mutex. Nothing blocks the loop.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "proto/shim/shim.pb.h"
#include "sandbox/agent_client.hpp"
#include "sandbox/vm_process.hpp"
#include "vmm/control/control_client.hpp"

namespace frakti::cri::shim {

namespace v1 = agent::v1;
namespace sv1 = frakti::shim::v1;

/// A failure with the gRPC code it should travel as (see shim_service.cpp).
class ShimError : public std::runtime_error {
 public:
  enum class Kind { invalid, not_found, exists, precondition, unavailable, deadline, internal };
  ShimError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

struct PodVmOptions {
  std::string pod_id;
  std::filesystem::path dir;  ///< runtime dir: sockets, console.log, vmm.log
  unsigned cpus = 1;
  unsigned memory_mib = 256;
  unsigned drive_slots = 8;  ///< reserved virtio-blk slots for container images
  unsigned device_slots = 4;  ///< read-write virtio-blk slots for host block devices (CRI Devices)
  std::string hostname;
  std::string resolv_conf;  ///< content for the guest's /etc/resolv.conf; empty = none
  std::string hosts;
  std::chrono::milliseconds boot_timeout{60000};
  std::string vmm_log_level;
};

class PodVm {
 public:
  explicit PodVm(PodVmOptions options);
  ~PodVm();

  /// Starts the VM and waits for the agent; throws ShimError with the console's tail.
  void boot();

  sv1::StatusResponse status();
  void create_container(const sv1::CreateContainerRequest& req);
  sv1::ContainerStatus start_container(const std::string& id);
  void signal(const std::string& id, int sig, bool all);
  /// Waits until the container exits or limit passes; returns its status either way.
  sv1::ContainerStatus wait(const std::string& id, std::chrono::milliseconds limit);
  void remove_container(const std::string& id);
  sv1::ExecSyncResponse exec_sync(const sv1::ExecSyncRequest& req, std::chrono::milliseconds limit);
  v1::ContainerStatsResponse stats(const v1::ContainerStatsRequest& req);
  /// New cgroup limits for a container, applied by the agent.
  void update(const v1::UpdateContainerRequest& req);
  void reopen_log(const std::string& id);
  /// Powers the guest off (grace for the agent to kill processes), then stops the VMM.
  void shutdown(std::chrono::milliseconds grace);
  /// The VM stopped by itself (or was shut down).
  bool vm_stopped();

 private:
  /// Sends copies of req's host mounts to the agent and adds their bind mounts to create.
  void copy_host_mounts(const sv1::CreateContainerRequest& req, v1::CreateContainerRequest& create);
  struct Container;
  struct ExecRun;

  /// Runs an agent request on the loop and waits for its answer (from a non-loop thread).
  v1::Response call(const v1::Request& request, std::chrono::milliseconds timeout, const std::string& what);
  /// Runs fn on the loop and waits for it to finish.
  void on_loop(const std::function<void()>& fn);
  void handle_event(const v1::Event& event);
  void handle_close(const std::string& reason);
  std::string attach_image(const std::string& image_id, const std::string& path, const std::string& fs_type);
  void release_image(const std::string& image_id);
  /// Attaches req's host devices to free device slots and adds their blockdev mounts to
  /// create; returns the slots taken (all released again if one fails). pod_devices.cpp.
  std::vector<uint32_t> attach_devices(const sv1::CreateContainerRequest& req, v1::CreateContainerRequest& create);
  void release_devices(const std::vector<uint32_t>& slots);
  Container& find(const std::string& id);  // mu_ held
  [[noreturn]] void fail_boot(const std::string& why);

  PodVmOptions opts_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread loop_;
  std::optional<sandbox::VmProcess> vm_;
  std::unique_ptr<sandbox::AgentClient> agent_;
  std::mutex control_mu_;
  std::unique_ptr<vmm::control::ControlClient> control_;

  std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, std::unique_ptr<Container>> containers_;
  struct Slot {
    std::string image_id;
    std::string serial;
    int users = 0;
  };
  std::vector<Slot> slots_;
  // Owner (container id) of each device slot, "" when free; VMM slot = drive_slots + index.
  std::vector<std::string> device_slots_;
  bool vm_running_ = false;
  std::string vm_exit_;
  int64_t ready_at_ns_ = 0;
  uint64_t next_exec_ = 1;
};

}  // namespace frakti::cri::shim
