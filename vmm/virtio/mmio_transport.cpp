#include "vmm/virtio/mmio_transport.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "common/error.hpp"
#include "common/log.hpp"
#include "vmm/virtio/spec.hpp"

namespace frakti::vmm::virtio {
namespace {

common::log::RateLimiter g_reg_log(10, std::chrono::seconds(5));

template <typename... Args>
void guest_warn(fmt::format_string<Args...> f, Args&&... args) {
  uint64_t dropped = 0;
  if (!g_reg_log.allow(&dropped)) return;
  std::string msg = fmt::format(f, std::forward<Args>(args)...);
  if (dropped) msg += fmt::format(" ({} similar messages suppressed)", dropped);
  common::log::warn("virtio-mmio", "{}", msg);
}

uint64_t set_half(uint64_t v, bool high, uint32_t half) {
  return high ? (v & 0xffffffffull) | (uint64_t{half} << 32) : (v & ~0xffffffffull) | half;
}

}  // namespace

MmioTransport::MmioTransport(std::shared_ptr<VirtioDevice> device,
                             const memory::GuestMemory& memory, std::shared_ptr<irq::IrqLine> irq,
                             boost::asio::io_context& loop)
    : device_(std::move(device)),
      memory_(memory),
      interrupt_(std::make_shared<Interrupt>(std::move(irq))),
      loop_(loop),
      device_features_(device_->device_features()) {
  device_->attach_interrupt(interrupt_);
  auto sizes = device_->queue_max_sizes();
  for (uint16_t i = 0; i < sizes.size(); i++) {
    queues_.push_back(std::make_unique<Queue>(sizes[i]));
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    common::check(fd, "eventfd for virtio queue {} of device type {}", i, device_->device_type());
    eventfds_.emplace_back(fd);
    auto waiter = std::make_unique<boost::asio::posix::stream_descriptor>(loop_);
    waiter->assign(fd);
    waiters_.push_back(std::move(waiter));
  }
  for (uint16_t i = 0; i < waiters_.size(); i++) arm(i);
}

MmioTransport::~MmioTransport() {
  // The eventfds belong to eventfds_: detach them from asio without closing (this also
  // aborts the pending waits, whose handlers then return without touching *this).
  for (auto& w : waiters_) w->release();
  std::lock_guard lock(device_->mutex());
  if (active_) device_->reset();
}

bool MmioTransport::active() {
  std::lock_guard lock(device_->mutex());
  return active_;
}

void MmioTransport::arm(uint16_t index) {
  waiters_[index]->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                              [this, index](const boost::system::error_code& ec) {
                                if (ec) return;  // aborted: *this may be gone
                                on_notify(index);
                              });
}

void MmioTransport::on_notify(uint16_t index) {
  uint64_t count;
  // Drains the counter; EAGAIN (a spurious wake-up) is harmless.
  [[maybe_unused]] auto n = ::read(eventfds_[index].get(), &count, sizeof count);
  {
    std::lock_guard lock(device_->mutex());
    if (active_ && !queues_[index]->broken()) {
      try {
        device_->process_queue(index);
      } catch (const std::exception& e) {
        // Host-side failure while serving the queue: keep the loop alive, tell the driver.
        common::log::error("virtio", "device type {} queue {}: {}", device_->device_type(), index,
                           e.what());
        interrupt_->signal_needs_reset();
      }
    }
  }
  arm(index);
}

Queue* MmioTransport::selected_queue() {
  return queue_sel_ < queues_.size() ? queues_[queue_sel_].get() : nullptr;
}

void MmioTransport::read(uint64_t offset, std::span<uint8_t> data) {
  if (offset >= mmio_reg::kConfig) {
    std::lock_guard lock(device_->mutex());
    device_->read_config(offset - mmio_reg::kConfig, data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    guest_warn("ignored {}-byte read at register offset {:#x}", data.size(), offset);
    return;
  }
  uint32_t v = read_register(offset);
  std::memcpy(data.data(), &v, 4);
}

void MmioTransport::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= mmio_reg::kConfig) {
    std::lock_guard lock(device_->mutex());
    device_->write_config(offset - mmio_reg::kConfig, data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    guest_warn("ignored {}-byte write at register offset {:#x}", data.size(), offset);
    return;
  }
  uint32_t v;
  std::memcpy(&v, data.data(), 4);
  write_register(offset, v);
}

