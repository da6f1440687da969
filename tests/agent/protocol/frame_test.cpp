#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "agent/protocol/frame.hpp"
#include "proto/agent/agent.pb.h"

using namespace frakti::agent::protocol;

namespace {

// A header built byte by byte, so the tests do not trust the encoder they are checking.
std::string raw_header(uint8_t magic, uint8_t version, uint8_t type, uint8_t flags, uint32_t id,
                       uint32_t len) {
  std::string h;
  h += static_cast<char>(magic);
  h += static_cast<char>(version);
  h += static_cast<char>(type);
  h += static_cast<char>(flags);
  for (uint32_t v : {id, len}) {
    for (int shift = 24; shift >= 0; shift -= 8) h += static_cast<char>((v >> shift) & 0xff);
  }
  return h;
}

std::string header(FrameType type, uint8_t flags, uint32_t id, uint32_t len) {
  return raw_header(kFrameMagic, kFrameVersion, static_cast<uint8_t>(type), flags, id, len);
}

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + (i >> 9)) & 0xff);
  return s;
}

std::vector<Frame> decode_all(FrameDecoder& d) {
  std::vector<Frame> out;
  Frame f;
  while (d.next(f) == FrameDecoder::Status::frame) out.push_back(f);
  return out;
}

}  // namespace

TEST_CASE("encode_frame writes the documented big-endian header", "[agent][frame]") {
  auto f = encode_frame(FrameType::stream_data, frame_flags::kFin, 0x01020304, "abc");
  REQUIRE(f == header(FrameType::stream_data, 0x01, 0x01020304, 3) + "abc");
  REQUIRE(f.size() == kFrameHeaderSize + 3);
  REQUIRE(static_cast<uint8_t>(f[0]) == 0xFA);
  REQUIRE(f.substr(4, 8) == std::string("\x01\x02\x03\x04\x00\x00\x00\x03", 8));
}

TEST_CASE("frames round-trip for every type and size edge", "[agent][frame]") {
  struct Case {
    FrameType type;
    uint8_t flags;
    uint32_t id;
    size_t size;
  };
  const std::vector<Case> cases = {
      {FrameType::hello, 0, 0, 0},
      {FrameType::request, 0, 1, 0},
      {FrameType::request, 0, 0xffffffff, 1},
      {FrameType::response, 0, 7, 1000},
      {FrameType::event, 0, 0, 17},
      {FrameType::stream_data, 0, 3, 1},
      {FrameType::stream_data, frame_flags::kFin, 3, 0},
      {FrameType::stream_data, 0, 3, kMaxFramePayload},
      {FrameType::stream_reset, 0, 9, 0},
      {FrameType::error, 0, 0, 40},
  };
  for (const auto& c : cases) {
    CAPTURE(frame_type_name(static_cast<uint8_t>(c.type)), c.size);
    std::string payload = pattern(c.size);
    auto bytes = encode_frame(c.type, c.flags, c.id, payload);
    FrameDecoder d;
    d.feed(bytes.data(), bytes.size());
    Frame f;
    REQUIRE(d.next(f) == FrameDecoder::Status::frame);
    REQUIRE(f.type == c.type);
    REQUIRE(f.flags == c.flags);
    REQUIRE(f.stream_id == c.id);
    REQUIRE(f.payload == payload);
    REQUIRE(d.next(f) == FrameDecoder::Status::need_more);
    REQUIRE(d.finish() == FrameDecoder::Status::need_more);
  }
  auto wu = encode_window_update(5, 0x00abcdef);
  FrameDecoder d;
  d.feed(wu.data(), wu.size());
  Frame f;
  REQUIRE(d.next(f) == FrameDecoder::Status::frame);
  REQUIRE(f.type == FrameType::window_update);
  REQUIRE(decode_window_increment(f.payload) == 0x00abcdef);
}

