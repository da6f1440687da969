#pragma once
// Frames: the unit on the agent connection. docs/agent-protocol.md is the reference; the
// layout is a fixed 12-byte header in network byte order (big-endian) followed by the payload:
//
//   0      magic   0xFA
//   1      version kFrameVersion
//   2      type    FrameType
//   3      flags   FrameFlags (only FIN on STREAM_DATA; other bits must be 0)
//   4..7   stream id (u32): request id, stdio stream id, or 0 for connection-wide frames
//   8..11  payload length (u32), at most the decoder's limit (kMaxFramePayload by default)
//
// Every header field is checked before a byte of payload is buffered, so a hostile peer can
// neither make us allocate more than the limit nor smuggle an unknown frame through.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "agent/protocol/errors.hpp"

namespace google::protobuf {
class MessageLite;
}

namespace frakti::agent::protocol {

inline constexpr uint8_t kFrameMagic = 0xFA;
inline constexpr uint8_t kFrameVersion = 1;
inline constexpr size_t kFrameHeaderSize = 12;
/// Largest payload of one frame: bounds every allocation made for a peer's frame.
inline constexpr uint32_t kMaxFramePayload = 4u << 20;
/// Largest STREAM_DATA payload a Session sends (smaller frames keep requests flowing between
/// chunks of a busy stream).
inline constexpr uint32_t kMaxStreamChunk = 64u << 10;

enum class FrameType : uint8_t {
  hello = 1,          // Hello (client) / HelloReply (server); stream id 0
  request = 2,        // Request; stream id = request id (non-zero)
  response = 3,       // Response; stream id = the request id it answers
  event = 4,          // Event, server -> client; stream id 0
  stream_data = 5,    // raw bytes of one stream; FIN flag ends the stream
  window_update = 6,  // 4-byte big-endian credit increment for one stream
  stream_reset = 7,   // receiver abandons a stream; empty payload
  error = 8,          // Error, fatal: the sender closes the connection after it; stream id 0
};

/// Frame flag bits.
namespace frame_flags {
inline constexpr uint8_t kFin = 0x01;
}

struct FrameHeader {
  FrameType type{};
  uint8_t flags = 0;
  uint32_t stream_id = 0;
  uint32_t length = 0;
};

struct Frame {
  FrameType type{};
  uint8_t flags = 0;
  uint32_t stream_id = 0;
  std::string payload;
};

/// A precise decoding failure: which rule was broken and the offending values.
struct DecodeError {
  ProtocolErrc code{};
  std::string message;
};

/// A printable name for a frame type ("STREAM_DATA"), or "type N" for unknown ones.
std::string frame_type_name(uint8_t type);

/// Checks a raw header (exactly kFrameHeaderSize bytes) against every framing rule.
std::optional<DecodeError> parse_header(const uint8_t* bytes, uint32_t max_payload,
                                        FrameHeader& out);

/// Encodes one frame. Throws std::length_error when the payload exceeds kMaxFramePayload
/// (callers check sizes first; this is the last line of defence).
std::string encode_frame(FrameType type, uint8_t flags, uint32_t stream_id,
                         std::string_view payload);
/// Encodes one frame whose payload is a serialized protobuf message, without an extra copy.
/// Returns nullopt when the message is larger than max_payload.
std::optional<std::string> encode_message_frame(FrameType type, uint32_t stream_id,
                                                const google::protobuf::MessageLite& message,
                                                uint32_t max_payload = kMaxFramePayload);
/// The payload of a WINDOW_UPDATE frame.
std::string encode_window_update(uint32_t stream_id, uint32_t increment);
/// Reads the increment from a WINDOW_UPDATE payload (which the decoder made 4 bytes long).
uint32_t decode_window_increment(std::string_view payload);

/// Turns a byte stream into frames. Bytes arrive in any split (down to one at a time); the
/// decoder holds at most one header plus one payload of at most max_payload bytes. After the
/// first error it stays failed: the connection must be closed.
class FrameDecoder {
 public:
  enum class Status { frame, need_more, error };

  explicit FrameDecoder(uint32_t max_payload = kMaxFramePayload) : max_payload_(max_payload) {}

  /// Appends bytes received from the peer.
  void feed(const void* data, size_t size);
  /// Extracts the next complete frame into out, or says why not.
  Status next(Frame& out);
  /// Call at end of input: an error (truncated_frame) when a frame was cut short, else
  /// need_more (a clean end).
  Status finish();
  /// The failure, valid after next() or finish() returned Status::error.
  const DecodeError& error() const { return error_; }
  /// Bytes received but not yet returned as frames.
  size_t buffered() const { return buffer_.size() - pos_; }

 private:
  Status fail(ProtocolErrc code, std::string message);

  const uint32_t max_payload_;
  std::string buffer_;
  size_t pos_ = 0;  // start of unconsumed bytes in buffer_
  std::optional<FrameHeader> header_;
  uint64_t offset_ = 0;  // stream offset of buffer_[pos_], for error messages
  bool failed_ = false;
  DecodeError error_;
};

}  // namespace frakti::agent::protocol
