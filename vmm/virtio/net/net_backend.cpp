#include "vmm/virtio/net/net_backend.hpp"

#include <limits.h>

#include <algorithm>

#include "common/error.hpp"

namespace frakti::vmm::virtio::net {

ssize_t FdNetBackend::read_frame(const std::vector<iovec>& iov) {
  int n = static_cast<int>(std::min<size_t>(iov.size(), IOV_MAX));
  return common::retry_eintr([&] { return ::readv(fd_.get(), iov.data(), n); });
}

ssize_t FdNetBackend::write_frame(const std::vector<iovec>& iov) {
  int n = static_cast<int>(std::min<size_t>(iov.size(), IOV_MAX));
  return common::retry_eintr([&] { return ::writev(fd_.get(), iov.data(), n); });
}

}  // namespace frakti::vmm::virtio::net
