#include "vmm/virtio/vsock/handshake.hpp"

#include <fmt/format.h>

namespace frakti::vmm::virtio::vsock {

HandshakeScan scan_handshake(std::string_view data) {
  HandshakeScan r;
  size_t nl = data.find('\n');
  if (nl == std::string_view::npos) {
    if (data.size() >= kMaxHandshakeLine) {
      r.status = HandshakeScan::Status::bad;
      r.error = "handshake line too long";
    }
    return r;
  }
  r.status = HandshakeScan::Status::bad;
  if (nl + 1 > kMaxHandshakeLine) {
    r.error = "handshake line too long";
    return r;
  }
  std::string_view line = data.substr(0, nl);
  constexpr std::string_view kVerb = "CONNECT ";
  if (line.substr(0, kVerb.size()) != kVerb) {
    r.error = "expected \"CONNECT <port>\"";
    return r;
  }
  std::string_view digits = line.substr(kVerb.size());
  if (digits.empty() || digits.size() > 10) {
    r.error = "port is not a 32-bit decimal number";
    return r;
  }
  uint64_t port = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') {
      r.error = "port is not a 32-bit decimal number";
      return r;
    }
    port = port * 10 + static_cast<uint64_t>(c - '0');
  }
  if (port > UINT32_MAX) {
    r.error = "port is not a 32-bit decimal number";
    return r;
  }
  r.status = HandshakeScan::Status::ok;
  r.port = static_cast<uint32_t>(port);
  r.consumed = nl + 1;
  return r;
}

std::string handshake_ok(uint32_t host_port) {
  return fmt::format("OK {}\n", host_port);
}

}  // namespace frakti::vmm::virtio::vsock
