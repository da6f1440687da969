#include "vmm/virtio/blk/block_file.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/error.hpp"
#include "common/log.hpp"
#include "vmm/virtio/blk/blk_request.hpp"

namespace frakti::vmm::virtio::blk {
namespace {
common::log::RateLimiter g_io_log(10, std::chrono::seconds(5));
}

BlockFile BlockFile::open(const std::string& path, bool read_only) {
  int fd = common::retry_eintr(
      [&] { return ::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC); });
  common::check(fd, "open block device backing file {} ({})", path,
                read_only ? "read-only" : "read-write");
  common::Fd owned(fd);
  struct stat st {};
  common::check(fstat(fd, &st), "stat block device backing file {}", path);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (S_ISBLK(st.st_mode)) {
    off_t end = lseek(fd, 0, SEEK_END);
    common::check(end, "find the size of block device {}", path);
    size = static_cast<uint64_t>(end);
  }
  return BlockFile(std::move(owned), path, read_only, size / kSectorSize);
}

bool BlockFile::read(const std::vector<iovec>& iov, uint64_t offset) const {
  return transfer(iov, offset, false);
}

bool BlockFile::write(const std::vector<iovec>& iov, uint64_t offset) const {
  return transfer(iov, offset, true);
}

bool BlockFile::transfer(std::vector<iovec> iov, uint64_t offset, bool write) const {
  size_t first = 0;
  while (first < iov.size()) {
    int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
    ssize_t n = common::retry_eintr([&] {
      return write ? pwritev(fd_.get(), iov.data() + first, count, static_cast<off_t>(offset))
                   : preadv(fd_.get(), iov.data() + first, count, static_cast<off_t>(offset));
    });
    if (n <= 0) {
      // n == 0: the file shrank under us (or a write made no progress).
      int err = n < 0 ? errno : 0;
      if (g_io_log.allow())
        common::log::warn("virtio-blk", "{} {} at offset {}: {}", write ? "pwritev" : "preadv",
                          path_, offset, err ? std::strerror(err) : "end of file");
      return false;
    }
    offset += static_cast<uint64_t>(n);
    // Skip the iovecs (and part of one) that were transferred.
    size_t left = static_cast<size_t>(n);
    while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (left) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return true;
}

bool BlockFile::flush() const {
  if (common::retry_eintr([&] { return fdatasync(fd_.get()); }) == 0) return true;
  if (g_io_log.allow())
    common::log::warn("virtio-blk", "fdatasync {}: {}", path_, std::strerror(errno));
  return false;
}

}  // namespace frakti::vmm::virtio::blk