uint32_t MmioTransport::read_register(uint64_t offset) {
  using namespace mmio_reg;
  // Registers backed by atomics need no lock: interrupt handlers read them on every
  // interrupt and must not wait for a queue being served.
  switch (offset) {
    case kMagicValue:
      return kMagic;
    case kVersion:
      return 2;
    case kDeviceId:
      return device_->device_type();
    case mmio_reg::kVendorId:
      return kVendor;
    case kInterruptStatus:
      return interrupt_->status();
    case kConfigGeneration:
      return interrupt_->config_generation();
    case kShmLenLow:
    case kShmLenHigh:
    case kShmBaseLow:
    case kShmBaseHigh:
      return 0xffffffff;  // no shared memory regions
    default:
      break;
  }
  std::lock_guard lock(device_->mutex());
  Queue* q = selected_queue();
  switch (offset) {
    case kDeviceFeatures:
      if (device_features_sel_ > 1) return 0;
      return static_cast<uint32_t>(device_features_ >> (32 * device_features_sel_));
    case kQueueNumMax:
      return q ? q->max_size() : 0;  // 0: no such queue
    case kQueueReady:
      return q && q->ready() ? 1 : 0;
    case kStatus:
      return status_ | (interrupt_->needs_reset() ? status::kDeviceNeedsReset : 0);
    default:
      guest_warn("read of write-only or unknown register {:#x}", offset);
      return 0;
  }
}

void MmioTransport::write_register(uint64_t offset, uint32_t value) {
  using namespace mmio_reg;
  if (offset == kInterruptAck) {
    interrupt_->acknowledge(value);
    return;
  }
  if (offset == kQueueNotify) {
    // Only reached when no ioeventfd is registered (unit tests): same path as KVM's.
    if (value < eventfds_.size()) {
      uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(eventfds_[value].get(), &one, sizeof one);
    } else {
      guest_warn("notify for queue {} of a device with {} queues", value, eventfds_.size());
    }
    return;
  }
  std::lock_guard lock(device_->mutex());
  Queue* q = selected_queue();
  // Queue registers may change only while the queue is off and the device is not live.
  bool queue_writable = q && !q->ready() && !(status_ & status::kDriverOk);
  switch (offset) {
    case kDeviceFeaturesSel:
      device_features_sel_ = value;
      return;
    case kDriverFeaturesSel:
      driver_features_sel_ = value;
      return;
    case kDriverFeatures:
      if ((status_ & status::kDriver) && !(status_ & status::kFeaturesOk) &&
          driver_features_sel_ <= 1)
        driver_features_ = set_half(driver_features_, driver_features_sel_ == 1, value);
      else
        guest_warn("driver features written in status {:#x} (select {}); ignored", status_,
                   driver_features_sel_);
      return;
    case kQueueSel:
      queue_sel_ = value;
      return;
    case kStatus:
      set_status(value);
      return;
    case kShmSel:
      return;
    case kQueueNum:
    case kQueueReady:
    case kQueueDescLow:
    case kQueueDescHigh:
    case kQueueDriverLow:
    case kQueueDriverHigh:
    case kQueueDeviceLow:
    case kQueueDeviceHigh:
      break;
    default:
      guest_warn("write of read-only or unknown register {:#x}", offset);
      return;
  }
  if (offset == kQueueReady && q && value == 0 && !(status_ & status::kDriverOk)) {
    q->set_ready(false);
    return;
  }
  if (!queue_writable) {
    guest_warn("queue register {:#x} written for queue {} while not writable", offset, queue_sel_);
    return;
  }
  switch (offset) {
    case kQueueNum:
      q->set_size(value > 0xffff ? 0 : static_cast<uint16_t>(value));
      break;
    case kQueueReady:
      if (value == 1) {
        std::string why = q->validate(memory_);
        if (why.empty())
          q->set_ready(true);
        else
          guest_warn("queue {} not enabled: {}", queue_sel_, why);
      }
      break;
    case kQueueDescLow:
      q->set_desc_table(set_half(q->desc_table(), false, value));
      break;
    case kQueueDescHigh:
      q->set_desc_table(set_half(q->desc_table(), true, value));
      break;
    case kQueueDriverLow:
      q->set_avail_ring(set_half(q->avail_ring(), false, value));
      break;
    case kQueueDriverHigh:
      q->set_avail_ring(set_half(q->avail_ring(), true, value));
      break;
    case kQueueDeviceLow:
      q->set_used_ring(set_half(q->used_ring(), false, value));
      break;
    case kQueueDeviceHigh:
      q->set_used_ring(set_half(q->used_ring(), true, value));
      break;
  }
}