TEST_CASE("a frame fed one byte at a time and many frames fed at once decode", "[agent][frame]") {
  frakti::agent::v1::Request req;
  req.mutable_ping()->set_nonce(42);
  auto one = encode_message_frame(FrameType::request, 77, req);
  REQUIRE(one);
  FrameDecoder d;
  Frame f;
  for (size_t i = 0; i < one->size(); ++i) {
    REQUIRE(d.next(f) == FrameDecoder::Status::need_more);
    d.feed(one->data() + i, 1);
  }
  REQUIRE(d.next(f) == FrameDecoder::Status::frame);
  frakti::agent::v1::Request back;
  REQUIRE(back.ParseFromString(f.payload));
  REQUIRE(back.ping().nonce() == 42);
  REQUIRE(f.stream_id == 77);

  std::string many;
  for (uint32_t i = 1; i <= 1000; ++i) {
    many += encode_frame(FrameType::stream_data, 0, i, pattern(i % 5));
  }
  d.feed(many.data(), many.size());
  auto frames = decode_all(d);
  REQUIRE(frames.size() == 1000);
  for (uint32_t i = 1; i <= 1000; ++i) {
    REQUIRE(frames[i - 1].stream_id == i);
    REQUIRE(frames[i - 1].payload == pattern(i % 5));
  }
  REQUIRE(d.buffered() == 0);
}

