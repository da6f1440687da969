#pragma once
// VirtioDevice: what a virtio device model (blk, net, vsock) implements; the transport
// (virtio-mmio, MmioTransport) turns guest register accesses into these calls.
//
// Threading model
//   - MMIO register accesses arrive on vCPU threads. The transport calls read_config(),
//     write_config(), activate() and reset() from there, always with mutex() held.
//   - Queue processing runs on the VMM's single event-loop thread (one boost::asio::io_context).
//     Each queue has an eventfd owned by the transport. The VMM registers it with KVM_IOEVENTFD
//     at the QueueNotify address with datamatch = queue index, so a guest notification never
//     leaves the kernel; without that registration (unit tests) a QueueNotify write signals the
//     same eventfd. The transport waits on every eventfd on the loop and calls
//     process_queue(index) with mutex() held, only while the device is active.
//   - A device's own loop handlers (a TAP fd, vsock host sockets, ...) must take mutex() before
//     touching device state, and must check that the device is still active: activate() and
//     reset() run on vCPU threads. Create, arm and cancel asio I/O objects only on the loop
//     thread (from activate()/reset(), boost::asio::post() to ctx.loop), since asio I/O
//     objects are not thread-safe.
//   - Other threads (the control socket) take mutex() as well, e.g. blk's set_backing().
//   - Interrupts go out through Interrupt (any thread) and from there through an
//     irq::IrqLine: a KVM irqfd in production, a counter in tests.
//
// Guest input never throws out of these calls: bad requests become virtio status values, and
// the queue itself swallows malformed chains. A host failure inside activate() may throw; the
// transport then reports DEVICE_NEEDS_RESET instead of activating.

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "vmm/memory/guest_memory.hpp"
#include "vmm/virtio/interrupt.hpp"
#include "vmm/virtio/queue.hpp"

namespace frakti::vmm::virtio {

/// Everything a device needs once the driver set DRIVER_OK. References stay valid until the
/// matching reset() returns.
struct ActivateContext {
  const memory::GuestMemory& memory;
  /// One per queue, in queue-index order; all ready and validated by the transport.
  std::vector<Queue*> queues;
  /// Used-buffer and config-change interrupts for this device.
  std::shared_ptr<Interrupt> interrupt;
  /// The VMM's event loop (for the device's own fds).
  boost::asio::io_context& loop;
  /// Features the driver accepted (a subset of device_features(), always with VERSION_1).
  uint64_t driver_features;
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  /// Device type id (spec section 5: 1 net, 2 block, 19 vsock).
  virtual uint32_t device_type() const = 0;
  /// Feature bits offered to the driver; the transport adds nothing, so include
  /// feature_bit(feature::kVersion1) and any ring features the device supports.
  virtual uint64_t device_features() const = 0;
  /// Number of queues and each one's maximum size (a power of two).
  virtual std::vector<uint16_t> queue_max_sizes() const = 0;

  /// Reads data.size() bytes of device config space at offset; bytes past the end of the
  /// config space read as zero (data arrives zeroed).
  virtual void read_config(uint64_t offset, std::span<uint8_t> data) = 0;
  /// Driver write to config space; most devices ignore it.
  virtual void write_config(uint64_t offset, std::span<const uint8_t> data) {}

  /// DRIVER_OK: start serving the queues. Called once per activation with mutex() held.
  virtual void activate(const ActivateContext& ctx) = 0;
  /// Driver reset (Status = 0) or failed activation: stop serving, forget the queues and
  /// the memory; the device must be ready for a new activate() afterwards.
  virtual void reset() = 0;
  /// The driver notified queue `index` (< queue_max_sizes().size()). Event-loop thread,
  /// mutex() held, device active.
  virtual void process_queue(uint16_t index) = 0;

  /// The VM is about to park its vCPUs (pause). Called on the pausing thread (the control
  /// thread), without mutex(). A device whose timers measure how long the guest takes to
  /// answer stops them here, since the guest cannot answer until vm_resumed().
  virtual void vm_paused() {}
  /// The VM's vCPUs run again. Same thread and lock rules as vm_paused().
  virtual void vm_resumed() {}

  /// The device lock (see the threading model above).
  std::mutex& mutex() { return mu_; }

  /// Called once by the transport when the device is plugged in; gives the device the
  /// Interrupt it can use for configuration changes even before activation.
  void attach_interrupt(std::shared_ptr<Interrupt> interrupt) { interrupt_ = std::move(interrupt); }

 protected:
  /// For devices whose config space changes at run time (blk media swap): bumps
  /// ConfigGeneration and raises a configuration-change interrupt when the driver is live.
  void signal_config_change() {
    if (interrupt_) interrupt_->signal_config_change();
  }

 private:
  std::mutex mu_;
  std::shared_ptr<Interrupt> interrupt_;
};

}  // namespace frakti::vmm::virtio
