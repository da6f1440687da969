#pragma once
// The one place where an exception from the image library (or the host) becomes a gRPC status
// for a CRI client. Kept free of ImageGrpcService so the RuntimeService can share it.

#include <grpcpp/support/status.h>

#include <exception>

namespace frakti::cri {

/// Maps an exception to a status code and a message that says what failed and, where the
/// user can act, what to do. image::ImageError kinds map by meaning (not_found -> NOT_FOUND,
/// network -> UNAVAILABLE, auth -> UNAUTHENTICATED, ...); std::system_error maps by errno
/// (out of space or memory -> RESOURCE_EXHAUSTED); anything else is INTERNAL.
grpc::Status to_status(const std::exception& e);

}  // namespace frakti::cri
