#include "vmm/virtio/descriptor_chain.hpp"

#include <algorithm>
#include <cstring>

namespace frakti::vmm::virtio {
namespace {

uint32_t total(const std::vector<std::span<uint8_t>>& bufs) {
  uint64_t n = 0;
  for (auto& b : bufs) n += b.size();
  return static_cast<uint32_t>(n);  // the queue caps chains far below 4 GiB
}

std::vector<iovec> slice(const std::vector<std::span<uint8_t>>& bufs, size_t from, size_t len) {
  std::vector<iovec> out;
  for (auto& b : bufs) {
    if (len == 0) break;
    if (from >= b.size()) {
      from -= b.size();
      continue;
    }
    size_t n = std::min(b.size() - from, len);
    out.push_back(iovec{b.data() + from, n});
    len -= n;
    from = 0;
  }
  return out;
}

}  // namespace

uint32_t DescriptorChain::readable_size() const {
  return total(readable);
}
uint32_t DescriptorChain::writable_size() const {
  return total(writable);
}

std::vector<iovec> DescriptorChain::readable_iov(size_t from, size_t len) const {
  return slice(readable, from, len);
}
std::vector<iovec> DescriptorChain::writable_iov(size_t from, size_t len) const {
  return slice(writable, from, len);
}

size_t DescriptorChain::read(size_t from, std::span<uint8_t> out) const {
  size_t done = 0;
  for (auto& v : slice(readable, from, out.size())) {
    std::memcpy(out.data() + done, v.iov_base, v.iov_len);
    done += v.iov_len;
  }
  return done;
}

size_t DescriptorChain::write(size_t to, std::span<const uint8_t> in) const {
  size_t done = 0;
  for (auto& v : slice(writable, to, in.size())) {
    std::memcpy(v.iov_base, in.data() + done, v.iov_len);
    done += v.iov_len;
  }
  return done;
}

}  // namespace frakti::vmm::virtio
