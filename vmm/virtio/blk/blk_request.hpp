#pragma once
// Parsing of virtio-blk requests (virtio 1.2 section 5.2.6), separate from executing them so
// the rules for what a guest may send live in one small, table-tested place.
//
// A request chain is: a 16-byte device-readable header {type, reserved, sector}; then the data
// (device-readable for OUT, device-writable for IN and GET_ID); then one device-writable
// status byte, which is the last writable byte of the chain.

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "vmm/virtio/descriptor_chain.hpp"

namespace frakti::vmm::virtio::blk {

inline constexpr uint64_t kSectorSize = 512;
inline constexpr size_t kIdBytes = 20;  ///< VIRTIO_BLK_ID_BYTES

/// Request types (VIRTIO_BLK_T_*).
namespace request_type {
inline constexpr uint32_t kIn = 0;
inline constexpr uint32_t kOut = 1;
inline constexpr uint32_t kFlush = 4;
inline constexpr uint32_t kGetId = 8;
}  // namespace request_type

/// Status values (VIRTIO_BLK_S_*).
namespace blk_status {
inline constexpr uint8_t kOk = 0;
inline constexpr uint8_t kIoErr = 1;
inline constexpr uint8_t kUnsupp = 2;
}  // namespace blk_status

/// Feature bits of virtio-blk.
namespace blk_feature {
inline constexpr unsigned kSegMax = 2;
inline constexpr unsigned kRo = 5;
inline constexpr unsigned kFlush = 9;
}  // namespace blk_feature

/// Why a chain is not a usable request.
enum class ParseError {
  none,
  no_status,     ///< no writable byte at all: nowhere to report, returned with length 0
  short_header,  ///< fewer than 16 readable bytes
  bad_layout,    ///< data in the wrong direction for the type, or extra buffers
  bad_length,    ///< IN/OUT data not a whole number of sectors
  unsupported,   ///< type we do not implement (status UNSUPP)
};

/// A request whose layout has been checked (not yet its sector range: that needs capacity).
struct Request {
  uint32_t type = 0;
  uint64_t sector = 0;
  /// Data buffers in guest memory: what IN/GET_ID fill or OUT writes out.
  std::vector<iovec> data;
  /// Total bytes in data.
  uint64_t data_len = 0;
  /// The status byte in guest memory (valid unless the error is no_status).
  uint8_t* status = nullptr;
};

struct ParseResult {
  ParseError error = ParseError::none;
  Request request;
};

/// Splits a validated descriptor chain into a request. Never throws on guest data.
ParseResult parse_request(const DescriptorChain& chain);

/// Whether [sector, sector + len/512) lies within capacity (in sectors), without overflow.
bool in_range(uint64_t sector, uint64_t len, uint64_t capacity_sectors);

/// Human-readable name for logs.
const char* to_string(ParseError e);

}  // namespace frakti::vmm::virtio::blk
