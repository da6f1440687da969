#include "vmm/virtio/blk/blk_device.hpp"

#include <algorithm>
#include <cstring>

#include "common/log.hpp"
#include "vmm/virtio/spec.hpp"

namespace frakti::vmm::virtio::blk {
namespace {

common::log::RateLimiter g_req_log(10, std::chrono::seconds(5));

// Offsets in struct virtio_blk_config.
constexpr uint64_t kCfgCapacity = 0;
constexpr uint64_t kCfgSegMax = 12;
constexpr uint64_t kCfgSize = 16;  // up to and including seg_max; the rest reads as zero

}  // namespace

BlkDevice::BlkDevice(BlkConfig config)
    : slot_read_only_(config.read_only),
      queue_size_(config.queue_size),
      serial_(std::move(config.serial)) {
  if (config.path) file_ = BlockFile::open(*config.path, slot_read_only_);
}

uint32_t BlkDevice::device_type() const {
  return device_type::kBlock;
}

uint64_t BlkDevice::device_features() const {
  uint64_t f = feature_bit(feature::kVersion1) | feature_bit(feature::kRingIndirectDesc) |
               feature_bit(feature::kRingEventIdx) | feature_bit(blk_feature::kFlush) |
               feature_bit(blk_feature::kSegMax);
  if (slot_read_only_) f |= feature_bit(blk_feature::kRo);
  return f;
}

void BlkDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
  uint8_t cfg[kCfgSize] = {};
  uint64_t capacity = file_ ? file_->capacity_sectors() : 0;
  // A request's segments: everything but the header and status descriptors.
  uint32_t seg_max = queue_size_ > 2 ? queue_size_ - 2u : 1u;
  std::memcpy(cfg + kCfgCapacity, &capacity, 8);
  std::memcpy(cfg + kCfgSegMax, &seg_max, 4);
  for (size_t i = 0; i < data.size() && offset < kCfgSize && i < kCfgSize - offset; i++)
    data[i] = cfg[offset + i];
}

void BlkDevice::activate(const ActivateContext& ctx) {
  memory_ = &ctx.memory;
  queue_ = ctx.queues.at(0);
  interrupt_ = ctx.interrupt;
}

void BlkDevice::reset() {
  memory_ = nullptr;
  queue_ = nullptr;
  interrupt_.reset();
}

void BlkDevice::set_backing(std::optional<std::string> path, bool read_only, std::string serial) {
  // Open outside the lock: a slow file system must not stall the queue.
  std::optional<BlockFile> file;
  if (path) file = BlockFile::open(*path, read_only || slot_read_only_);
  {
    std::lock_guard lock(mutex());
    file_ = std::move(file);
    serial_ = std::move(serial);
    // Bumped under the lock that config reads take: a driver reading the 64-bit capacity
    // as two halves around the swap sees the generation change and reads again.
    signal_config_change();
  }
  common::log::info("virtio-blk", "slot backing is now {} ({})", path.value_or("empty"),
                    read_only || slot_read_only_ ? "read-only" : "read-write");
}

uint64_t BlkDevice::capacity_sectors() {
  std::lock_guard lock(mutex());
  return file_ ? file_->capacity_sectors() : 0;
}

void BlkDevice::process_queue(uint16_t index) {
  if (!queue_ || index != 0) return;
  while (auto chain = queue_->pop(*memory_)) complete(*chain);
  if (queue_->should_notify(*memory_)) interrupt_->signal_used_buffer();
}

void BlkDevice::complete(const DescriptorChain& chain) {
  ParseResult p = parse_request(chain);
  uint32_t written = 0;
  uint8_t status;
  switch (p.error) {
    case ParseError::none:
      status = execute(p.request, &written);
      break;
    case ParseError::unsupported:
      status = blk_status::kUnsupp;
      break;
    case ParseError::no_status:
      failed_++;
      if (g_req_log.allow())
        common::log::warn("virtio-blk", "request without a status byte; returned empty");
      queue_->add_used(*memory_, chain.head, 0);
      return;
    default:
      status = blk_status::kIoErr;
      if (g_req_log.allow())
        common::log::warn("virtio-blk", "malformed request: {}", to_string(p.error));
      break;
  }
  if (status != blk_status::kOk) failed_++;
  // The status byte goes last, after the data it vouches for.
  *p.request.status = status;
  queue_->add_used(*memory_, chain.head, written + 1);
}

uint8_t BlkDevice::execute(const Request& req, uint32_t* written) {
  switch (req.type) {
    case request_type::kIn:
    case request_type::kOut: {
      uint64_t capacity = file_ ? file_->capacity_sectors() : 0;
      if (!file_ || !in_range(req.sector, req.data_len, capacity)) {
        if (g_req_log.allow())
          common::log::warn("virtio-blk", "request for sectors {}+{} beyond capacity {}",
                            req.sector, req.data_len / kSectorSize, capacity);
        return blk_status::kIoErr;
      }
      uint64_t offset = req.sector * kSectorSize;
      if (req.type == request_type::kIn) {
        if (!file_->read(req.data, offset)) return blk_status::kIoErr;
        *written = static_cast<uint32_t>(req.data_len);
        return blk_status::kOk;
      }
      if (file_->read_only()) return blk_status::kIoErr;
      return file_->write(req.data, offset) ? blk_status::kOk : blk_status::kIoErr;
    }
    case request_type::kFlush:
      if (!file_ || file_->read_only()) return blk_status::kOk;
      return file_->flush() ? blk_status::kOk : blk_status::kIoErr;
    case request_type::kGetId: {
      // Zero-padded; not NUL-terminated when the serial fills all 20 bytes (as the spec says).
      char id[kIdBytes] = {};
      std::memcpy(id, serial_.data(), std::min(serial_.size(), kIdBytes));
      size_t done = 0;
      for (auto& v : req.data) {
        std::memcpy(v.iov_base, id + done, v.iov_len);
        done += v.iov_len;
      }
      *written = static_cast<uint32_t>(req.data_len);
      return blk_status::kOk;
    }
  }
  return blk_status::kUnsupp;
}

}  // namespace frakti::vmm::virtio::blk