TEST_CASE("hostile byte streams fail with a precise error", "[agent][frame]") {
  struct Case {
    const char* name;
    std::string bytes;
    ProtocolErrc expected;
    bool at_finish;  // the error shows only at end of input
  };
  const std::vector<Case> cases = {
      {"garbage text", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", ProtocolErrc::bad_magic, false},
      {"all zero header", std::string(12, '\0'), ProtocolErrc::bad_magic, false},
      {"bad frame version", raw_header(kFrameMagic, 2, 2, 0, 1, 0),
       ProtocolErrc::unsupported_frame_version, false},
      {"type 0", raw_header(kFrameMagic, kFrameVersion, 0, 0, 0, 0),
       ProtocolErrc::unknown_frame_type, false},
      {"type 9", raw_header(kFrameMagic, kFrameVersion, 9, 0, 1, 0),
       ProtocolErrc::unknown_frame_type, false},
      {"type 255", raw_header(kFrameMagic, kFrameVersion, 255, 0, 1, 0),
       ProtocolErrc::unknown_frame_type, false},
      {"FIN on a request", header(FrameType::request, frame_flags::kFin, 1, 0),
       ProtocolErrc::reserved_flags, false},
      {"reserved stream flag", header(FrameType::stream_data, 0x80, 1, 0),
       ProtocolErrc::reserved_flags, false},
      {"length one over the limit", header(FrameType::stream_data, 0, 1, kMaxFramePayload + 1),
       ProtocolErrc::oversized_frame, false},
      {"length 0xffffffff", header(FrameType::response, 0, 1, 0xffffffff),
       ProtocolErrc::oversized_frame, false},
      {"hello on a stream", header(FrameType::hello, 0, 1, 0), ProtocolErrc::bad_stream_id,
       false},
      {"error on a stream", header(FrameType::error, 0, 5, 0), ProtocolErrc::bad_stream_id, false},
      {"request with id 0", header(FrameType::request, 0, 0, 0), ProtocolErrc::bad_stream_id,
       false},
      {"stream data on stream 0", header(FrameType::stream_data, 0, 0, 1) + "x",
       ProtocolErrc::bad_stream_id, false},
      {"3-byte window update", header(FrameType::window_update, 0, 1, 3) + "abc",
       ProtocolErrc::bad_frame_length, false},
      {"0-byte window update", header(FrameType::window_update, 0, 1, 0),
       ProtocolErrc::bad_frame_length, false},
      {"reset with payload", header(FrameType::stream_reset, 0, 1, 1) + "x",
       ProtocolErrc::bad_frame_length, false},
      {"truncated header", header(FrameType::request, 0, 1, 4).substr(0, 5),
       ProtocolErrc::truncated_frame, true},
      {"one header byte", std::string(1, static_cast<char>(kFrameMagic)),
       ProtocolErrc::truncated_frame, true},
      {"truncated payload", header(FrameType::request, 0, 1, 10) + "12345",
       ProtocolErrc::truncated_frame, true},
      {"header without payload", header(FrameType::event, 0, 0, 1), ProtocolErrc::truncated_frame,
       true},
      {"good frame then garbage", encode_frame(FrameType::event, 0, 0, "ok") + "\x01garbage!!!!!",
       ProtocolErrc::bad_magic, false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    // Whole, and split into single bytes: the verdict must not depend on how bytes arrive.
    for (bool bytewise : {false, true}) {
      FrameDecoder d;
      Frame f;
      FrameDecoder::Status st = FrameDecoder::Status::need_more;
      if (bytewise) {
        for (char ch : c.bytes) {
          d.feed(&ch, 1);
          while ((st = d.next(f)) == FrameDecoder::Status::frame) {
          }
          if (st == FrameDecoder::Status::error) break;
        }
      } else {
        d.feed(c.bytes.data(), c.bytes.size());
        while ((st = d.next(f)) == FrameDecoder::Status::frame) {
        }
      }
      if (c.at_finish) {
        REQUIRE(st == FrameDecoder::Status::need_more);
        st = d.finish();
      }
      REQUIRE(st == FrameDecoder::Status::error);
      REQUIRE(d.error().code == c.expected);
      REQUIRE_FALSE(d.error().message.empty());
      // Failure is sticky: valid bytes afterwards do not revive the connection.
      auto good = encode_frame(FrameType::event, 0, 0, "");
      d.feed(good.data(), good.size());
      REQUIRE(d.next(f) == FrameDecoder::Status::error);
    }
  }
}

TEST_CASE("an oversized length is refused before its payload is buffered", "[agent][frame]") {
  FrameDecoder d(1024);
  auto h = header(FrameType::stream_data, 0, 1, 1025);
  d.feed(h.data(), h.size());
  Frame f;
  REQUIRE(d.next(f) == FrameDecoder::Status::error);
  REQUIRE(d.error().code == ProtocolErrc::oversized_frame);
  REQUIRE(d.error().message.find("1025") != std::string::npos);
  REQUIRE(d.buffered() == 0);
  // The exact limit is accepted.
  FrameDecoder ok(1024);
  auto full = encode_frame(FrameType::stream_data, 0, 1, pattern(1024));
  ok.feed(full.data(), full.size());
  REQUIRE(ok.next(f) == FrameDecoder::Status::frame);
  REQUIRE(f.payload.size() == 1024);
}

TEST_CASE("error messages say what and where", "[agent][frame]") {
  FrameDecoder d;
  auto bytes = encode_frame(FrameType::event, 0, 0, "12345") + "Z" + std::string(11, 'z');
  d.feed(bytes.data(), bytes.size());
  Frame f;
  REQUIRE(d.next(f) == FrameDecoder::Status::frame);
  REQUIRE(d.next(f) == FrameDecoder::Status::error);
  REQUIRE(d.error().message == "bad frame magic 0x5a (expected 0xfa) at stream offset 17");
}

TEST_CASE("encoders refuse payloads over the limit", "[agent][frame]") {
  REQUIRE_THROWS_AS(encode_frame(FrameType::stream_data, 0, 1, std::string(kMaxFramePayload + 1, 'x')),
                    std::length_error);
  frakti::agent::v1::Request req;
  req.mutable_create_container()->set_seccomp_profile_json(std::string(2000, 'x'));
  REQUIRE_FALSE(encode_message_frame(FrameType::request, 1, req, 1000));
  REQUIRE(encode_message_frame(FrameType::request, 1, req, 4000));
}
