#pragma once
// Backend: how one kind of pod is run. The Runtime keeps the records, names and locks and
// decides which backend a pod goes to (DESIGN decision 2); a backend only runs things:
//   VmBackend    a frakti-shim + frakti-vmm per pod, containers through the guest agent
//   (runc pods: the next backend, for privileged and host-namespace pods)
// Calls for one pod or container never overlap (the Runtime holds its lock); calls for
// different pods run in parallel.

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "image/image_store.hpp"
#include "proto/cri/api.pb.h"
#include "proto/state/records.pb.h"

namespace frakti::cri {

namespace rt = ::runtime::v1;
namespace st = ::frakti::state::v1;

struct ExecResult {
  std::string out, err;
  int exit_code = 0;
};

/// What CreateContainer found for the container's image.
struct ImageUse {
  image::ImageRecord image;
  std::filesystem::path fs_image;
};

class Backend {
 public:
  virtual ~Backend() = default;

  /// Starts the pod; fills the record's runtime fields. Leaves nothing behind on failure.
  virtual void run_pod(st::SandboxRecord& pod) = 0;
  /// Stops every container and the pod itself; idempotent.
  virtual void stop_pod(st::SandboxRecord& pod) = 0;
  /// Removes what the pod left on the host (after stop_pod).
  virtual void remove_pod(const st::SandboxRecord& pod) = 0;
  /// The pod's VM or infra process still runs.
  virtual bool pod_alive(const st::SandboxRecord& pod) = 0;

  virtual void create_container(const st::SandboxRecord& pod, st::ContainerRecord& c, const ImageUse& image) = 0;
  virtual void start_container(const st::SandboxRecord& pod, st::ContainerRecord& c) = 0;
  /// Stop signal, up to timeout, then SIGKILL to every process of the container.
  virtual void stop_container(const st::SandboxRecord& pod, st::ContainerRecord& c, std::chrono::seconds timeout,
                              int stop_signal) = 0;
  virtual void remove_container(const st::SandboxRecord& pod, const st::ContainerRecord& c) = 0;
  /// Brings c's state, pid and exit fields up to date; true when anything changed.
  virtual bool refresh(const st::SandboxRecord& pod, st::ContainerRecord& c) = 0;
  virtual ExecResult exec_sync(const st::SandboxRecord& pod, const st::ContainerRecord& c,
                               const std::vector<std::string>& cmd, std::chrono::seconds timeout) = 0;
  virtual rt::ContainerStats stats(const st::SandboxRecord& pod, const st::ContainerRecord& c) = 0;
  virtual void reopen_log(const st::SandboxRecord& pod, const st::ContainerRecord& c) = 0;
  /// Applies new cgroup limits to a created or running container (c.resources() still holds
  /// the old ones). Fields left 0 are not changed, as with `runc update`.
  virtual void update_resources(const st::SandboxRecord& pod, const st::ContainerRecord& c,
                                const rt::LinuxContainerResources& resources) = 0;
  /// Start-up only, after the records are loaded: stops and removes what this backend finds on
  /// the host that no record names (a daemon killed mid-RunPodSandbox or mid-CreateContainer
  /// leaves such things). Never touches anything of the given ids; logs one line per orphan;
  /// logs failures instead of throwing, so a sweep never stops the daemon. Idempotent.
  virtual void sweep(const std::set<std::string>& pod_ids, const std::set<std::string>& container_ids) = 0;
};

}  // namespace frakti::cri
