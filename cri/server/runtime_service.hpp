#pragma once
// The CRI RuntimeService over gRPC: checks and converts requests, calls the Runtime, and turns
// every failure into a status with the code CRI clients expect.

#include <atomic>

#include "cri/server/runtime.hpp"
#include "proto/cri/api.grpc.pb.h"

namespace frakti::cri {

class RuntimeGrpcService final : public rt::RuntimeService::Service {
 public:
  RuntimeGrpcService(Runtime& runtime, const Options& opts) : runtime_(runtime), opts_(opts) {}

  using Ctx = grpc::ServerContext;
  grpc::Status Version(Ctx*, const rt::VersionRequest*, rt::VersionResponse*) override;
  grpc::Status RunPodSandbox(Ctx*, const rt::RunPodSandboxRequest*, rt::RunPodSandboxResponse*) override;
  grpc::Status StopPodSandbox(Ctx*, const rt::StopPodSandboxRequest*, rt::StopPodSandboxResponse*) override;
  grpc::Status RemovePodSandbox(Ctx*, const rt::RemovePodSandboxRequest*, rt::RemovePodSandboxResponse*) override;
  grpc::Status PodSandboxStatus(Ctx*, const rt::PodSandboxStatusRequest*, rt::PodSandboxStatusResponse*) override;
  grpc::Status ListPodSandbox(Ctx*, const rt::ListPodSandboxRequest*, rt::ListPodSandboxResponse*) override;
  grpc::Status CreateContainer(Ctx*, const rt::CreateContainerRequest*, rt::CreateContainerResponse*) override;
  grpc::Status StartContainer(Ctx*, const rt::StartContainerRequest*, rt::StartContainerResponse*) override;
  grpc::Status StopContainer(Ctx*, const rt::StopContainerRequest*, rt::StopContainerResponse*) override;
  grpc::Status RemoveContainer(Ctx*, const rt::RemoveContainerRequest*, rt::RemoveContainerResponse*) override;
  grpc::Status ListContainers(Ctx*, const rt::ListContainersRequest*, rt::ListContainersResponse*) override;
  grpc::Status ContainerStatus(Ctx*, const rt::ContainerStatusRequest*, rt::ContainerStatusResponse*) override;
  grpc::Status UpdateContainerResources(Ctx*, const rt::UpdateContainerResourcesRequest*,
                                        rt::UpdateContainerResourcesResponse*) override;
  grpc::Status ReopenContainerLog(Ctx*, const rt::ReopenContainerLogRequest*, rt::ReopenContainerLogResponse*) override;
  grpc::Status ExecSync(Ctx*, const rt::ExecSyncRequest*, rt::ExecSyncResponse*) override;
  grpc::Status Exec(Ctx*, const rt::ExecRequest*, rt::ExecResponse*) override;
  grpc::Status Attach(Ctx*, const rt::AttachRequest*, rt::AttachResponse*) override;
  grpc::Status PortForward(Ctx*, const rt::PortForwardRequest*, rt::PortForwardResponse*) override;
  grpc::Status ContainerStats(Ctx*, const rt::ContainerStatsRequest*, rt::ContainerStatsResponse*) override;
  grpc::Status ListContainerStats(Ctx*, const rt::ListContainerStatsRequest*, rt::ListContainerStatsResponse*) override;
  grpc::Status PodSandboxStats(Ctx*, const rt::PodSandboxStatsRequest*, rt::PodSandboxStatsResponse*) override;
  grpc::Status ListPodSandboxStats(Ctx*, const rt::ListPodSandboxStatsRequest*, rt::ListPodSandboxStatsResponse*) override;
  grpc::Status UpdateRuntimeConfig(Ctx*, const rt::UpdateRuntimeConfigRequest*, rt::UpdateRuntimeConfigResponse*) override;
  grpc::Status Status(Ctx*, const rt::StatusRequest*, rt::StatusResponse*) override;
  grpc::Status RuntimeConfig(Ctx*, const rt::RuntimeConfigRequest*, rt::RuntimeConfigResponse*) override;

 private:
  Runtime& runtime_;
  Options opts_;
  std::mutex config_mu_;
  std::string pod_cidr_;
};

}  // namespace frakti::cri
