#include "cri/shim/shim_service.hpp"

#include <thread>

namespace frakti::cri::shim {

using namespace std::chrono_literals;

namespace {

grpc::StatusCode code_of(ShimError::Kind k) {
  switch (k) {
    case ShimError::Kind::invalid: return grpc::StatusCode::INVALID_ARGUMENT;
    case ShimError::Kind::not_found: return grpc::StatusCode::NOT_FOUND;
    case ShimError::Kind::exists: return grpc::StatusCode::ALREADY_EXISTS;
    case ShimError::Kind::precondition: return grpc::StatusCode::FAILED_PRECONDITION;
    case ShimError::Kind::unavailable: return grpc::StatusCode::UNAVAILABLE;
    case ShimError::Kind::deadline: return grpc::StatusCode::DEADLINE_EXCEEDED;
    case ShimError::Kind::internal: return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::UNKNOWN;
}

template <typename F>
grpc::Status guarded(F&& f) {
  try {
    f();
    return grpc::Status::OK;
  } catch (const ShimError& e) {
    return {code_of(e.kind()), e.what()};
  } catch (const std::exception& e) {
    return {grpc::StatusCode::INTERNAL, e.what()};
  }
}

// What is left of the caller's deadline, keeping a margin to answer in.
std::chrono::milliseconds remaining(grpc::ServerContext* ctx, std::chrono::milliseconds cap) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(ctx->deadline() - std::chrono::system_clock::now());
  left -= 500ms;
  if (left < 0ms) left = 0ms;
  return std::min(left, cap);
}

}  // namespace

grpc::Status ShimService::Status(grpc::ServerContext*, const sv1::StatusRequest*, sv1::StatusResponse* out) {
  return guarded([&] { *out = vm_.status(); });
}

grpc::Status ShimService::CreateContainer(grpc::ServerContext*, const sv1::CreateContainerRequest* req, sv1::Empty*) {
  return guarded([&] { vm_.create_container(*req); });
}

grpc::Status ShimService::StartContainer(grpc::ServerContext*, const sv1::ContainerRef* req, sv1::ContainerStatus* out) {
  return guarded([&] { *out = vm_.start_container(req->container_id()); });
}

grpc::Status ShimService::SignalContainer(grpc::ServerContext*, const sv1::SignalRequest* req, sv1::Empty*) {
  return guarded([&] { vm_.signal(req->container_id(), req->signal(), req->all()); });
}

grpc::Status ShimService::WaitContainer(grpc::ServerContext* ctx, const sv1::ContainerRef* req, sv1::ContainerStatus* out) {
  return guarded([&] { *out = vm_.wait(req->container_id(), remaining(ctx, std::chrono::hours(1))); });
}

grpc::Status ShimService::RemoveContainer(grpc::ServerContext*, const sv1::ContainerRef* req, sv1::Empty*) {
  return guarded([&] { vm_.remove_container(req->container_id()); });
}

grpc::Status ShimService::ExecSync(grpc::ServerContext* ctx, const sv1::ExecSyncRequest* req, sv1::ExecSyncResponse* out) {
  return guarded([&] {
    auto limit = remaining(ctx, std::chrono::hours(24));
    if (req->timeout_ms() > 0) limit = std::min(limit, std::chrono::milliseconds(req->timeout_ms()));
    *out = vm_.exec_sync(*req, limit);
  });
}

grpc::Status ShimService::Stats(grpc::ServerContext*, const v1::ContainerStatsRequest* req, v1::ContainerStatsResponse* out) {
  return guarded([&] { *out = vm_.stats(*req); });
}

grpc::Status ShimService::UpdateContainer(grpc::ServerContext*, const v1::UpdateContainerRequest* req, sv1::Empty*) {
  return guarded([&] { vm_.update(*req); });
}

grpc::Status ShimService::ReopenLog(grpc::ServerContext*, const sv1::ContainerRef* req, sv1::Empty*) {
  return guarded([&] { vm_.reopen_log(req->container_id()); });
}

grpc::Status ShimService::Shutdown(grpc::ServerContext*, const sv1::ShutdownRequest* req, sv1::Empty*) {
  auto st = guarded([&] { vm_.shutdown(std::chrono::milliseconds(req->grace_period_ms())); });
  if (st.ok() && on_shutdown_) std::thread(on_shutdown_).detach();
  return st;
}

}  // namespace frakti::cri::shim
