#include "vmm/virtio/vsock/packet.hpp"

namespace frakti::vmm::virtio::vsock {
namespace {

template <typename T>
T load_le(const uint8_t* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(p[i]) << (8 * i);
  return v;
}

template <typename T>
void store_le(uint8_t* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

bool known_op(uint16_t op) {
  return op >= static_cast<uint16_t>(Op::request) &&
         op <= static_cast<uint16_t>(Op::credit_request);
}

}  // namespace

std::string_view describe(ParseError e) {
  switch (e) {
    case ParseError::none:
      return "ok";
    case ParseError::short_header:
      return "packet shorter than the 44-byte header";
    case ParseError::bad_src_cid:
      return "source CID is not the guest's CID";
    case ParseError::bad_dst_cid:
      return "destination CID is not the host";
    case ParseError::bad_type:
      return "socket type is not STREAM";
    case ParseError::bad_op:
      return "unknown operation";
    case ParseError::oversized:
      return "payload length above the 64 KiB cap";
    case ParseError::truncated_payload:
      return "payload shorter than the header's len";
    case ParseError::payload_on_control:
      return "payload on a control operation";
  }
  return "unknown error";
}

Header decode_header(std::span<const uint8_t, kHeaderSize> b) {
  const uint8_t* p = b.data();
  Header h;
  h.src_cid = load_le<uint64_t>(p + 0);
  h.dst_cid = load_le<uint64_t>(p + 8);
  h.src_port = load_le<uint32_t>(p + 16);
  h.dst_port = load_le<uint32_t>(p + 20);
  h.len = load_le<uint32_t>(p + 24);
  h.type = load_le<uint16_t>(p + 28);
  h.op = load_le<uint16_t>(p + 30);
  h.flags = load_le<uint32_t>(p + 32);
  h.buf_alloc = load_le<uint32_t>(p + 36);
  h.fwd_cnt = load_le<uint32_t>(p + 40);
  return h;
}

void encode_header(const Header& h, std::span<uint8_t, kHeaderSize> out) {
  uint8_t* p = out.data();
  store_le(p + 0, h.src_cid);
  store_le(p + 8, h.dst_cid);
  store_le(p + 16, h.src_port);
  store_le(p + 20, h.dst_port);
  store_le(p + 24, h.len);
  store_le(p + 28, h.type);
  store_le(p + 30, h.op);
  store_le(p + 32, h.flags);
  store_le(p + 36, h.buf_alloc);
  store_le(p + 40, h.fwd_cnt);
}

ParseError parse_guest_packet(std::span<const uint8_t> bytes, uint64_t guest_cid,
                              GuestPacket& out) {
  out = GuestPacket{};
  if (bytes.size() < kHeaderSize) return ParseError::short_header;
  out.hdr = decode_header(bytes.first<kHeaderSize>());
  const Header& h = out.hdr;
  // Addresses first: a packet we cannot attribute to this guest gets no answer at all.
  if (h.src_cid != guest_cid) return ParseError::bad_src_cid;
  if (h.dst_cid != kHostCid) return ParseError::bad_dst_cid;
  if (h.type != kTypeStream) return ParseError::bad_type;
  if (!known_op(h.op)) return ParseError::bad_op;
  if (h.len > kMaxPayload) return ParseError::oversized;
  if (h.len > bytes.size() - kHeaderSize) return ParseError::truncated_payload;
  if (h.len != 0 && h.operation() != Op::rw) return ParseError::payload_on_control;
  out.payload = bytes.subspan(kHeaderSize, h.len);
  return ParseError::none;
}

Header rst_reply(const Header& to) {
  Header h;
  h.src_cid = kHostCid;
  h.dst_cid = to.src_cid;
  h.src_port = to.dst_port;
  h.dst_port = to.src_port;
  h.type = kTypeStream;
  h.op = static_cast<uint16_t>(Op::rst);
  return h;
}

}  // namespace frakti::vmm::virtio::vsock
