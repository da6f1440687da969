#pragma once
// VmBackend: VM pods. Each pod is one frakti-shim process (cri/shim) that owns the pod's
// frakti-vmm and the agent connection; this class starts shims and talks to them over their
// sockets, with a deadline on every call so one hung VM stalls only its own pod.

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>

#include "cri/server/backend.hpp"
#include "cri/server/options.hpp"
#include "proto/shim/shim.grpc.pb.h"

namespace frakti::cri {

class VmBackend : public Backend {
 public:
  explicit VmBackend(const Options& opts);

  void run_pod(st::SandboxRecord& pod) override;
  void stop_pod(st::SandboxRecord& pod) override;
  void remove_pod(const st::SandboxRecord& pod) override;
  bool pod_alive(const st::SandboxRecord& pod) override;
  void create_container(const st::SandboxRecord& pod, st::ContainerRecord& c, const ImageUse& image) override;
  void start_container(const st::SandboxRecord& pod, st::ContainerRecord& c) override;
  void stop_container(const st::SandboxRecord& pod, st::ContainerRecord& c, std::chrono::seconds timeout,
                      int stop_signal) override;
  void remove_container(const st::SandboxRecord& pod, const st::ContainerRecord& c) override;
  bool refresh(const st::SandboxRecord& pod, st::ContainerRecord& c) override;
  ExecResult exec_sync(const st::SandboxRecord& pod, const st::ContainerRecord& c, const std::vector<std::string>& cmd,
                       std::chrono::seconds timeout) override;
  rt::ContainerStats stats(const st::SandboxRecord& pod, const st::ContainerRecord& c) override;
  void reopen_log(const st::SandboxRecord& pod, const st::ContainerRecord& c) override;
  void update_resources(const st::SandboxRecord& pod, const st::ContainerRecord& c,
                        const rt::LinuxContainerResources& resources) override;
  void sweep(const std::set<std::string>& pod_ids, const std::set<std::string>& container_ids) override;

 private:
  // Shared: a stub in use by one call survives forget() on another thread.
  std::shared_ptr<frakti::shim::v1::Shim::Stub> shim(const st::SandboxRecord& pod);
  void forget(const std::string& pod_id);
  std::filesystem::path runtime_dir(const std::string& pod_id) const;

  Options opts_;
  std::filesystem::path shim_binary_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<frakti::shim::v1::Shim::Stub>> stubs_;
};

}  // namespace frakti::cri
