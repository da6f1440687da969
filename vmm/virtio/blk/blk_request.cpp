#include "vmm/virtio/blk/blk_request.hpp"

#include <cstring>

namespace frakti::vmm::virtio::blk {
namespace {

// struct virtio_blk_outhdr.
struct Header {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};
static_assert(sizeof(Header) == 16);

}  // namespace

ParseResult parse_request(const DescriptorChain& chain) {
  ParseResult r;
  const uint64_t writable = chain.writable_size();
  const uint64_t readable = chain.readable_size();
  if (writable == 0) {
    r.error = ParseError::no_status;
    return r;
  }
  // The status byte is the last writable byte.
  r.request.status = chain.writable.back().data() + chain.writable.back().size() - 1;
  Header h;
  // Copied once: the guest may change the header under us, we act on this copy only.
  if (chain.read(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&h), sizeof h)) != sizeof h) {
    r.error = ParseError::short_header;
    return r;
  }
  r.request.type = h.type;
  r.request.sector = h.sector;
  const uint64_t in_data = writable - 1;          // writable bytes before the status
  const uint64_t out_data = readable - sizeof h;  // readable bytes after the header
  switch (h.type) {
    case request_type::kIn:
      if (out_data != 0)
        r.error = ParseError::bad_layout;
      else if (in_data % kSectorSize)
        r.error = ParseError::bad_length;
      else {
        r.request.data = chain.writable_iov(0, in_data);
        r.request.data_len = in_data;
      }
      break;
    case request_type::kOut:
      if (in_data != 0)
        r.error = ParseError::bad_layout;
      else if (out_data % kSectorSize)
        r.error = ParseError::bad_length;
      else {
        r.request.data = chain.readable_iov(sizeof h, out_data);
        r.request.data_len = out_data;
      }
      break;
    case request_type::kFlush:
      if (in_data != 0 || out_data != 0) r.error = ParseError::bad_layout;
      break;
    case request_type::kGetId:
      // The driver hands us a buffer of VIRTIO_BLK_ID_BYTES; accept shorter, fill what fits.
      if (out_data != 0 || in_data == 0)
        r.error = ParseError::bad_layout;
      else {
        uint64_t n = in_data < kIdBytes ? in_data : kIdBytes;
        r.request.data = chain.writable_iov(0, n);
        r.request.data_len = n;
      }
      break;
    default:
      r.error = ParseError::unsupported;
      break;
  }
  return r;
}

bool in_range(uint64_t sector, uint64_t len, uint64_t capacity_sectors) {
  uint64_t count = len / kSectorSize + (len % kSectorSize != 0);
  return sector <= capacity_sectors && count <= capacity_sectors - sector;
}

const char* to_string(ParseError e) {
  switch (e) {
    case ParseError::none:
      return "ok";
    case ParseError::no_status:
      return "no status byte";
    case ParseError::short_header:
      return "header shorter than 16 bytes";
    case ParseError::bad_layout:
      return "buffers in the wrong direction for the request type";
    case ParseError::bad_length:
      return "data not a whole number of sectors";
    case ParseError::unsupported:
      return "unsupported request type";
  }
  return "?";
}

}  // namespace frakti::vmm::virtio::blk
