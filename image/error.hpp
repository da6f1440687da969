#pragma once
// ImageError: every failure of the image service that a user or the CRI layer must tell apart.
// The kind maps onto gRPC status codes later (NotFound, Unauthenticated, DataLoss...); the
// message always says what failed on what.

#include <stdexcept>
#include <string>

namespace frakti::image {

/// What went wrong, coarse enough for a CRI status code and for retry decisions.
enum class ErrorKind {
  invalid,      ///< malformed reference, manifest, config or archive
  not_found,    ///< image, tag, manifest or blob does not exist
  auth,         ///< registry refused our credentials
  network,      ///< transport failure after all retries
  integrity,    ///< digest or size mismatch, diff_id mismatch
  unsupported,  ///< schema1, unknown media type, no matching platform
  hostile,      ///< a layer tried to write outside its root
  cancelled,    ///< caller cancelled or the deadline passed
};

/// The exception type of the image library.
class ImageError : public std::runtime_error {
 public:
  ImageError(ErrorKind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

/// Stable lower-case name of a kind, for logs and tests.
inline const char* kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::invalid: return "invalid";
    case ErrorKind::not_found: return "not_found";
    case ErrorKind::auth: return "auth";
    case ErrorKind::network: return "network";
    case ErrorKind::integrity: return "integrity";
    case ErrorKind::unsupported: return "unsupported";
    case ErrorKind::hostile: return "hostile";
    case ErrorKind::cancelled: return "cancelled";
  }
  return "unknown";
}

}  // namespace frakti::image
