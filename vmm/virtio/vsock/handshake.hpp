#pragma once
// The host side of Firecracker's hybrid vsock protocol: a host process connects to the VM's
// Unix socket and sends one line, "CONNECT <port>\n", naming the guest port it wants. The
// muxer answers "OK <host port>\n" once the guest accepted, or closes the socket.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace frakti::vmm::virtio::vsock {

/// Longest handshake line accepted, newline included ("CONNECT 4294967295\n" is 19 bytes).
inline constexpr size_t kMaxHandshakeLine = 32;

/// Outcome of scanning the bytes received so far on a new host connection.
struct HandshakeScan {
  enum class Status { incomplete, ok, bad } status = Status::incomplete;
  uint32_t port = 0;       ///< guest port when ok
  size_t consumed = 0;     ///< bytes of the line, newline included, when ok
  std::string_view error;  ///< reason when bad
};

/// Looks for a complete "CONNECT <port>\n" line at the start of data. Strict: one space,
/// decimal digits without sign or leading '+', value fitting 32 bits, then '\n'. A line longer
/// than kMaxHandshakeLine without a newline is bad. Bytes after the newline are not examined:
/// they are stream data the host sent early.
HandshakeScan scan_handshake(std::string_view data);

/// The answer written back once the guest accepted: "OK <host_port>\n".
std::string handshake_ok(uint32_t host_port);

}  // namespace frakti::vmm::virtio::vsock
