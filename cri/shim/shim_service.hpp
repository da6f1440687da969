#pragma once
// The shim's gRPC face: frakti.shim.v1.Shim calls -> PodVm, ShimError -> gRPC status.

#include <functional>

#include "cri/shim/pod_vm.hpp"
#include "proto/shim/shim.grpc.pb.h"

namespace frakti::cri::shim {

class ShimService final : public sv1::Shim::Service {
 public:
  /// on_shutdown runs (on another thread) after a Shutdown call has been answered.
  ShimService(PodVm& vm, std::function<void()> on_shutdown) : vm_(vm), on_shutdown_(std::move(on_shutdown)) {}

  grpc::Status Status(grpc::ServerContext*, const sv1::StatusRequest*, sv1::StatusResponse*) override;
  grpc::Status CreateContainer(grpc::ServerContext*, const sv1::CreateContainerRequest*, sv1::Empty*) override;
  grpc::Status StartContainer(grpc::ServerContext*, const sv1::ContainerRef*, sv1::ContainerStatus*) override;
  grpc::Status SignalContainer(grpc::ServerContext*, const sv1::SignalRequest*, sv1::Empty*) override;
  grpc::Status WaitContainer(grpc::ServerContext*, const sv1::ContainerRef*, sv1::ContainerStatus*) override;
  grpc::Status RemoveContainer(grpc::ServerContext*, const sv1::ContainerRef*, sv1::Empty*) override;
  grpc::Status ExecSync(grpc::ServerContext*, const sv1::ExecSyncRequest*, sv1::ExecSyncResponse*) override;
  grpc::Status Stats(grpc::ServerContext*, const v1::ContainerStatsRequest*, v1::ContainerStatsResponse*) override;
  grpc::Status ReopenLog(grpc::ServerContext*, const sv1::ContainerRef*, sv1::Empty*) override;
  grpc::Status UpdateContainer(grpc::ServerContext*, const v1::UpdateContainerRequest*, sv1::Empty*) override;
  grpc::Status Shutdown(grpc::ServerContext*, const sv1::ShutdownRequest*, sv1::Empty*) override;

 private:
  PodVm& vm_;
  std::function<void()> on_shutdown_;
};

}  // namespace frakti::cri::shim
