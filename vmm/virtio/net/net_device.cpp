#include "vmm/virtio/net/net_device.hpp"

#include <cerrno>
#include <cstring>

#include "common/log.hpp"
#include "vmm/virtio/net/tap.hpp"
#include "vmm/virtio/spec.hpp"

namespace frakti::vmm::virtio::net {
namespace {

common::log::RateLimiter g_net_log(10, std::chrono::seconds(5));

template <typename... Args>
void net_warn(fmt::format_string<Args...> f, Args&&... args) {
  if (g_net_log.allow()) common::log::warn("virtio-net", f, std::forward<Args>(args)...);
}

constexpr uint16_t kLinkUp = 1;  // VIRTIO_NET_S_LINK_UP
constexpr size_t kNumBuffersOffset = 10;

}  // namespace

NetDevice::NetDevice(std::unique_ptr<NetBackend> backend, std::array<uint8_t, 6> mac,
                     uint16_t queue_size)
    : backend_(std::move(backend)), mac_(mac), queue_size_(queue_size) {}

NetDevice::~NetDevice() {
  // The backend owns the fd; asio must not close it. Aborts a pending wait (the loop has
  // stopped by now, so its handler never runs against a destroyed device).
  if (watcher_) watcher_->release();
}

uint32_t NetDevice::device_type() const {
  return device_type::kNet;
}

uint64_t NetDevice::device_features() const {
  return feature_bit(feature::kVersion1) | feature_bit(feature::kRingIndirectDesc) |
         feature_bit(feature::kRingEventIdx) | feature_bit(net_feature::kMac) |
         feature_bit(net_feature::kStatus);
}

void NetDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
  // struct virtio_net_config: mac[6], status (u16).
  uint8_t cfg[8] = {};
  std::memcpy(cfg, mac_.data(), 6);
  std::memcpy(cfg + 6, &kLinkUp, 2);
  for (size_t i = 0; i < data.size() && offset < sizeof cfg && i < sizeof cfg - offset; i++)
    data[i] = cfg[offset + i];
}

void NetDevice::activate(const ActivateContext& ctx) {
  memory_ = &ctx.memory;
  rx_ = ctx.queues.at(kRxQueue);
  tx_ = ctx.queues.at(kTxQueue);
  interrupt_ = ctx.interrupt;
  loop_ = &ctx.loop;
  active_ = true;
  // No need to watch the backend here: the transport kicks every queue after activation,
  // and process_queue(kRxQueue) starts the watch on the loop thread.
}

void NetDevice::reset() {
  // A pending watch stays armed; its handler sees !active_ and stops (loop thread).
  active_ = false;
  memory_ = nullptr;
  rx_ = tx_ = nullptr;
  interrupt_.reset();
}

bool NetDevice::rx_watching() {
  std::lock_guard lock(mutex());
  return watching_;
}

void NetDevice::process_queue(uint16_t index) {
  if (!active_) return;
  if (index == kTxQueue) process_tx();
  if (index == kRxQueue) process_rx();
}

void NetDevice::process_tx() {
  const uint8_t zero_hdr[kVnetHdrSize] = {};
  while (auto chain = tx_->pop(*memory_)) {
    uint32_t len = chain->readable_size();
    if (len < kVnetHdrSize) {
      dropped_++;
      net_warn("tx chain of {} bytes has no virtio-net header; dropped", len);
    } else {
      // No offloads were offered, so the header carries nothing we honour: send a clean
      // one instead of the guest's (the host kernel would act on GSO/csum fields).
      std::vector<iovec> iov{{const_cast<uint8_t*>(zero_hdr), kVnetHdrSize}};
      auto frame = chain->readable_iov(kVnetHdrSize, len - kVnetHdrSize);
      iov.insert(iov.end(), frame.begin(), frame.end());
      if (backend_->write_frame(iov) < 0) {
        dropped_++;
        net_warn("tx frame of {} bytes dropped: {}", len, std::strerror(errno));
      }
    }
    tx_->add_used(*memory_, chain->head, 0);
  }
  if (tx_->should_notify(*memory_)) interrupt_->signal_used_buffer();
}

void NetDevice::process_rx() {
  int budget = kBudget;
  bool more = true;  // the backend may have more frames
  while (budget-- > 0) {
    auto chain = rx_->pop(*memory_);
    if (!chain) {
      more = false;  // guest has no buffers: stop reading (backpressure)
      break;
    }
    uint32_t room = chain->writable_size();
    if (room < kVnetHdrSize) {
      dropped_++;
      net_warn("rx buffer of {} bytes cannot hold a virtio-net header", room);
      rx_->add_used(*memory_, chain->head, 0);
      continue;
    }
    ssize_t n = backend_->read_frame(chain->writable_iov(0, room));
    if (n < 0) {
      rx_->undo_pop();
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        net_warn("reading a frame from the backend: {}", std::strerror(errno));
      break;  // nothing waiting (or an error): watch the fd again
    }
    if (n < static_cast<ssize_t>(kVnetHdrSize)) {
      // A runt from the backend: hand the buffer back empty rather than garbage.
      rx_->add_used(*memory_, chain->head, 0);
      continue;
    }
    // Without VIRTIO_NET_F_MRG_RXBUF every frame occupies exactly one buffer.
    const uint16_t one = 1;
    chain->write(kNumBuffersOffset,
                 std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&one), sizeof one));
    rx_->add_used(*memory_, chain->head, static_cast<uint32_t>(n));
  }
  if (rx_->should_notify(*memory_)) interrupt_->signal_used_buffer();
  if (more) watch_rx();
}

void NetDevice::watch_rx() {
  if (watching_) return;
  if (!watcher_) {
    watcher_.emplace(*loop_);
    watcher_->assign(backend_->fd());
  }
  watching_ = true;
  watcher_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                       [this](const boost::system::error_code& ec) {
                         if (ec) return;  // aborted: the device may be gone
                         on_backend_readable();
                       });
}

void NetDevice::on_backend_readable() {
  std::lock_guard lock(mutex());
  watching_ = false;
  if (!active_) return;  // reset since the watch began; the next activation re-arms
  try {
    process_rx();
  } catch (const std::exception& e) {
    common::log::error("virtio-net", "rx: {}", e.what());
  }
}

}  // namespace frakti::vmm::virtio::net
