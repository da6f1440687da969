#include "vmm/virtio/vsock/connection.hpp"

#include <algorithm>

#include "vmm/virtio/vsock/handshake.hpp"

namespace frakti::vmm::virtio::vsock {

Connection::Connection(uint64_t guest_cid, uint32_t local_port, uint32_t peer_port,
                       const ConnectionLimits& limits)
    : guest_cid_(guest_cid), local_port_(local_port), peer_port_(peer_port), limits_(limits) {}

Connection Connection::host_initiated(uint64_t guest_cid, uint32_t local_port, uint32_t peer_port,
                                      const ConnectionLimits& limits, TimePoint now) {
  Connection c(guest_cid, local_port, peer_port, limits);
  c.state_ = State::connecting;
  c.request_owed_ = true;
  c.deadline_ = now + limits.connect_timeout;
  return c;
}

Connection Connection::guest_initiated(const Header& request, const ConnectionLimits& limits) {
  Connection c(request.src_cid, request.dst_port, request.src_port, limits);
  c.state_ = State::established;
  c.response_owed_ = true;
  c.take_peer_credit(request);
  return c;
}

Header Connection::header(Op op, uint32_t len, uint32_t flags) {
  Header h;
  h.src_cid = kHostCid;
  h.dst_cid = guest_cid_;
  h.src_port = local_port_;
  h.dst_port = peer_port_;
  h.len = len;
  h.type = kTypeStream;
  h.op = static_cast<uint16_t>(op);
  h.flags = flags;
  h.buf_alloc = limits_.buf_alloc;
  h.fwd_cnt = fwd_cnt_;
  // Every packet carries our credit, so it doubles as a credit update.
  last_sent_fwd_cnt_ = fwd_cnt_;
  return h;
}

void Connection::take_peer_credit(const Header& hdr) {
  if (hdr.buf_alloc != peer_buf_alloc_ || hdr.fwd_cnt != peer_fwd_cnt_) {
    credit_request_sent_ = false;
  }
  peer_buf_alloc_ = hdr.buf_alloc;
  peer_fwd_cnt_ = hdr.fwd_cnt;
}

uint32_t Connection::peer_free() const {
  uint32_t in_flight = tx_cnt_ - peer_fwd_cnt_;
  // A guest may shrink buf_alloc below what is already in flight: no credit, not negative.
  return in_flight >= peer_buf_alloc_ ? 0 : peer_buf_alloc_ - in_flight;
}

bool Connection::credit_update_needed() const {
  if (state_ != State::established) return false;
  if (credit_update_owed_) return true;
  if (fwd_cnt_ == last_sent_fwd_cnt_) return false;
  uint32_t used = rx_cnt_ - last_sent_fwd_cnt_;
  uint32_t guest_view_free = used >= limits_.buf_alloc ? 0 : limits_.buf_alloc - used;
  return guest_view_free < limits_.credit_update_threshold;
}

bool Connection::shutdown_owed() const {
  if (shutdown_owed_flags_ & ~shutdown_sent_flags_) return true;
  // Host EOF becomes SHUTDOWN(SEND) once every byte read before it reached the guest.
  return state_ == State::established && host_eof_ && to_guest_.empty() &&
         !(shutdown_sent_flags_ & kShutdownSend);
}

bool Connection::has_packet_for_guest() const {
  if (rst_owed_) return true;
  if (state_ == State::closed) return false;
  if (request_owed_ || response_owed_) return true;
  if (state_ == State::connecting) return false;
  if (shutdown_owed()) return true;
  if (state_ == State::closing) return false;
  if (credit_update_needed()) return true;
  if (!to_guest_.empty()) return peer_free() > 0 || !credit_request_sent_;
  return false;
}

std::optional<Packet> Connection::next_packet_for_guest(size_t max_payload) {
  Packet p;
  if (rst_owed_) {
    rst_owed_ = false;
    state_ = State::closed;
    p.hdr = header(Op::rst);
    return p;
  }
  if (state_ == State::closed) return std::nullopt;
  if (request_owed_) {
    request_owed_ = false;
    p.hdr = header(Op::request);
    return p;
  }
  if (response_owed_) {
    response_owed_ = false;
    p.hdr = header(Op::response);
    return p;
  }
  if (state_ == State::connecting) return std::nullopt;
  if (state_ == State::closing) {
    if (!shutdown_owed()) return std::nullopt;
    shutdown_sent_flags_ |= shutdown_owed_flags_;
    p.hdr = header(Op::shutdown, 0, shutdown_owed_flags_);
    return p;
  }
  if (!to_guest_.empty()) {
    size_t n = std::min({to_guest_.size(), static_cast<size_t>(peer_free()), max_payload,
                         static_cast<size_t>(kMaxPayload)});
    if (n > 0) {
      auto data = to_guest_.front().first(n);
      p.payload.assign(data.begin(), data.end());
      to_guest_.pop(n);
      tx_cnt_ += static_cast<uint32_t>(n);
      credit_update_owed_ = false;
      p.hdr = header(Op::rw, static_cast<uint32_t>(n));
      return p;
    }
  }
  if (credit_update_needed()) {
    credit_update_owed_ = false;
    p.hdr = header(Op::credit_update);
    return p;
  }
  if (!to_guest_.empty() && peer_free() == 0 && !credit_request_sent_) {
    credit_request_sent_ = true;
    p.hdr = header(Op::credit_request);
    return p;
  }
  if (shutdown_owed()) {
    shutdown_sent_flags_ |= kShutdownSend;
    p.hdr = header(Op::shutdown, 0, kShutdownSend);
    settle(Clock::now());  // this may have finished the last open direction
    return p;
  }
  return std::nullopt;
}

void Connection::reset() {
  if (state_ == State::closed) return;
  rst_owed_ = true;
  request_owed_ = response_owed_ = false;
  to_host_.clear();
  to_guest_.clear();
  preamble_.clear();
  deadline_.reset();
}

bool Connection::violate() {
  reset();
  return false;
}

bool Connection::on_guest_packet(const Header& hdr, std::span<const uint8_t> payload,
                                 TimePoint now) {
  if (state_ == State::closed || rst_owed_) return true;  // finished; late packets are moot
  take_peer_credit(hdr);
  Op op = hdr.operation();
  if (op == Op::rst) {
    // The guest refused or aborted: nothing is owed back.
    state_ = State::closed;
    request_owed_ = response_owed_ = false;
    to_host_.clear();
    to_guest_.clear();
    preamble_.clear();
    deadline_.reset();
    return true;
  }
  switch (state_) {
    case State::connecting:
      if (op != Op::response || request_owed_) return violate();
      state_ = State::established;
      deadline_.reset();
      preamble_ = handshake_ok(local_port_);
      break;
    case State::closing:
      return true;  // only RST matters now
    case State::established:
      switch (op) {
        case Op::rw:
          if (peer_shutdown_ & kShutdownSend) return violate();
          if (to_host_.size() + payload.size() > limits_.buf_alloc) return violate();
          to_host_.push(payload);
          rx_cnt_ += static_cast<uint32_t>(payload.size());
          break;
        case Op::shutdown:
          peer_shutdown_ |= hdr.flags & kShutdownBoth;
          break;
        case Op::credit_request:
          credit_update_owed_ = true;
          break;
        case Op::credit_update:
          break;  // the credit was taken above
        default:
          return violate();  // REQUEST/RESPONSE on an open stream
      }
      break;
    case State::closed:
      break;
  }
  settle(now);
  return true;
}

void Connection::settle(TimePoint now) {
  if (state_ != State::established || rst_owed_) return;
  if (peer_shutdown_ & kShutdownRcv) to_guest_.clear();  // the guest will read no more
  if (peer_shutdown_ == kShutdownBoth) {
    // The guest closed. Deliver what it sent, then reset (Linux waits for our RST); a host
    // that never drains gets shutdown_timeout.
    if (to_host_.empty() && preamble_.empty()) {
      reset();
    } else if (!deadline_) {
      deadline_ = now + limits_.shutdown_timeout;
    }
    return;
  }
  bool guest_done = (peer_shutdown_ & kShutdownSend) && to_host_.empty() && preamble_.empty();
  bool host_done = host_eof_ && to_guest_.empty() && (shutdown_sent_flags_ & kShutdownSend);
  if (guest_done && host_done) reset();
}

size_t Connection::host_read_room() const {
  if (state_ != State::established || rst_owed_ || host_eof_ || (peer_shutdown_ & kShutdownRcv))
    return 0;
  return limits_.to_guest_buffer > to_guest_.size() ? limits_.to_guest_buffer - to_guest_.size()
                                                    : 0;
}

void Connection::on_host_data(std::span<const uint8_t> data, TimePoint now) {
  if (state_ == State::closed || state_ == State::closing || rst_owed_) return;
  to_guest_.push(data);
  settle(now);
}

void Connection::on_host_eof(TimePoint now) {
  host_eof_ = true;
  if (state_ == State::connecting) {
    on_host_error(now);
    return;
  }
  settle(now);
}

void Connection::on_host_error(TimePoint now) {
  if (state_ == State::closed || rst_owed_) return;
  host_eof_ = true;
  if (state_ == State::connecting) {
    // The host gave up before the guest answered. If the REQUEST went out, cancel it.
    if (request_owed_) {
      request_owed_ = false;
      state_ = State::closed;
      deadline_.reset();
    } else {
      reset();
    }
    return;
  }
  if (state_ != State::established) return;
  // Tell the guest both directions are over and give it shutdown_timeout to answer RST.
  to_host_.clear();
  to_guest_.clear();
  preamble_.clear();
  state_ = State::closing;
  shutdown_owed_flags_ = kShutdownBoth;
  deadline_ = now + limits_.shutdown_timeout;
}

std::span<const uint8_t> Connection::host_pending() const {
  if (!preamble_.empty())
    return {reinterpret_cast<const uint8_t*>(preamble_.data()), preamble_.size()};
  return to_host_.front();
}

void Connection::on_host_written(size_t n, TimePoint now) {
  if (!preamble_.empty()) {
    preamble_.erase(0, std::min(n, preamble_.size()));
  } else {
    n = std::min(n, to_host_.size());
    to_host_.pop(n);
    fwd_cnt_ += static_cast<uint32_t>(n);
  }
  settle(now);
}

bool Connection::wants_host_write_shutdown() const {
  return state_ == State::established && !rst_owed_ && !host_write_shut_ &&
         (peer_shutdown_ & kShutdownSend) && to_host_.empty() && preamble_.empty();
}

bool Connection::on_tick(TimePoint now) {
  if (!deadline_ || now < *deadline_) return false;
  deadline_.reset();
  if (state_ == State::closed) return false;
  if (request_owed_) {
    // The guest never even took our REQUEST (no rx buffers): nothing to cancel.
    request_owed_ = false;
    state_ = State::closed;
    return true;
  }
  reset();
  return true;
}

}  // namespace frakti::vmm::virtio::vsock
