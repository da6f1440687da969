#pragma once
// Runtime: frakti's pods and containers. Keeps the records (in memory and on disk), the name
// reservations and the locks, routes each pod to a backend (DESIGN decision 2) and turns CRI
// requests into backend calls. The gRPC layer (runtime_service.cpp) only converts types.
//
// Locking: mu_ guards the maps and names and is held only for lookups and record commits.
// Each pod and container has its own operation lock, held for a whole call into its backend,
// so a slow or hung VM blocks only calls on that pod.

#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "cri/server/backend.hpp"
#include "cri/server/options.hpp"
#include "cri/server/store.hpp"
#include "image/image_service.hpp"

namespace frakti::cri {

class Runtime {
 public:
  Runtime(const Options& opts, image::ImageService& images);

  /// Loads the records and reconciles them with what still runs (daemon restart).
  void recover();

  std::string run_pod(const rt::PodSandboxConfig& config, const std::string& handler);
  void stop_pod(const std::string& id);
  void remove_pod(const std::string& id);
  rt::PodSandboxStatusResponse pod_status(const std::string& id, bool verbose);
  std::vector<rt::PodSandbox> list_pods(const rt::PodSandboxFilter& filter);

  std::string create_container(const std::string& pod_id, const rt::ContainerConfig& config,
                               const rt::PodSandboxConfig& pod_config);
  void start_container(const std::string& id);
  void stop_container(const std::string& id, int64_t timeout_s);
  void remove_container(const std::string& id);
  rt::ContainerStatusResponse container_status(const std::string& id, bool verbose);
  std::vector<rt::Container> list_containers(const rt::ContainerFilter& filter);
  rt::ExecSyncResponse exec_sync(const std::string& id, const std::vector<std::string>& cmd, int64_t timeout_s);
  rt::ContainerStats container_stats(const std::string& id);
  std::vector<rt::ContainerStats> list_container_stats(const rt::ContainerStatsFilter& filter);
  rt::PodSandboxStats pod_stats(const std::string& id);
  void reopen_log(const std::string& id);
  void update_container_resources(const std::string& id, const rt::LinuxContainerResources& resources);

 private:
  struct Pod {
    std::mutex op;
    st::SandboxRecord rec;
    Backend* backend = nullptr;
  };
  struct Container {
    std::mutex op;
    st::ContainerRecord rec;
  };

  /// A container's record with its pod's, copied under mu_ (backend calls run on copies).
  struct View {
    st::ContainerRecord rec;
    st::SandboxRecord pod;
    Backend* backend;
  };
  View view(Container& c);
  std::shared_ptr<Pod> pod(const std::string& id);  // by full or unique prefix; NotFound
  std::shared_ptr<Container> container(const std::string& id);
  Backend* route(const rt::PodSandboxConfig& config, const std::string& handler, st::SandboxRecord::Backend& kind);
  void commit(Pod& p, const st::SandboxRecord& rec);
  void commit(Container& c, const st::ContainerRecord& rec);
  /// Refreshes a container's state from its backend when nobody is operating on it.
  void refresh(Container& c);
  std::string new_id();

  Options opts_;
  image::ImageService& images_;
  RecordStore store_;
  std::unique_ptr<Backend> vm_;
  std::unique_ptr<Backend> runc_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Pod>> pods_;
  std::map<std::string, std::shared_ptr<Container>> containers_;
  std::map<std::string, std::string> names_;  // reserved name -> id (pods and containers)
};

}  // namespace frakti::cri
