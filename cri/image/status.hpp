#pragma once
// The one place where an exception from the image library (or the host) becomes a gRPC status
// for a CRI client. Kept free of ImageGrpcService so the RuntimeService can share it.

#include <grpcpp/support/status.h>

#include <cstddef>
#include <exception>
#include <string>
#include <string_view>

namespace frakti::cri {

/// Maps an exception to a status code and a message that says what failed and, where the
/// user can act, what to do. image::ImageError kinds map by meaning (not_found -> NOT_FOUND,
/// network -> UNAVAILABLE, auth -> UNAUTHENTICATED, ...); std::system_error maps by errno
/// (out of space or memory -> RESOURCE_EXHAUSTED); anything else is INTERNAL.
/// The exception's text is clipped (see clip) so that a request echoed in it cannot push the
/// status past what a client accepts.
grpc::Status to_status(const std::exception& e);

/// `text` cut to at most `max` bytes plus a note of how much was cut, control characters
/// written as \xNN (a name with a newline must not forge log lines). Status messages travel
/// in HTTP/2 trailers, which gRPC clients cap (8 KiB of metadata by default: a longer one
/// turns into RESOURCE_EXHAUSTED at the client), so anything taken from a request is bounded.
std::string clip(std::string_view text, size_t max);

/// Bound for the text taken from an exception.
inline constexpr size_t kMaxErrorText = 2048;

}  // namespace frakti::cri
