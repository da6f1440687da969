#pragma once
// Connection: one vsock stream between a guest port and a host Unix socket, as a state
// machine without I/O. The muxer feeds it guest packets and host socket events and asks it
// what to send each way; tests drive it directly with explicit timestamps.
//
// Flow control (virtio 1.2 §5.10.6.3). Two bounded buffers per connection:
//   to_host   guest RW payload not yet written to the host socket. We advertise
//             buf_alloc = limits.buf_alloc and fwd_cnt = bytes written to the host, so a
//             guest that honours its credit can never overfill it; one that does not is
//             reset. A slow host reader therefore stalls the guest, not our memory.
//   to_guest  bytes read from the host socket, not yet sent as RW. The muxer reads from the
//             host only while host_read_room() > 0, and RW packets are only emitted within
//             the guest's advertised credit (peer buf_alloc - (sent - peer fwd_cnt)).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "vmm/virtio/vsock/byte_queue.hpp"
#include "vmm/virtio/vsock/packet.hpp"

namespace frakti::vmm::virtio::vsock {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

/// Per-connection limits and timers.
struct ConnectionLimits {
  /// Host-bound bytes held per connection; advertised to the guest as buf_alloc.
  uint32_t buf_alloc = 256 * 1024;
  /// Guest-bound bytes read from the host socket but not yet sent to the guest.
  uint32_t to_guest_buffer = 64 * 1024;
  /// A CREDIT_UPDATE is sent once the guest's view of our free space drops below this.
  uint32_t credit_update_threshold = 64 * 1024;
  /// How long the guest has to answer a host-initiated REQUEST.
  std::chrono::milliseconds connect_timeout{2000};
  /// How long a half-finished close may last (guest closed but the host does not drain, or we
  /// sent SHUTDOWN and the guest does not answer with RST) before we reset.
  std::chrono::milliseconds shutdown_timeout{2000};
};

class Connection {
 public:
  enum class State {
    connecting,   ///< host-initiated: REQUEST owed or sent, waiting for RESPONSE
    established,  ///< data flows (possibly half-closed in either direction)
    closing,      ///< we sent SHUTDOWN(RCV|SEND) after a host socket error; awaiting RST
    closed,       ///< done; nothing more is exchanged once any owed RST went out
  };

  /// A host process asked (CONNECT line) for guest port peer_port; we owe the guest a REQUEST
  /// from host port local_port.
  static Connection host_initiated(uint64_t guest_cid, uint32_t local_port, uint32_t peer_port,
                                   const ConnectionLimits& limits, TimePoint now);
  /// The guest sent `request` and its host listener accepted; we owe the guest a RESPONSE.
  static Connection guest_initiated(const Header& request, const ConnectionLimits& limits);

  State state() const { return state_; }
  uint32_t local_port() const { return local_port_; }
  uint32_t peer_port() const { return peer_port_; }

  // ---- guest side ----

  /// Handles a validated packet addressed to this connection. Returns false when the packet
  /// broke the protocol (wrong op for the state, credit overrun, data after SHUTDOWN); the
  /// connection then owes the guest an RST.
  bool on_guest_packet(const Header& hdr, std::span<const uint8_t> payload, TimePoint now);
  /// True when next_packet_for_guest() would return a packet.
  bool has_packet_for_guest() const;
  /// The next packet for the guest, with an RW payload of at most max_payload bytes.
  std::optional<Packet> next_packet_for_guest(size_t max_payload);
  /// Aborts the connection: owes the guest an RST and drops all buffered data.
  void reset();

  // ---- host side ----

  /// How many bytes the muxer may read from the host socket now (0: do not read).
  size_t host_read_room() const;
  /// Bytes read from the host socket (at most host_read_room(), or the early bytes that
  /// followed the CONNECT line).
  void on_host_data(std::span<const uint8_t> data, TimePoint now);
  /// The host socket reached end of file: the host sends no more.
  void on_host_eof(TimePoint now);
  /// The host socket failed or hung up.
  void on_host_error(TimePoint now);
  /// Bytes to write to the host socket next (the "OK <port>\n" answer first).
  std::span<const uint8_t> host_pending() const;
  /// n bytes of host_pending() were written.
  void on_host_written(size_t n, TimePoint now);
  /// True once the guest will send no more and everything was written: the muxer should
  /// shut down the write side of the host socket (and call mark_host_write_shut()).
  bool wants_host_write_shutdown() const;
  void mark_host_write_shut() { host_write_shut_ = true; }

  // ---- lifetime ----

  /// When on_tick() must next be called, if a timer runs.
  std::optional<TimePoint> deadline() const { return deadline_; }
  /// Fires an expired timer (connect or shutdown timeout). Returns true when one fired.
  bool on_tick(TimePoint now);
  /// Moves a running timer later by `by`: the timers measure how long the guest takes to
  /// answer, so time in which it could not run (the VM was paused) does not count.
  void postpone(std::chrono::nanoseconds by) {
    if (deadline_) *deadline_ += std::chrono::duration_cast<Clock::duration>(by);
  }
  /// Closed with nothing left to send: the muxer drops the connection and its host socket.
  bool finished() const { return state_ == State::closed && !rst_owed_; }

  // ---- counters (for the muxer's checks and for tests) ----

  /// Credit the guest currently grants us for RW data.
  uint32_t peer_free() const;
  /// Bytes of guest data written to the host so far (our fwd_cnt).
  uint32_t fwd_cnt() const { return fwd_cnt_; }
  size_t to_host_size() const { return to_host_.size(); }
  size_t to_guest_size() const { return to_guest_.size(); }

 private:
  Connection(uint64_t guest_cid, uint32_t local_port, uint32_t peer_port,
             const ConnectionLimits& limits);

  Header header(Op op, uint32_t len = 0, uint32_t flags = 0);
  void take_peer_credit(const Header& hdr);
  bool credit_update_needed() const;
  bool shutdown_owed() const;
  /// Re-evaluates close conditions after any event.
  void settle(TimePoint now);
  bool violate();

  uint64_t guest_cid_;
  uint32_t local_port_;
  uint32_t peer_port_;
  ConnectionLimits limits_;
  State state_ = State::established;

  // What we owe the guest.
  bool request_owed_ = false;
  bool response_owed_ = false;
  bool rst_owed_ = false;
  bool credit_update_owed_ = false;
  bool credit_request_sent_ = false;
  uint32_t shutdown_owed_flags_ = 0;  // full shutdown after a host error
  uint32_t shutdown_sent_flags_ = 0;

  // Stream state.
  ByteQueue to_host_;
  ByteQueue to_guest_;
  std::string preamble_;  // "OK <port>\n" for host-initiated connections
  bool host_eof_ = false;
  bool host_write_shut_ = false;
  uint32_t peer_shutdown_ = 0;
  std::optional<TimePoint> deadline_;

  // Credit, all wrapping 32-bit counters as on the wire.
  uint32_t rx_cnt_ = 0;             // RW bytes received from the guest
  uint32_t fwd_cnt_ = 0;            // of those, written to the host
  uint32_t last_sent_fwd_cnt_ = 0;  // fwd_cnt the guest last saw from us
  uint32_t tx_cnt_ = 0;             // RW bytes sent to the guest
  uint32_t peer_buf_alloc_ = 0;
  uint32_t peer_fwd_cnt_ = 0;
};

}  // namespace frakti::vmm::virtio::vsock
