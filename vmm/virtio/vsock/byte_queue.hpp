#pragma once
// ByteQueue: a FIFO of bytes with a contiguous front, for the per-connection stream buffers.
// Capacity is enforced by the owner (Connection); this class only stores.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace frakti::vmm::virtio::vsock {

class ByteQueue {
 public:
  size_t size() const { return buf_.size() - head_; }
  bool empty() const { return size() == 0; }
  /// All queued bytes, oldest first.
  std::span<const uint8_t> front() const { return std::span<const uint8_t>(buf_).subspan(head_); }
  void push(std::span<const uint8_t> data) { buf_.insert(buf_.end(), data.begin(), data.end()); }
  /// Drops the n oldest bytes (n <= size()).
  void pop(size_t n) {
    head_ += n;
    if (head_ == buf_.size()) {
      buf_.clear();
      head_ = 0;
    } else if (head_ > buf_.size() / 2 && head_ >= 4096) {
      // Compact once the dead prefix dominates so memory stays proportional to size().
      buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void clear() {
    std::vector<uint8_t>().swap(buf_);
    head_ = 0;
  }

 private:
  std::vector<uint8_t> buf_;
  size_t head_ = 0;
};

}  // namespace frakti::vmm::virtio::vsock
