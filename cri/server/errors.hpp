#pragma once
// CriError: a failure with the gRPC code CRI clients expect (NotFound for unknown IDs,
// InvalidArgument for bad requests, AlreadyExists for name conflicts, ...).

#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <grpcpp/support/status.h>

namespace frakti::cri {

class CriError : public std::runtime_error {
 public:
  CriError(grpc::StatusCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  grpc::StatusCode code() const { return code_; }

 private:
  grpc::StatusCode code_;
};

template <typename... Args>
[[noreturn]] void fail(grpc::StatusCode code, fmt::format_string<Args...> f, Args&&... args) {
  throw CriError(code, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace frakti::cri
