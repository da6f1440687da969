#pragma once
// NetDevice: virtio-net (virtio 1.2 section 5.1) with one rx and one tx queue, no offloads:
// plain Ethernet frames behind a virtio_net_hdr_v1, moved between guest memory and a
// NetBackend (a TAP in production) without an intermediate copy.
//
// Rx backpressure: the backend fd is watched only while the guest has rx buffers. When the
// rx ring runs dry the device stops reading, frames wait in the TAP's own queue (where the
// host kernel drops them when it overflows), and the driver's next rx notification starts
// the watch again.

#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstdint>
#include <memory>
#include <optional>

#include "vmm/virtio/net/net_backend.hpp"
#include "vmm/virtio/virtio_device.hpp"

namespace frakti::vmm::virtio::net {

/// Feature bits of virtio-net that we use.
namespace net_feature {
inline constexpr unsigned kMac = 5;
inline constexpr unsigned kStatus = 16;
}  // namespace net_feature

class NetDevice : public VirtioDevice {
 public:
  static constexpr uint16_t kRxQueue = 0;
  static constexpr uint16_t kTxQueue = 1;
  /// Frames moved per wake-up before yielding the loop to other devices.
  static constexpr int kBudget = 64;

  NetDevice(std::unique_ptr<NetBackend> backend, std::array<uint8_t, 6> mac,
            uint16_t queue_size = 256);
  ~NetDevice() override;

  uint32_t device_type() const override;
  uint64_t device_features() const override;
  std::vector<uint16_t> queue_max_sizes() const override { return {queue_size_, queue_size_}; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void activate(const ActivateContext& ctx) override;
  void reset() override;
  void process_queue(uint16_t index) override;

  /// Frames dropped: tx frames the backend refused or that were malformed, rx buffers
  /// too small for a header. Takes no lock (a plain counter read for stats and tests).
  uint64_t dropped_frames() const { return dropped_; }
  /// Whether the backend fd is being watched (false while the guest has no rx buffers).
  bool rx_watching();

 private:
  void process_tx();
  /// Moves frames from the backend into rx buffers until either side runs dry.
  void process_rx();
  void watch_rx();
  void on_backend_readable();

  std::unique_ptr<NetBackend> backend_;
  const std::array<uint8_t, 6> mac_;
  const uint16_t queue_size_;

  // Guarded by mutex(); set by activate(), cleared by reset().
  bool active_ = false;
  const memory::GuestMemory* memory_ = nullptr;
  Queue* rx_ = nullptr;
  Queue* tx_ = nullptr;
  std::shared_ptr<Interrupt> interrupt_;
  boost::asio::io_context* loop_ = nullptr;
  // Loop thread only (created on first use there).
  std::optional<boost::asio::posix::stream_descriptor> watcher_;
  bool watching_ = false;  // guarded by mutex()
  uint64_t dropped_ = 0;
};

}  // namespace frakti::vmm::virtio::net
