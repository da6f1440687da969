#include "vmm/virtio/vsock/vsock_device.hpp"

#include <boost/asio/post.hpp>
#include <stdexcept>

#include "common/log.hpp"
#include "vmm/virtio/spec.hpp"

namespace frakti::vmm::virtio::vsock {

namespace {
common::log::RateLimiter g_rx_log(5, std::chrono::seconds(5));
}  // namespace

VsockDevice::VsockDevice(boost::asio::io_context& loop, VsockConfig config)
    : guest_cid_(config.guest_cid), loop_(loop) {
  if (config.guest_cid <= kHostCid || config.guest_cid >= 0xffffffffu) {
    throw std::invalid_argument(fmt::format(
        "vsock guest CID {} is reserved; use 3 or more (below 4294967295)", config.guest_cid));
  }
  muxer_ = std::make_unique<Muxer>(loop, config.guest_cid, config.uds_path, config.limits);
  muxer_->set_guest_notify([this] { on_muxer_ready(); });
  muxer_->start();
  tx_buf_.reserve(kHeaderSize + kMaxPayload);
}

VsockDevice::~VsockDevice() {
  alive_.reset();
}

uint64_t VsockDevice::device_features() const {
  return feature_bit(feature::kVersion1) | feature_bit(feature::kRingEventIdx) |
         feature_bit(feature::kRingIndirectDesc);
}

void VsockDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
  // struct virtio_vsock_config { le64 guest_cid; }
  for (size_t i = 0; i < data.size(); ++i) {
    uint64_t at = offset + i;
    if (at < 8) data[i] = static_cast<uint8_t>(guest_cid_ >> (8 * at));
  }
}

void VsockDevice::activate(const ActivateContext& ctx) {
  memory_ = &ctx.memory;
  rx_ = ctx.queues.at(kRxQueue);
  tx_ = ctx.queues.at(kTxQueue);
  interrupt_ = ctx.interrupt;
  active_ = true;
  // Host clients may have connected while the guest booted: their REQUESTs wait in the muxer.
  boost::asio::post(loop_, [this, alive = std::weak_ptr<int>(alive_)] {
    if (!alive.expired()) on_muxer_ready();
  });
}

void VsockDevice::reset() {
  active_ = false;
  memory_ = nullptr;
  rx_ = tx_ = nullptr;
  interrupt_.reset();
  // The guest's sockets died with its driver; drop ours (on the loop, which owns the muxer).
  boost::asio::post(loop_, [this, alive = std::weak_ptr<int>(alive_)] {
    if (!alive.expired()) muxer_->reset_connections();
  });
}

void VsockDevice::vm_paused() {
  boost::asio::post(loop_, [this, alive = std::weak_ptr<int>(alive_)] {
    if (!alive.expired()) muxer_->pause();
  });
}

void VsockDevice::vm_resumed() {
  boost::asio::post(loop_, [this, alive = std::weak_ptr<int>(alive_)] {
    if (!alive.expired()) muxer_->resume();
  });
}

void VsockDevice::process_queue(uint16_t index) {
  if (!active_) return;
  if (index == kTxQueue) process_tx();
  // A tx batch usually produces answers; an rx notification means new buffers.
  if (index == kTxQueue || index == kRxQueue) fill_rx();
}

void VsockDevice::process_tx() {
  bool used = false;
  // At most one ring's worth per turn, so a guest that keeps the tx queue full cannot starve
  // the host sockets; the rest is picked up by a posted continuation.
  for (uint16_t n = 0; n < tx_->size(); ++n) {
    auto chain = tx_->pop(*memory_);
    if (!chain) {
      if (used && tx_->should_notify(*memory_)) interrupt_->signal_used_buffer();
      return;
    }
    // Copy out before parsing: the guest may rewrite its buffer while we look at it.
    size_t len = std::min<size_t>(chain->readable_size(), kHeaderSize + kMaxPayload);
    tx_buf_.resize(len);
    chain->read(0, tx_buf_);
    tx_->add_used(*memory_, chain->head, 0);
    used = true;
    muxer_->on_guest_packet(tx_buf_);
  }
  if (used && tx_->should_notify(*memory_)) interrupt_->signal_used_buffer();
  if (!tx_continuation_posted_) {
    tx_continuation_posted_ = true;
    boost::asio::post(loop_, [this, alive = std::weak_ptr<int>(alive_)] {
      if (alive.expired()) return;
      std::lock_guard lock(mutex());
      tx_continuation_posted_ = false;
      if (!active_) return;
      process_tx();
      fill_rx();
    });
  }
}

void VsockDevice::fill_rx() {
  bool used = false;
  while (muxer_->has_packet_for_guest()) {
    auto chain = rx_->pop(*memory_);
    if (!chain) break;  // the guest posts more buffers and notifies rx
    uint32_t room = chain->writable_size();
    // A buffer must hold a header and at least one data byte, or a pending RW packet could
    // never leave and the same buffer would be retried forever.
    if (room <= kHeaderSize) {
      ++short_rx_;
      uint64_t suppressed = 0;
      if (g_rx_log.allow(&suppressed))
        common::log::warn("vsock", "rx buffer of {} bytes is too small for a packet", room);
      rx_->add_used(*memory_, chain->head, 0);
      used = true;
      continue;
    }
    std::optional<Packet> pkt = muxer_->next_packet_for_guest(room - kHeaderSize);
    if (!pkt) {
      rx_->undo_pop();
      break;
    }
    uint8_t hdr[kHeaderSize];
    encode_header(pkt->hdr, hdr);
    chain->write(0, hdr);
    chain->write(kHeaderSize, pkt->payload);
    rx_->add_used(*memory_, chain->head, static_cast<uint32_t>(kHeaderSize + pkt->payload.size()));
    used = true;
  }
  if (used && rx_->should_notify(*memory_)) interrupt_->signal_used_buffer();
}

void VsockDevice::on_muxer_ready() {
  std::lock_guard lock(mutex());
  if (active_) fill_rx();
}

}  // namespace frakti::vmm::virtio::vsock
