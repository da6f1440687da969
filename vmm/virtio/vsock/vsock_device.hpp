#pragma once
// VsockDevice: the virtio socket device (virtio 1.2 §5.10) as a VirtioDevice. The queues are
// plumbing; the streams live in the Muxer:
//   tx (1)     every chain is one packet from the guest -> Muxer::on_guest_packet()
//   rx (0)     empty buffers from the guest, filled from Muxer::next_packet_for_guest()
//              whenever both a buffer and a packet exist (a tx or rx notification, or the
//              muxer's wake-up when host sockets produce something)
//   event (2)  kept but never used (we send no transport-reset events; no snapshot/restore)
// The config space holds the guest's CID (le64).
//
// Threads: construction and destruction off the running loop (or on it); activate() and
// reset() on vCPU threads with mutex() held; everything else on the loop thread. The muxer's
// state is touched only on the loop thread.

#include <cstdint>
#include <memory>
#include <string>

#include "vmm/virtio/virtio_device.hpp"
#include "vmm/virtio/vsock/muxer.hpp"

namespace frakti::vmm::virtio::vsock {

/// How the device is created.
struct VsockConfig {
  /// The guest's CID (3 or more; 0-2 are reserved).
  uint64_t guest_cid = 3;
  /// Host Unix socket path (hybrid protocol); guest connections to port P go to
  /// "<uds_path>_P". Must fit sockaddr_un with the suffix.
  std::string uds_path;
  MuxerLimits limits;
};

class VsockDevice : public VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint16_t kEventQueueSize = 16;

  /// Creates the muxer on `loop` and starts listening on config.uds_path at once, so host
  /// clients can connect while the guest boots (their REQUEST waits for the driver, within
  /// the connect timeout). Throws std::invalid_argument for a reserved CID and
  /// std::system_error when the socket cannot be created.
  VsockDevice(boost::asio::io_context& loop, VsockConfig config);
  ~VsockDevice() override;

  uint32_t device_type() const override { return kDeviceId; }
  uint64_t device_features() const override;
  std::vector<uint16_t> queue_max_sizes() const override {
    return {kQueueSize, kQueueSize, kEventQueueSize};
  }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void activate(const ActivateContext& ctx) override;
  void reset() override;
  void process_queue(uint16_t index) override;
  /// Stops the muxer's connect and shutdown timeouts (posted to the loop).
  void vm_paused() override;
  /// Restarts them, moved later by the pause, and drains waiting packets (posted).
  void vm_resumed() override;

  /// The muxer, for stats and tests (loop thread only).
  Muxer& muxer() { return *muxer_; }
  /// rx buffers too small for a header plus one byte, returned empty.
  uint64_t short_rx_buffers() const { return short_rx_; }

 private:
  void process_tx();
  void fill_rx();
  void on_muxer_ready();

  const uint64_t guest_cid_;
  boost::asio::io_context& loop_;
  std::unique_ptr<Muxer> muxer_;

  // Set by activate(), cleared by reset(); guarded by mutex().
  bool active_ = false;
  const memory::GuestMemory* memory_ = nullptr;
  Queue* rx_ = nullptr;
  Queue* tx_ = nullptr;
  std::shared_ptr<Interrupt> interrupt_;
  bool tx_continuation_posted_ = false;
  uint64_t short_rx_ = 0;
  std::vector<uint8_t> tx_buf_;
  // Posted handlers hold a weak reference and do nothing once the device is gone.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace frakti::vmm::virtio::vsock
