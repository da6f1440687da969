#pragma once
// FakeGuest: plays the guest's virtio-vsock driver and sockets (as Linux's
// virtio_transport_common does) over raw packet bytes, so the muxer and the device can be
// tested without a VM. It honours and checks credit in both directions.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "vmm/virtio/vsock/packet.hpp"

namespace frakti::vmm::virtio::vsock::test {

class FakeGuest {
 public:
  struct Stream {
    uint32_t gport = 0, hport = 0;
    bool established = false, reset = false;
    uint32_t peer_shutdown = 0;
    bool echo = false;    // send every received byte back
    bool reading = true;  // false: leave received bytes unconsumed (no credit returned)
    std::vector<uint8_t> received;
    std::deque<uint8_t> outgoing;
    uint32_t rx_cnt = 0, fwd_cnt = 0, last_told_fwd = 0, tx_cnt = 0;
    uint32_t peer_buf_alloc = 0, peer_fwd_cnt = 0;
    bool credit_update_owed = false;
    uint32_t shutdown_to_send = 0;
  };

  explicit FakeGuest(uint64_t cid, uint32_t buf_alloc = 64 * 1024, uint32_t chunk = 4096)
      : cid_(cid), buf_alloc_(buf_alloc), chunk_(chunk) {}

  /// Accepts host connections to port (echoing when echo is set).
  void listen(uint32_t port, bool echo) { listening_[port] = echo; }
  /// Connects guest port gport to host port hport (sends REQUEST).
  Stream& connect(uint32_t gport, uint32_t hport) {
    Stream& s = streams_[{gport, hport}];
    s.gport = gport;
    s.hport = hport;
    control_.push_back(make(s, Op::request));
    return s;
  }
  Stream* find(uint32_t gport, uint32_t hport) {
    auto it = streams_.find({gport, hport});
    return it == streams_.end() ? nullptr : &it->second;
  }
  std::map<std::pair<uint32_t, uint32_t>, Stream>& streams() { return streams_; }

  /// One packet from the device (header + payload bytes).
  void receive(std::span<const uint8_t> bytes) {
    REQUIRE(bytes.size() >= kHeaderSize);
    Header h = decode_header(bytes.first<kHeaderSize>());
    REQUIRE(h.src_cid == kHostCid);
    REQUIRE(h.dst_cid == cid_);
    REQUIRE(h.type == kTypeStream);
    REQUIRE(h.len == bytes.size() - kHeaderSize);
    received_ops.push_back(h);
    auto payload = bytes.subspan(kHeaderSize);
    auto key = std::make_pair(h.dst_port, h.src_port);
    auto it = streams_.find(key);
    if (h.operation() == Op::request) {
      REQUIRE(it == streams_.end());
      Stream s;
      s.gport = h.dst_port;
      s.hport = h.src_port;
      take_credit(s, h);
      if (listening_.count(h.dst_port)) {
        s.established = true;
        s.echo = listening_[h.dst_port];
        control_.push_back(make(s, Op::response));
        streams_[key] = s;
      } else {
        control_.push_back(make(s, Op::rst));
      }
      return;
    }
    if (it == streams_.end()) {
      unknown_packets++;
      return;
    }
    Stream& s = it->second;
    take_credit(s, h);
    switch (h.operation()) {
      case Op::response:
        s.established = true;
        break;
      case Op::rst:
        s.reset = true;
        s.established = false;
        break;
      case Op::shutdown:
        s.peer_shutdown |= h.flags;
        break;
      case Op::credit_request:
        s.credit_update_owed = true;
        break;
      case Op::rw:
        // The host must never exceed the credit we advertised.
        REQUIRE(s.rx_cnt - s.fwd_cnt + h.len <= buf_alloc_);
        s.rx_cnt += h.len;
        pending_[key].insert(pending_[key].end(), payload.begin(), payload.end());
        consume(s);
        break;
      default:
        break;
    }
  }

  /// Lets a stream that was not reading consume what it holds.
  void consume(Stream& s) {
    if (!s.reading) return;
    auto& p = pending_[{s.gport, s.hport}];
    s.received.insert(s.received.end(), p.begin(), p.end());
    if (s.echo) s.outgoing.insert(s.outgoing.end(), p.begin(), p.end());
    s.fwd_cnt += static_cast<uint32_t>(p.size());
    p.clear();
  }

  /// Closes the guest side: SHUTDOWN with flags.
  void shutdown(Stream& s, uint32_t flags) { s.shutdown_to_send |= flags; }

  /// The next packet the guest wants to send, encoded.
  std::optional<std::vector<uint8_t>> next_tx() {
    if (!control_.empty()) {
      auto p = encode(control_.front(), {});
      control_.pop_front();
      return p;
    }
    for (auto& [key, s] : streams_) {
      if (s.reset) continue;
      if (!s.established) continue;
      uint32_t in_flight = s.tx_cnt - s.peer_fwd_cnt;
      uint32_t credit = in_flight >= s.peer_buf_alloc ? 0 : s.peer_buf_alloc - in_flight;
      size_t n = std::min<size_t>({s.outgoing.size(), credit, chunk_});
      if (n > 0) {
        std::vector<uint8_t> data(s.outgoing.begin(), s.outgoing.begin() + n);
        s.outgoing.erase(s.outgoing.begin(), s.outgoing.begin() + n);
        s.tx_cnt += static_cast<uint32_t>(n);
        Header h = make(s, Op::rw);
        h.len = static_cast<uint32_t>(n);
        return encode(h, data);
      }
      if (s.credit_update_owed || s.fwd_cnt - s.last_told_fwd >= buf_alloc_ / 4) {
        s.credit_update_owed = false;
        return encode(make(s, Op::credit_update), {});
      }
      if (s.shutdown_to_send && s.outgoing.empty()) {
        Header h = make(s, Op::shutdown);
        h.flags = s.shutdown_to_send;
        s.shutdown_to_send = 0;
        return encode(h, {});
      }
    }
    return std::nullopt;
  }

  std::vector<Header> received_ops;
  int unknown_packets = 0;

 private:
  void take_credit(Stream& s, const Header& h) {
    s.peer_buf_alloc = h.buf_alloc;
    s.peer_fwd_cnt = h.fwd_cnt;
  }
  Header make(Stream& s, Op op) {
    Header h;
    h.src_cid = cid_;
    h.dst_cid = kHostCid;
    h.src_port = s.gport;
    h.dst_port = s.hport;
    h.type = kTypeStream;
    h.op = static_cast<uint16_t>(op);
    h.buf_alloc = buf_alloc_;
    h.fwd_cnt = s.fwd_cnt;
    s.last_told_fwd = s.fwd_cnt;
    return h;
  }
  static std::vector<uint8_t> encode(const Header& h, std::span<const uint8_t> payload) {
    std::vector<uint8_t> out(kHeaderSize + payload.size());
    encode_header(h, std::span<uint8_t, kHeaderSize>(out.data(), kHeaderSize));
    std::copy(payload.begin(), payload.end(), out.begin() + kHeaderSize);
    return out;
  }

  uint64_t cid_;
  uint32_t buf_alloc_;
  size_t chunk_;
  std::map<uint32_t, bool> listening_;
  std::map<std::pair<uint32_t, uint32_t>, Stream> streams_;  // (guest port, host port)
  std::map<std::pair<uint32_t, uint32_t>, std::vector<uint8_t>> pending_;
  std::deque<Header> control_;
};

}  // namespace frakti::vmm::virtio::vsock::test
