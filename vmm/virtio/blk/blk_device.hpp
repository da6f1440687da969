#pragma once
// BlkDevice: virtio-blk over a host file (virtio 1.2 section 5.2), one request queue.
//
// Media swap: a drive may start empty (capacity 0: every read and write fails with IOERR) and
// get its backing file later through set_backing(), which the control socket calls to attach
// a container image to a reserved slot. The swap changes capacity and serial, bumps
// ConfigGeneration and raises a configuration-change interrupt so the guest re-reads the
// capacity.
//
// Read-only: VIRTIO_BLK_F_RO is negotiated once, at driver probe, so it belongs to the slot,
// not to the file: a slot created read-only offers F_RO and keeps every file it is given
// read-only. A slot created read-write may still be given a read-only file; the guest then
// does not know the drive is read-only and its writes fail with IOERR. Callers attach
// read-only images to read-only slots (the agent mounts them read-only anyway).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "vmm/virtio/blk/blk_request.hpp"
#include "vmm/virtio/blk/block_file.hpp"
#include "vmm/virtio/virtio_device.hpp"

namespace frakti::vmm::virtio::blk {

/// How a drive is created.
struct BlkConfig {
  /// Backing file; nullopt for an empty reserved slot.
  std::optional<std::string> path;
  /// Offer VIRTIO_BLK_F_RO: the slot is read-only for its whole life.
  bool read_only = false;
  /// Returned by GET_ID (at most 20 bytes are used); the agent finds drives by it.
  std::string serial;
  /// Maximum size of the request queue (power of two).
  uint16_t queue_size = 256;
};

class BlkDevice : public VirtioDevice {
 public:
  /// Opens the backing file when one is given; throws std::system_error if it cannot.
  explicit BlkDevice(BlkConfig config);

  uint32_t device_type() const override;
  uint64_t device_features() const override;
  std::vector<uint16_t> queue_max_sizes() const override { return {queue_size_}; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void activate(const ActivateContext& ctx) override;
  void reset() override;
  void process_queue(uint16_t index) override;

  /// Swaps the backing file (nullopt empties the slot). Thread-safe; takes mutex(). The file
  /// is opened read-only when `read_only` or the slot is read-only. Throws std::system_error
  /// when the file cannot be opened, leaving the old backing in place.
  void set_backing(std::optional<std::string> path, bool read_only, std::string serial);

  /// Current capacity in 512-byte sectors (0 when empty). Takes mutex().
  uint64_t capacity_sectors();
  /// Requests completed with a status other than OK, and chains without a status byte.
  uint64_t failed_requests() const { return failed_; }

 private:
  /// Executes one parsed request; returns the status and the bytes written into the chain.
  uint8_t execute(const Request& req, uint32_t* written);
  void complete(const DescriptorChain& chain);

  const bool slot_read_only_;
  const uint16_t queue_size_;
  std::optional<BlockFile> file_;  // guarded by mutex()
  std::string serial_;             // guarded by mutex()

  // Set by activate(), cleared by reset(); loop thread with mutex() held.
  const memory::GuestMemory* memory_ = nullptr;
  Queue* queue_ = nullptr;
  std::shared_ptr<Interrupt> interrupt_;
  uint64_t failed_ = 0;
};

}  // namespace frakti::vmm::virtio::blk
