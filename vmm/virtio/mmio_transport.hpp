#pragma once
// MmioTransport: the virtio-mmio register file, version 2 (virtio 1.2 section 4.2.2), in
// front of one VirtioDevice. It owns the device's queues and their notification eventfds,
// runs the device-status state machine, and activates / resets the device.
//
// Wiring (see README.md): register the transport on the MMIO bus at `base` with length
// kMmioSize; for each queue i register queue_eventfd(i) with KVM_IOEVENTFD at
// base + kQueueNotifyOffset, 4 bytes, datamatch i; route the IrqLine's irqfd to the GSI given
// on the kernel command line (kernel_cmdline_fragment()). The io_context must outlive the
// transport, and the loop must be stopped before the transport is destroyed.

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "vmm/bus/bus_device.hpp"
#include "vmm/irq/irq_line.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/virtio/interrupt.hpp"
#include "vmm/virtio/queue.hpp"
#include "vmm/virtio/virtio_device.hpp"

namespace frakti::vmm::virtio {

/// Register offsets of the virtio-mmio v2 register file.
namespace mmio_reg {
inline constexpr uint64_t kMagicValue = 0x000;
inline constexpr uint64_t kVersion = 0x004;
inline constexpr uint64_t kDeviceId = 0x008;
inline constexpr uint64_t kVendorId = 0x00c;
inline constexpr uint64_t kDeviceFeatures = 0x010;
inline constexpr uint64_t kDeviceFeaturesSel = 0x014;
inline constexpr uint64_t kDriverFeatures = 0x020;
inline constexpr uint64_t kDriverFeaturesSel = 0x024;
inline constexpr uint64_t kQueueSel = 0x030;
inline constexpr uint64_t kQueueNumMax = 0x034;
inline constexpr uint64_t kQueueNum = 0x038;
inline constexpr uint64_t kQueueReady = 0x044;
inline constexpr uint64_t kQueueNotify = 0x050;
inline constexpr uint64_t kInterruptStatus = 0x060;
inline constexpr uint64_t kInterruptAck = 0x064;
inline constexpr uint64_t kStatus = 0x070;
inline constexpr uint64_t kQueueDescLow = 0x080;
inline constexpr uint64_t kQueueDescHigh = 0x084;
inline constexpr uint64_t kQueueDriverLow = 0x090;
inline constexpr uint64_t kQueueDriverHigh = 0x094;
inline constexpr uint64_t kQueueDeviceLow = 0x0a0;
inline constexpr uint64_t kQueueDeviceHigh = 0x0a4;
inline constexpr uint64_t kShmSel = 0x0ac;
inline constexpr uint64_t kShmLenLow = 0x0b0;
inline constexpr uint64_t kShmLenHigh = 0x0b4;
inline constexpr uint64_t kShmBaseLow = 0x0b8;
inline constexpr uint64_t kShmBaseHigh = 0x0bc;
inline constexpr uint64_t kConfigGeneration = 0x0fc;
inline constexpr uint64_t kConfig = 0x100;
}  // namespace mmio_reg

class MmioTransport : public bus::BusDevice {
 public:
  /// Size of the MMIO window of one device.
  static constexpr uint64_t kMmioSize = 0x1000;
  /// Where KVM_IOEVENTFD registrations go, relative to the window base.
  static constexpr uint64_t kQueueNotifyOffset = mmio_reg::kQueueNotify;
  static constexpr uint32_t kMagic = 0x74726976;  // "virt"
  /// VendorID we report ("FRKT"); drivers do not look at it.
  /// (Not named kVendorId: inside the class that name would hide the register offset.)
  static constexpr uint32_t kVendor = 0x544b5246;

  /// Creates one eventfd per device queue and starts waiting on them on `loop`. Throws
  /// std::system_error when an eventfd cannot be created. `memory` must outlive the transport.
  MmioTransport(std::shared_ptr<VirtioDevice> device, const memory::GuestMemory& memory,
                std::shared_ptr<irq::IrqLine> irq, boost::asio::io_context& loop);
  ~MmioTransport() override;
  MmioTransport(const MmioTransport&) = delete;
  MmioTransport& operator=(const MmioTransport&) = delete;

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  /// Number of queues of the device.
  uint16_t num_queues() const { return static_cast<uint16_t>(queues_.size()); }
  /// The notification eventfd of queue `index` (for KVM_IOEVENTFD); not owned by the caller.
  int queue_eventfd(uint16_t index) const { return eventfds_.at(index).get(); }
  /// The device's interrupt status (shared with the device).
  const std::shared_ptr<Interrupt>& interrupt() const { return interrupt_; }
  VirtioDevice& device() { return *device_; }
  /// Whether the device is active (DRIVER_OK and activation succeeded).
  bool active();

 private:
  uint32_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint32_t value);
  void set_status(uint32_t value);
  bool features_acceptable() const;
  void activate();
  void reset();
  void arm(uint16_t index);
  void on_notify(uint16_t index);
  Queue* selected_queue();

  std::shared_ptr<VirtioDevice> device_;
  const memory::GuestMemory& memory_;
  std::shared_ptr<Interrupt> interrupt_;
  boost::asio::io_context& loop_;
  const uint64_t device_features_;

  // Guarded by device_->mutex().
  std::vector<std::unique_ptr<Queue>> queues_;
  uint32_t status_ = 0;
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_sel_ = 0;
  bool active_ = false;

  // Loop thread only (after construction).
  std::vector<common::Fd> eventfds_;
  std::vector<std::unique_ptr<boost::asio::posix::stream_descriptor>> waiters_;
};

/// The kernel command-line fragment announcing one virtio-mmio device:
/// "virtio_mmio.device=4K@0xd0000000:5".
std::string kernel_cmdline_fragment(uint64_t base, uint64_t size, uint32_t irq);

}  // namespace frakti::vmm::virtio
