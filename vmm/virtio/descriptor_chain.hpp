#pragma once
// DescriptorChain: one validated buffer a driver made available, as host spans. The queue has
// already checked every index, length and address, so a device only sees memory that lies
// inside guest RAM. The bytes themselves stay guest-controlled and may change under the device
// (the guest runs concurrently): copy a header out before you validate and use it.

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <vector>

namespace frakti::vmm::virtio {

struct DescriptorChain {
  /// Head descriptor index: what Queue::add_used() takes back.
  uint16_t head = 0;
  /// Device-readable buffers (driver to device), in chain order. Empty descriptors are left out.
  std::vector<std::span<uint8_t>> readable;
  /// Device-writable buffers (device to driver), in chain order, after all readable ones.
  std::vector<std::span<uint8_t>> writable;

  /// Total bytes in readable (resp. writable); the queue caps these, so they fit in 32 bits.
  uint32_t readable_size() const;
  uint32_t writable_size() const;

  /// Copies up to out.size() readable bytes starting at byte offset `from`; returns the count.
  size_t read(size_t from, std::span<uint8_t> out) const;
  /// Copies up to in.size() bytes into the writable buffers starting at byte offset `to`;
  /// returns the count written.
  size_t write(size_t to, std::span<const uint8_t> in) const;

  /// iovecs for [from, from+len) of the readable (resp. writable) buffers, for preadv/pwritev
  /// straight into guest memory; shorter than len when the buffers end first.
  std::vector<iovec> readable_iov(size_t from, size_t len) const;
  std::vector<iovec> writable_iov(size_t from, size_t len) const;
};

}  // namespace frakti::vmm::virtio
