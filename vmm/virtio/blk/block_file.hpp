#pragma once
// BlockFile: the host file behind a virtio-blk drive. Vectored I/O goes straight between the
// file and guest memory (the iovecs point into guest RAM), so no request is ever copied.

#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/fd.hpp"

namespace frakti::vmm::virtio::blk {

class BlockFile {
 public:
  /// Opens path read-only or read-write (O_CLOEXEC). Throws std::system_error naming the path.
  /// The capacity is the file size rounded down to whole sectors.
  static BlockFile open(const std::string& path, bool read_only);

  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }
  uint64_t capacity_sectors() const { return capacity_; }

  /// Fills iov from the file at byte offset; false on an I/O error or end of file (logged).
  bool read(const std::vector<iovec>& iov, uint64_t offset) const;
  /// Writes iov to the file at byte offset; false on an I/O error (logged).
  bool write(const std::vector<iovec>& iov, uint64_t offset) const;
  /// fdatasync; false on error (logged).
  bool flush() const;

 private:
  BlockFile(common::Fd fd, std::string path, bool read_only, uint64_t capacity)
      : fd_(std::move(fd)), path_(std::move(path)), read_only_(read_only), capacity_(capacity) {}
  bool transfer(std::vector<iovec> iov, uint64_t offset, bool write) const;

  common::Fd fd_;
  std::string path_;
  bool read_only_;
  uint64_t capacity_;
};

}  // namespace frakti::vmm::virtio::blk
