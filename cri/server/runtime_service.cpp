#include "cri/server/runtime_service.hpp"

#include <fmt/format.h>

#include "common/log.hpp"
#include "cri/image/status.hpp"
#include "cri/server/errors.hpp"

namespace frakti::cri {

using grpc::Status;
using grpc::StatusCode;

namespace {

constexpr const char* kVersion = "0.1.0";

// Every call goes through here: CriError keeps its code, the rest is mapped by to_status.
template <typename F>
Status guarded(const char* call, F&& f) {
  try {
    f();
    return Status::OK;
  } catch (const CriError& e) {
    common::log::info("cri", "{}: {}", call, e.what());
    return {e.code(), e.what()};
  } catch (const std::exception& e) {
    common::log::warn("cri", "{}: {}", call, e.what());
    return to_status(e);
  }
}

Status not_yet(const char* what) {
  return {StatusCode::UNIMPLEMENTED,
          fmt::format("{} needs frakti's streaming server, which is not built yet; use ExecSync (crictl exec without -it)", what)};
}

}  // namespace

Status RuntimeGrpcService::Version(Ctx*, const rt::VersionRequest*, rt::VersionResponse* out) {
  out->set_version("0.1.0");
  out->set_runtime_name("frakti");
  out->set_runtime_version(kVersion);
  out->set_runtime_api_version("v1");
  return Status::OK;
}

Status RuntimeGrpcService::RunPodSandbox(Ctx*, const rt::RunPodSandboxRequest* req, rt::RunPodSandboxResponse* out) {
  return guarded("RunPodSandbox", [&] {
    if (!req->has_config()) fail(StatusCode::INVALID_ARGUMENT, "RunPodSandbox: config is missing");
    out->set_pod_sandbox_id(runtime_.run_pod(req->config(), req->runtime_handler()));
  });
}

Status RuntimeGrpcService::StopPodSandbox(Ctx*, const rt::StopPodSandboxRequest* req, rt::StopPodSandboxResponse*) {
  return guarded("StopPodSandbox", [&] {
    try {
      runtime_.stop_pod(req->pod_sandbox_id());
    } catch (const CriError& e) {
      // kubelet stops pods it only half knows: an unknown ID is already stopped.
      if (e.code() != StatusCode::NOT_FOUND) throw;
    }
  });
}

Status RuntimeGrpcService::RemovePodSandbox(Ctx*, const rt::RemovePodSandboxRequest* req, rt::RemovePodSandboxResponse*) {
  return guarded("RemovePodSandbox", [&] { runtime_.remove_pod(req->pod_sandbox_id()); });
}

Status RuntimeGrpcService::PodSandboxStatus(Ctx*, const rt::PodSandboxStatusRequest* req, rt::PodSandboxStatusResponse* out) {
  return guarded("PodSandboxStatus", [&] { *out = runtime_.pod_status(req->pod_sandbox_id(), req->verbose()); });
}

Status RuntimeGrpcService::ListPodSandbox(Ctx*, const rt::ListPodSandboxRequest* req, rt::ListPodSandboxResponse* out) {
  return guarded("ListPodSandbox", [&] {
    for (auto& p : runtime_.list_pods(req->filter())) *out->add_items() = std::move(p);
  });
}

Status RuntimeGrpcService::CreateContainer(Ctx*, const rt::CreateContainerRequest* req, rt::CreateContainerResponse* out) {
  return guarded("CreateContainer", [&] {
    if (!req->has_config()) fail(StatusCode::INVALID_ARGUMENT, "CreateContainer: config is missing");
    out->set_container_id(runtime_.create_container(req->pod_sandbox_id(), req->config(), req->sandbox_config()));
  });
}

Status RuntimeGrpcService::StartContainer(Ctx*, const rt::StartContainerRequest* req, rt::StartContainerResponse*) {
  return guarded("StartContainer", [&] { runtime_.start_container(req->container_id()); });
}

Status RuntimeGrpcService::StopContainer(Ctx*, const rt::StopContainerRequest* req, rt::StopContainerResponse*) {
  return guarded("StopContainer", [&] { runtime_.stop_container(req->container_id(), req->timeout()); });
}

Status RuntimeGrpcService::RemoveContainer(Ctx*, const rt::RemoveContainerRequest* req, rt::RemoveContainerResponse*) {
  return guarded("RemoveContainer", [&] { runtime_.remove_container(req->container_id()); });
}

Status RuntimeGrpcService::ListContainers(Ctx*, const rt::ListContainersRequest* req, rt::ListContainersResponse* out) {
  return guarded("ListContainers", [&] {
    for (auto& c : runtime_.list_containers(req->filter())) *out->add_containers() = std::move(c);
  });
}

Status RuntimeGrpcService::ContainerStatus(Ctx*, const rt::ContainerStatusRequest* req, rt::ContainerStatusResponse* out) {
  return guarded("ContainerStatus", [&] { *out = runtime_.container_status(req->container_id(), req->verbose()); });
}

Status RuntimeGrpcService::UpdateContainerResources(Ctx*, const rt::UpdateContainerResourcesRequest* req,
                                                    rt::UpdateContainerResourcesResponse*) {
  return guarded("UpdateContainerResources", [&] {
    if (!req->has_linux())
      fail(StatusCode::INVALID_ARGUMENT, "UpdateContainerResources needs linux resources (windows ones do not apply)");
    runtime_.update_container_resources(req->container_id(), req->linux());
  });
}

Status RuntimeGrpcService::ReopenContainerLog(Ctx*, const rt::ReopenContainerLogRequest* req, rt::ReopenContainerLogResponse*) {
  return guarded("ReopenContainerLog", [&] { runtime_.reopen_log(req->container_id()); });
}

Status RuntimeGrpcService::ExecSync(Ctx*, const rt::ExecSyncRequest* req, rt::ExecSyncResponse* out) {
  return guarded("ExecSync", [&] {
    *out = runtime_.exec_sync(req->container_id(), {req->cmd().begin(), req->cmd().end()}, req->timeout());
  });
}

Status RuntimeGrpcService::Exec(Ctx*, const rt::ExecRequest*, rt::ExecResponse*) { return not_yet("Exec"); }
Status RuntimeGrpcService::Attach(Ctx*, const rt::AttachRequest*, rt::AttachResponse*) { return not_yet("Attach"); }
Status RuntimeGrpcService::PortForward(Ctx*, const rt::PortForwardRequest*, rt::PortForwardResponse*) {
  return not_yet("PortForward");
}

Status RuntimeGrpcService::ContainerStats(Ctx*, const rt::ContainerStatsRequest* req, rt::ContainerStatsResponse* out) {
  return guarded("ContainerStats", [&] { *out->mutable_stats() = runtime_.container_stats(req->container_id()); });
}

Status RuntimeGrpcService::ListContainerStats(Ctx*, const rt::ListContainerStatsRequest* req, rt::ListContainerStatsResponse* out) {
  return guarded("ListContainerStats", [&] {
    for (auto& s : runtime_.list_container_stats(req->filter())) *out->add_stats() = std::move(s);
  });
}

Status RuntimeGrpcService::PodSandboxStats(Ctx*, const rt::PodSandboxStatsRequest* req, rt::PodSandboxStatsResponse* out) {
  return guarded("PodSandboxStats", [&] { *out->mutable_stats() = runtime_.pod_stats(req->pod_sandbox_id()); });
}

Status RuntimeGrpcService::ListPodSandboxStats(Ctx*, const rt::ListPodSandboxStatsRequest* req, rt::ListPodSandboxStatsResponse* out) {
  return guarded("ListPodSandboxStats", [&] {
    rt::PodSandboxFilter f;
    f.set_id(req->filter().id());
    *f.mutable_label_selector() = req->filter().label_selector();
    for (auto& p : runtime_.list_pods(f))
      if (p.state() == rt::SANDBOX_READY) *out->add_stats() = runtime_.pod_stats(p.id());
  });
}

Status RuntimeGrpcService::UpdateRuntimeConfig(Ctx*, const rt::UpdateRuntimeConfigRequest* req, rt::UpdateRuntimeConfigResponse*) {
  std::lock_guard lock(config_mu_);
  pod_cidr_ = req->runtime_config().network_config().pod_cidr();
  common::log::info("cri", "pod CIDR is now '{}'", pod_cidr_);
  return Status::OK;
}

Status RuntimeGrpcService::Status(Ctx*, const rt::StatusRequest* req, rt::StatusResponse* out) {
  auto* runtime_ready = out->mutable_status()->add_conditions();
  runtime_ready->set_type("RuntimeReady");
  runtime_ready->set_status(true);
  auto* network_ready = out->mutable_status()->add_conditions();
  network_ready->set_type("NetworkReady");
  network_ready->set_status(false);
  network_ready->set_reason("NetworkPluginNotReady");
  network_ready->set_message("frakti does not set up CNI pod networks yet: VM pods get loopback only");
  out->add_runtime_handlers()->set_name("");
  if (req->verbose()) {
    std::lock_guard lock(config_mu_);
    (*out->mutable_info())["config"] = fmt::format(
        R"({{"rootDirectory":"{}","stateDirectory":"{}","cpu":{},"memoryMiB":{},"cgroupDriver":"{}","podCIDR":"{}"}})",
        opts_.root_directory.string(), opts_.state_directory.string(), opts_.cpu, opts_.memory_mib, opts_.cgroup_driver,
        pod_cidr_);
  }
  return Status::OK;
}

Status RuntimeGrpcService::RuntimeConfig(Ctx*, const rt::RuntimeConfigRequest*, rt::RuntimeConfigResponse* out) {
  out->mutable_linux()->set_cgroup_driver(opts_.cgroup_driver == "systemd" ? rt::SYSTEMD : rt::CGROUPFS);
  return Status::OK;
}

}  // namespace frakti::cri
