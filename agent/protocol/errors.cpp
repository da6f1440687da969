#include "agent/protocol/errors.hpp"

namespace frakti::agent::protocol {
namespace {

class ProtocolCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "frakti.agent.protocol"; }
  std::string message(int ev) const override {
    switch (static_cast<ProtocolErrc>(ev)) {
      case ProtocolErrc::bad_magic: return "bad frame magic";
      case ProtocolErrc::unsupported_frame_version: return "unsupported frame format version";
      case ProtocolErrc::unknown_frame_type: return "unknown frame type";
      case ProtocolErrc::reserved_flags: return "reserved frame flags set";
      case ProtocolErrc::oversized_frame: return "frame larger than the limit";
      case ProtocolErrc::bad_stream_id: return "stream id not allowed for this frame type";
      case ProtocolErrc::bad_frame_length: return "payload length not allowed for this frame type";
      case ProtocolErrc::truncated_frame: return "connection ended inside a frame";
      case ProtocolErrc::bad_payload: return "frame payload is not a valid message";
      case ProtocolErrc::unexpected_frame: return "frame not allowed in this state or direction";
      case ProtocolErrc::window_exceeded: return "stream data beyond the granted window";
      case ProtocolErrc::version_mismatch: return "protocol version mismatch";
      case ProtocolErrc::remote_error: return "peer reported a fatal error";
      case ProtocolErrc::timeout: return "deadline expired";
      case ProtocolErrc::message_too_large: return "message larger than the frame limit";
      case ProtocolErrc::stream_reset: return "stream reset by the peer";
      case ProtocolErrc::end_of_stream: return "end of stream";
      case ProtocolErrc::stream_busy: return "a read is already pending on this stream";
      case ProtocolErrc::connection_closed: return "connection closed";
    }
    return "unknown agent protocol error";
  }
};

}  // namespace

const std::error_category& protocol_category() noexcept {
  static const ProtocolCategory category;
  return category;
}

}  // namespace frakti::agent::protocol
