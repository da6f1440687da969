#include "vmm/virtio/vsock/packet.hpp"

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "vmm/virtio/vsock/handshake.hpp"

using namespace frakti::vmm::virtio::vsock;

namespace {

constexpr uint64_t kGuest = 3;

Header good_header(Op op = Op::rw, uint32_t len = 0) {
  Header h;
  h.src_cid = kGuest;
  h.dst_cid = kHostCid;
  h.src_port = 1234;
  h.dst_port = 5000;
  h.len = len;
  h.type = kTypeStream;
  h.op = static_cast<uint16_t>(op);
  h.buf_alloc = 65536;
  h.fwd_cnt = 7;
  return h;
}

std::vector<uint8_t> bytes(const Header& h, size_t payload) {
  std::vector<uint8_t> out(kHeaderSize + payload, 0xab);
  encode_header(h, std::span<uint8_t, kHeaderSize>(out.data(), kHeaderSize));
  return out;
}

}  // namespace

TEST_CASE("vsock header encodes little-endian at the spec's offsets", "[vsock]") {
  Header h = good_header(Op::credit_update);
  h.src_cid = 0x0102030405060708ull;
  h.flags = 0xa1b2c3d4;
  std::vector<uint8_t> b = bytes(h, 0);
  REQUIRE(b.size() == 44);
  CHECK(b[0] == 0x08);  // src_cid low byte first
  CHECK(b[7] == 0x01);
  CHECK(b[8] == 2);  // dst_cid
  CHECK(b[16] == (1234 & 0xff));
  CHECK(b[20] == (5000 & 0xff));
  CHECK(b[28] == 1);     // type
  CHECK(b[30] == 6);     // op
  CHECK(b[32] == 0xd4);  // flags
  CHECK(b[36] == 0x00);  // buf_alloc 65536 = 00 00 01 00
  CHECK(b[38] == 0x01);
  CHECK(b[40] == 7);  // fwd_cnt
  REQUIRE(decode_header(std::span<const uint8_t, kHeaderSize>(b.data(), kHeaderSize)) == h);
}

TEST_CASE("guest packet parser: hostile input table", "[vsock]") {
  struct Case {
    const char* name;
    Header hdr;
    size_t total;  // bytes handed to the parser (header + payload)
    ParseError want;
  };
  auto with = [](auto f) {
    Header h = good_header();
    f(h);
    return h;
  };
  const std::vector<Case> cases = {
      {"empty", good_header(), 0, ParseError::short_header},
      {"43 bytes", good_header(), 43, ParseError::short_header},
      {"control op, no payload", good_header(Op::request), 44, ParseError::none},
      {"rw with payload", good_header(Op::rw, 100), 144, ParseError::none},
      {"rw, extra trailing bytes ignored", good_header(Op::rw, 10), 200, ParseError::none},
      {"rw at the cap", good_header(Op::rw, kMaxPayload), 44 + kMaxPayload, ParseError::none},
      {"rw over the cap", good_header(Op::rw, kMaxPayload + 1), 44 + kMaxPayload + 1,
       ParseError::oversized},
      {"len 0xffffffff", good_header(Op::rw, 0xffffffffu), 44, ParseError::oversized},
      {"len beyond the bytes", good_header(Op::rw, 100), 143, ParseError::truncated_payload},
      {"spoofed src cid", with([](Header& h) { h.src_cid = 4; }), 44, ParseError::bad_src_cid},
      {"src cid is host", with([](Header& h) { h.src_cid = kHostCid; }), 44,
       ParseError::bad_src_cid},
      {"src cid high bits", with([](Header& h) { h.src_cid = (1ull << 32) | kGuest; }), 44,
       ParseError::bad_src_cid},
      {"dst cid is guest", with([](Header& h) { h.dst_cid = kGuest; }), 44,
       ParseError::bad_dst_cid},
      {"dst cid any", with([](Header& h) { h.dst_cid = 0xffffffff; }), 44, ParseError::bad_dst_cid},
      {"seqpacket type", with([](Header& h) { h.type = 2; }), 44, ParseError::bad_type},
      {"type 0", with([](Header& h) { h.type = 0; }), 44, ParseError::bad_type},
      {"op 0", with([](Header& h) { h.op = 0; }), 44, ParseError::bad_op},
      {"op 8", with([](Header& h) { h.op = 8; }), 44, ParseError::bad_op},
      {"op 0xffff", with([](Header& h) { h.op = 0xffff; }), 44, ParseError::bad_op},
      {"payload on shutdown", good_header(Op::shutdown, 4), 48, ParseError::payload_on_control},
      {"payload on request", good_header(Op::request, 1), 45, ParseError::payload_on_control},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    std::vector<uint8_t> b = bytes(c.hdr, c.total > 44 ? c.total - 44 : 0);
    b.resize(c.total);
    GuestPacket out;
    ParseError got = parse_guest_packet(b, kGuest, out);
    CHECK(describe(got) == describe(c.want));
    if (got == ParseError::none) {
      CHECK(out.hdr == c.hdr);
      CHECK(out.payload.size() == c.hdr.len);
      if (c.hdr.len) CHECK(out.payload.data() == b.data() + 44);
    } else if (c.total >= 44) {
      CHECK(out.hdr == c.hdr);  // kept so the muxer can answer with RST
      CHECK(out.payload.empty());
    }
  }
}