bool MmioTransport::features_acceptable() const {
  return (driver_features_ & feature_bit(feature::kVersion1)) &&
         (driver_features_ & ~device_features_) == 0;
}

void MmioTransport::set_status(uint32_t value) {
  if (value == 0) {
    reset();
    return;
  }
  if (status_ & ~value) {
    guest_warn("status write {:#x} clears bits of {:#x}; ignored", value, status_);
    return;
  }
  // The driver adds bits one step at a time (section 3.1.1); take them in that order and
  // stop at the first one that is out of sequence.
  uint32_t add = value & ~status_;
  if (add & status::kFailed) {
    status_ |= status::kFailed;
    add &= ~status::kFailed;
  }
  if (add & status::kAcknowledge) {
    status_ |= status::kAcknowledge;
    add &= ~status::kAcknowledge;
  }
  if ((add & status::kDriver) && (status_ & status::kAcknowledge)) {
    status_ |= status::kDriver;
    add &= ~status::kDriver;
  }
  if ((add & status::kFeaturesOk) && (status_ & status::kDriver)) {
    add &= ~status::kFeaturesOk;
    // Leaving FEATURES_OK clear is how the device refuses (the driver reads it back).
    if (features_acceptable())
      status_ |= status::kFeaturesOk;
    else
      guest_warn("refused driver features {:#x} (offered {:#x}, VERSION_1 required)",
                 driver_features_, device_features_);
  }
  if ((add & status::kDriverOk) && (status_ & status::kFeaturesOk)) {
    add &= ~status::kDriverOk;
    status_ |= status::kDriverOk;
    activate();
  }
  if (add) guest_warn("status bits {:#x} out of sequence (status {:#x}); ignored", add, status_);
}

void MmioTransport::activate() {
  for (uint16_t i = 0; i < queues_.size(); i++) {
    std::string why = queues_[i]->ready() ? queues_[i]->validate(memory_) : "not ready";
    if (!why.empty()) {
      guest_warn("device type {} not activated: queue {} {}", device_->device_type(), i, why);
      interrupt_->signal_needs_reset();
      return;
    }
  }
  std::vector<Queue*> queues;
  for (auto& q : queues_) {
    q->set_features(driver_features_);
    q->set_broken_handler([irq = interrupt_] { irq->signal_needs_reset(); });
    queues.push_back(q.get());
  }
  interrupt_->set_live(true);
  try {
    device_->activate(
        ActivateContext{memory_, std::move(queues), interrupt_, loop_, driver_features_});
    active_ = true;
  } catch (const std::exception& e) {
    common::log::error("virtio", "activating device type {}: {}", device_->device_type(), e.what());
    interrupt_->signal_needs_reset();
    return;
  }
  // Buffers the driver queued before DRIVER_OK (and kicks that raced with it) get served.
  for (auto& fd : eventfds_) {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd.get(), &one, sizeof one);
  }
}

void MmioTransport::reset() {
  if (active_) device_->reset();
  active_ = false;
  interrupt_->set_live(false);
  interrupt_->clear();
  for (auto& q : queues_) q->reset();
  status_ = 0;
  device_features_sel_ = driver_features_sel_ = queue_sel_ = 0;
  driver_features_ = 0;
}

std::string kernel_cmdline_fragment(uint64_t base, uint64_t size, uint32_t irq) {
  std::string sz = size % 1024 == 0 ? fmt::format("{}K", size / 1024) : fmt::format("{}", size);
  return fmt::format("virtio_mmio.device={}@{:#x}:{}", sz, base, irq);
}

}  // namespace frakti::vmm::virtio
