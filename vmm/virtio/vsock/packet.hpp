#pragma once
// Virtio-vsock packets (virtio 1.2 §5.10.6): decoding and validating the header of every packet
// the guest places on the tx queue, and encoding the headers we put on the rx queue. This is
// the trust boundary of the device: everything past parse_guest_packet() may rely on the
// header's addresses, type, op and length being sane.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace frakti::vmm::virtio::vsock {

/// Virtio device id of the socket device.
inline constexpr uint32_t kDeviceId = 19;
/// Queue indices: the guest posts empty buffers on rx, packets for us on tx.
inline constexpr uint16_t kRxQueue = 0;
inline constexpr uint16_t kTxQueue = 1;
inline constexpr uint16_t kEventQueue = 2;
/// The host's context id (VMADDR_CID_HOST).
inline constexpr uint64_t kHostCid = 2;
/// Size of struct virtio_vsock_hdr on the wire.
inline constexpr size_t kHeaderSize = 44;
/// VIRTIO_VSOCK_TYPE_STREAM, the only socket type we implement.
inline constexpr uint16_t kTypeStream = 1;
/// SHUTDOWN flags: the sender will receive no more / send no more.
inline constexpr uint32_t kShutdownRcv = 1;
inline constexpr uint32_t kShutdownSend = 2;
inline constexpr uint32_t kShutdownBoth = kShutdownRcv | kShutdownSend;
/// Largest payload accepted from the guest in one packet (Linux sends at most 64 KiB).
inline constexpr uint32_t kMaxPayload = 64 * 1024;

/// VIRTIO_VSOCK_OP_*.
enum class Op : uint16_t {
  request = 1,
  response = 2,
  rst = 3,
  shutdown = 4,
  rw = 5,
  credit_update = 6,
  credit_request = 7,
};

/// struct virtio_vsock_hdr in host byte order.
struct Header {
  uint64_t src_cid = 0;
  uint64_t dst_cid = 0;
  uint32_t src_port = 0;
  uint32_t dst_port = 0;
  uint32_t len = 0;
  uint16_t type = 0;
  uint16_t op = 0;
  uint32_t flags = 0;
  uint32_t buf_alloc = 0;
  uint32_t fwd_cnt = 0;

  Op operation() const { return static_cast<Op>(op); }
  bool operator==(const Header&) const = default;
};

/// Why a guest packet was rejected.
enum class ParseError {
  none,
  short_header,        ///< fewer than kHeaderSize bytes
  bad_src_cid,         ///< src_cid is not the guest's CID (spoofed or misconfigured)
  bad_dst_cid,         ///< not addressed to the host
  bad_type,            ///< not a stream packet
  bad_op,              ///< unknown operation
  oversized,           ///< len above kMaxPayload
  truncated_payload,   ///< fewer payload bytes than len
  payload_on_control,  ///< len != 0 on an op that carries no data
};

/// Human-readable reason, for log lines and tests.
std::string_view describe(ParseError e);

/// A validated packet from the guest; payload points into the caller's bytes.
struct GuestPacket {
  Header hdr;
  std::span<const uint8_t> payload;
};

/// Decodes and validates one packet (header followed by its payload) sent by a guest whose
/// CID is guest_cid. On success returns ParseError::none and fills out. On failure out.hdr
/// still holds the decoded header whenever at least kHeaderSize bytes were given, so the
/// caller can answer a well-addressed but malformed packet with RST.
ParseError parse_guest_packet(std::span<const uint8_t> bytes, uint64_t guest_cid, GuestPacket& out);

/// Decodes the little-endian header at the start of bytes (which must hold kHeaderSize).
Header decode_header(std::span<const uint8_t, kHeaderSize> bytes);
/// Encodes hdr little-endian into out.
void encode_header(const Header& hdr, std::span<uint8_t, kHeaderSize> out);

/// A packet for the guest: header plus payload (hdr.len == payload.size()).
struct Packet {
  Header hdr;
  std::vector<uint8_t> payload;
};

/// Header for an RST answering `to` (a packet from the guest): addresses and ports swapped.
Header rst_reply(const Header& to);

}  // namespace frakti::vmm::virtio::vsock
