#pragma once
// Error codes of the agent protocol, as a std::error_category so they travel in the same
// std::error_code as socket errors through every completion handler.

#include <string>
#include <system_error>

namespace frakti::agent::protocol {

enum class ProtocolErrc {
  // Framing (the peer sent bytes that are not a valid frame; the connection is closed).
  bad_magic = 1,
  unsupported_frame_version,
  unknown_frame_type,
  reserved_flags,
  oversized_frame,
  bad_stream_id,
  bad_frame_length,
  truncated_frame,
  // Messages and protocol rules (also fatal for the connection).
  bad_payload,
  unexpected_frame,
  window_exceeded,
  version_mismatch,
  remote_error,
  // Per-call / per-stream results (the connection stays usable).
  timeout,
  message_too_large,
  stream_reset,
  end_of_stream,
  stream_busy,
  // The connection is gone (closed locally, by the peer, or after an error).
  connection_closed,
};

/// The category of ProtocolErrc ("frakti.agent.protocol").
const std::error_category& protocol_category() noexcept;

inline std::error_code make_error_code(ProtocolErrc e) noexcept {
  return {static_cast<int>(e), protocol_category()};
}

}  // namespace frakti::agent::protocol

template <>
struct std::is_error_code_enum<frakti::agent::protocol::ProtocolErrc> : std::true_type {};
