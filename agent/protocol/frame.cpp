#include "agent/protocol/frame.hpp"

#include <google/protobuf/message_lite.h>

#include <stdexcept>

#include <fmt/format.h>

namespace frakti::agent::protocol {
namespace {

void put_u32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

uint32_t get_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void put_header(uint8_t* p, FrameType type, uint8_t flags, uint32_t stream_id, uint32_t length) {
  p[0] = kFrameMagic;
  p[1] = kFrameVersion;
  p[2] = static_cast<uint8_t>(type);
  p[3] = flags;
  put_u32(p + 4, stream_id);
  put_u32(p + 8, length);
}

bool known_type(uint8_t t) {
  return t >= static_cast<uint8_t>(FrameType::hello) && t <= static_cast<uint8_t>(FrameType::error);
}

// Connection-wide frames use stream id 0; per-call and per-stream frames never do.
bool wants_stream_zero(FrameType t) {
  return t == FrameType::hello || t == FrameType::event || t == FrameType::error;
}

}  // namespace

std::string frame_type_name(uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::hello: return "HELLO";
    case FrameType::request: return "REQUEST";
    case FrameType::response: return "RESPONSE";
    case FrameType::event: return "EVENT";
    case FrameType::stream_data: return "STREAM_DATA";
    case FrameType::window_update: return "WINDOW_UPDATE";
    case FrameType::stream_reset: return "STREAM_RESET";
    case FrameType::error: return "ERROR";
  }
  return fmt::format("type {}", type);
}

std::optional<DecodeError> parse_header(const uint8_t* p, uint32_t max_payload, FrameHeader& out) {
  if (p[0] != kFrameMagic) {
    return DecodeError{ProtocolErrc::bad_magic,
                       fmt::format("bad frame magic 0x{:02x} (expected 0x{:02x})", p[0], kFrameMagic)};
  }
  if (p[1] != kFrameVersion) {
    return DecodeError{ProtocolErrc::unsupported_frame_version,
                       fmt::format("frame format version {} (this side speaks {})", p[1],
                                   kFrameVersion)};
  }
  if (!known_type(p[2])) {
    return DecodeError{ProtocolErrc::unknown_frame_type,
                       fmt::format("unknown frame type {}", p[2])};
  }
  auto type = static_cast<FrameType>(p[2]);
  uint8_t allowed = type == FrameType::stream_data ? frame_flags::kFin : 0;
  if ((p[3] & ~allowed) != 0) {
    return DecodeError{ProtocolErrc::reserved_flags,
                       fmt::format("{} frame with reserved flags 0x{:02x}", frame_type_name(p[2]),
                                   p[3])};
  }
  uint32_t stream_id = get_u32(p + 4);
  uint32_t length = get_u32(p + 8);
  if (length > max_payload) {
    return DecodeError{ProtocolErrc::oversized_frame,
                       fmt::format("{} frame of {} bytes exceeds the {}-byte limit",
                                   frame_type_name(p[2]), length, max_payload)};
  }
  if (wants_stream_zero(type) != (stream_id == 0)) {
    return DecodeError{ProtocolErrc::bad_stream_id,
                       fmt::format("{} frame with stream id {}", frame_type_name(p[2]), stream_id)};
  }
  if ((type == FrameType::window_update && length != 4) ||
      (type == FrameType::stream_reset && length != 0)) {
    return DecodeError{ProtocolErrc::bad_frame_length,
                       fmt::format("{} frame with a {}-byte payload", frame_type_name(p[2]),
                                   length)};
  }
  out = FrameHeader{type, p[3], stream_id, length};
  return std::nullopt;
}

std::string encode_frame(FrameType type, uint8_t flags, uint32_t stream_id,
                         std::string_view payload) {
  if (payload.size() > kMaxFramePayload) {
    throw std::length_error(fmt::format("agent protocol: {} frame payload of {} bytes exceeds {}",
                                        frame_type_name(static_cast<uint8_t>(type)),
                                        payload.size(), kMaxFramePayload));
  }
  std::string out(kFrameHeaderSize + payload.size(), '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  put_header(p, type, flags, stream_id, static_cast<uint32_t>(payload.size()));
  out.replace(kFrameHeaderSize, payload.size(), payload);
  return out;
}

std::optional<std::string> encode_message_frame(FrameType type, uint32_t stream_id,
                                                const google::protobuf::MessageLite& message,
                                                uint32_t max_payload) {
  size_t size = message.ByteSizeLong();
  if (size > max_payload || size > kMaxFramePayload) return std::nullopt;
  std::string out(kFrameHeaderSize + size, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  put_header(p, type, 0, stream_id, static_cast<uint32_t>(size));
  message.SerializeWithCachedSizesToArray(p + kFrameHeaderSize);
  return out;
}

std::string encode_window_update(uint32_t stream_id, uint32_t increment) {
  uint8_t payload[4];
  put_u32(payload, increment);
  return encode_frame(FrameType::window_update, 0, stream_id,
                      std::string_view(reinterpret_cast<const char*>(payload), 4));
}

uint32_t decode_window_increment(std::string_view payload) {
  return get_u32(reinterpret_cast<const uint8_t*>(payload.data()));
}

void FrameDecoder::feed(const void* data, size_t size) {
  if (failed_ || size == 0) return;
  // Compact once the consumed prefix dominates, so many small frames stay O(n) overall.
  if (pos_ > 0 && pos_ >= buffer_.size() / 2) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  buffer_.append(static_cast<const char*>(data), size);
}

FrameDecoder::Status FrameDecoder::next(Frame& out) {
  if (failed_) return Status::error;
  if (!header_) {
    if (buffered() < kFrameHeaderSize) return Status::need_more;
    FrameHeader h;
    if (auto err = parse_header(reinterpret_cast<const uint8_t*>(buffer_.data() + pos_),
                                max_payload_, h)) {
      return fail(err->code, fmt::format("{} at stream offset {}", err->message, offset_));
    }
    header_ = h;
    pos_ += kFrameHeaderSize;
    offset_ += kFrameHeaderSize;
  }
  if (buffered() < header_->length) return Status::need_more;
  out.type = header_->type;
  out.flags = header_->flags;
  out.stream_id = header_->stream_id;
  out.payload.assign(buffer_, pos_, header_->length);
  pos_ += header_->length;
  offset_ += header_->length;
  header_.reset();
  if (pos_ == buffer_.size()) {
    buffer_.clear();
    pos_ = 0;
  }
  return Status::frame;
}

FrameDecoder::Status FrameDecoder::finish() {
  if (failed_) return Status::error;
  if (header_) {
    return fail(ProtocolErrc::truncated_frame,
                fmt::format("connection ended after {} of {} payload bytes of a {} frame",
                            buffered(), header_->length,
                            frame_type_name(static_cast<uint8_t>(header_->type))));
  }
  if (buffered() > 0) {
    return fail(ProtocolErrc::truncated_frame,
                fmt::format("connection ended after {} of {} header bytes", buffered(),
                            kFrameHeaderSize));
  }
  return Status::need_more;
}

FrameDecoder::Status FrameDecoder::fail(ProtocolErrc code, std::string message) {
  failed_ = true;
  error_ = DecodeError{code, std::move(message)};
  buffer_.clear();
  pos_ = 0;
  return Status::error;
}

}  // namespace frakti::agent::protocol
