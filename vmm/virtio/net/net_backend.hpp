#pragma once
// NetBackend: where guest frames go to and come from. Each call moves one whole frame, with a
// 12-byte virtio_net_hdr_v1 in front, in one readv/writev: a TAP opened by open_tap() behaves
// that way, and so does one end of a socketpair(AF_UNIX, SOCK_SEQPACKET), which unit tests use.

#include <sys/types.h>
#include <sys/uio.h>

#include <vector>

#include "common/fd.hpp"

namespace frakti::vmm::virtio::net {

class NetBackend {
 public:
  virtual ~NetBackend() = default;
  /// A non-blocking fd that polls readable when a frame is waiting.
  virtual int fd() const = 0;
  /// Reads one frame into iov; like readv(2) (-1 with errno EAGAIN when none is waiting).
  virtual ssize_t read_frame(const std::vector<iovec>& iov) = 0;
  /// Writes one frame from iov; like writev(2).
  virtual ssize_t write_frame(const std::vector<iovec>& iov) = 0;
};

/// A backend over any frame-preserving non-blocking fd (TAP, SOCK_SEQPACKET).
class FdNetBackend : public NetBackend {
 public:
  explicit FdNetBackend(common::Fd fd) : fd_(std::move(fd)) {}
  int fd() const override { return fd_.get(); }
  ssize_t read_frame(const std::vector<iovec>& iov) override;
  ssize_t write_frame(const std::vector<iovec>& iov) override;

 private:
  common::Fd fd_;
};

}  // namespace frakti::vmm::virtio::net