TEST_CASE("rst_reply swaps addresses and ports", "[vsock]") {
  Header r = rst_reply(good_header(Op::rw, 5));
  CHECK(r.src_cid == kHostCid);
  CHECK(r.dst_cid == kGuest);
  CHECK(r.src_port == 5000);
  CHECK(r.dst_port == 1234);
  CHECK(r.op == static_cast<uint16_t>(Op::rst));
  CHECK(r.type == kTypeStream);
  CHECK(r.len == 0);
}

TEST_CASE("hybrid handshake line: hostile input table", "[vsock]") {
  using S = HandshakeScan::Status;
  struct Case {
    std::string in;
    S want;
    uint32_t port;
    size_t consumed;
  };
  const std::vector<Case> cases = {
      {"CONNECT 1024\n", S::ok, 1024, 13},
      {"CONNECT 0\n", S::ok, 0, 10},
      {"CONNECT 4294967295\n", S::ok, 4294967295u, 19},
      {"CONNECT 52\nhello", S::ok, 52, 11},  // early stream bytes are not part of the line
      {"", S::incomplete, 0, 0},
      {"CONNECT 10", S::incomplete, 0, 0},
      {"CONN", S::incomplete, 0, 0},
      {"CONNECT 4294967296\n", S::bad, 0, 0},
      {"CONNECT 99999999999\n", S::bad, 0, 0},
      {"CONNECT -1\n", S::bad, 0, 0},
      {"CONNECT +1\n", S::bad, 0, 0},
      {"CONNECT \n", S::bad, 0, 0},
      {"CONNECT  5\n", S::bad, 0, 0},
      {"CONNECT 5 \n", S::bad, 0, 0},
      {"CONNECT 5\r\n", S::bad, 0, 0},
      {"connect 5\n", S::bad, 0, 0},
      {"CONNECT\t5\n", S::bad, 0, 0},
      {"\n", S::bad, 0, 0},
      {"GET / HTTP/1.1\n", S::bad, 0, 0},
      {std::string("CONNECT 5\0\n", 11), S::bad, 0, 0},
      {std::string(31, 'A'), S::incomplete, 0, 0},
      {std::string(32, 'A'), S::bad, 0, 0},
      {"CONNECT 000000000000000000000001\n", S::bad, 0, 0},  // too long a line
  };
  for (const auto& c : cases) {
    INFO("input: " << c.in);
    HandshakeScan r = scan_handshake(c.in);
    CHECK(static_cast<int>(r.status) == static_cast<int>(c.want));
    if (c.want == S::ok) {
      CHECK(r.port == c.port);
      CHECK(r.consumed == c.consumed);
    }
    if (c.want == S::bad) CHECK_FALSE(r.error.empty());
  }
  CHECK(handshake_ok(1073741824) == "OK 1073741824\n");
}
