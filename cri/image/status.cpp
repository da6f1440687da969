#include "cri/image/status.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <new>
#include <string>
#include <system_error>

#include "image/error.hpp"

namespace frakti::cri {

namespace {

using image::ErrorKind;

grpc::StatusCode code_of(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case ErrorKind::not_found:
      return grpc::StatusCode::NOT_FOUND;
    case ErrorKind::auth:
      return grpc::StatusCode::UNAUTHENTICATED;
    case ErrorKind::network:
      return grpc::StatusCode::UNAVAILABLE;
    case ErrorKind::integrity:
      return grpc::StatusCode::DATA_LOSS;
    // The request is well-formed but this image cannot be used as it is.
    case ErrorKind::unsupported:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case ErrorKind::hostile:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case ErrorKind::cancelled:
      return grpc::StatusCode::CANCELLED;
  }
  return grpc::StatusCode::INTERNAL;
}

// What the person reading the kubelet's event can do about it; empty when the library's own
// message is the whole story.
const char* hint_of(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::not_found:
      return "check the image name, tag or digest and that the repository exists";
    case ErrorKind::auth:
      return "check the pull credentials for this registry: imagePullSecrets, or the docker "
             "config.json or "
             "registries file of the node";
    case ErrorKind::network:
      return "check that the node reaches the registry (DNS, proxy, firewall) or configure a "
             "mirror for it";
    case ErrorKind::integrity:
      return "the registry or a proxy served content that does not match its digest; retry, and "
             "report it to "
             "the registry's owner if it persists";
    case ErrorKind::hostile:
      return "the image is refused; rebuild it from trusted content";
    case ErrorKind::invalid:
    case ErrorKind::unsupported:
    case ErrorKind::cancelled:
      return "";
  }
  return "";
}

bool resource_errno(int e) {
  return e == ENOSPC || e == EDQUOT || e == ENOMEM || e == EMFILE || e == ENFILE;
}

}  // namespace

std::string clip(std::string_view text, size_t max) {
  std::string out;
  size_t n = std::min(text.size(), max);
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > max) out += fmt::format("...({} more bytes)", text.size() - max);
  return out;
}

grpc::Status to_status(const std::exception& e) {
  if (auto* ie = dynamic_cast<const image::ImageError*>(&e)) {
    std::string msg = clip(ie->what(), kMaxErrorText);
    if (const char* hint = hint_of(ie->kind()); *hint) msg += std::string("; ") + hint;
    return {code_of(ie->kind()), msg};
  }
  if (auto* se = dynamic_cast<const std::system_error*>(&e)) {
    if (se->code().category() == std::generic_category() ||
        se->code().category() == std::system_category()) {
      if (resource_errno(se->code().value())) {
        return {grpc::StatusCode::RESOURCE_EXHAUSTED,
                clip(se->what(), kMaxErrorText) +
                    "; free disk space, memory or file descriptors on the node"};
      }
    }
    return {grpc::StatusCode::INTERNAL, clip(se->what(), kMaxErrorText)};
  }
  if (dynamic_cast<const std::bad_alloc*>(&e)) {
    return {grpc::StatusCode::RESOURCE_EXHAUSTED, "out of memory"};
  }
  return {grpc::StatusCode::INTERNAL, "internal error: " + clip(e.what(), kMaxErrorText)};
}

}  // namespace frakti::cri
