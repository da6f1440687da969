#pragma once
// Muxer: the host end of the vsock device. It owns the Unix listener at <path> (Firecracker's
// hybrid protocol, see handshake.hpp), every host socket, and one Connection per stream, and
// trades packets with the guest through two calls so it can be driven without a virtqueue:
//   on_guest_packet()        a packet the guest put on the tx queue
//   next_packet_for_guest()  a packet to put in the next rx buffer
// Everything runs on the io_context's thread (the VMM event loop); nothing here is
// thread-safe. Guest input never throws: bad packets are counted, logged (rate-limited) and
// answered with RST where the guest can be addressed.

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/log.hpp"
#include "vmm/virtio/vsock/connection.hpp"
#include "vmm/virtio/vsock/packet.hpp"

namespace frakti::vmm::virtio::vsock {

/// Limits that keep a hostile guest or host client from growing our memory without bound.
struct MuxerLimits {
  ConnectionLimits connection;
  /// Open streams (both directions together); further REQUESTs get RST, further host
  /// clients get "ERR" and are closed.
  size_t max_connections = 1024;
  /// Host clients that have not finished their CONNECT line yet.
  size_t max_handshakes = 64;
  /// Time a host client has to send its CONNECT line.
  std::chrono::milliseconds handshake_timeout{5000};
  /// RSTs for packets that match no connection, waiting for rx buffers; beyond this they
  /// are dropped (the guest is not reading its rx queue anyway).
  size_t max_pending_rsts = 256;
  /// Period of the timer that fires handshake, connect and shutdown timeouts.
  std::chrono::milliseconds tick{250};
};

/// First host port handed to host-initiated connections (as Firecracker: 2^30 and up).
inline constexpr uint32_t kFirstEphemeralPort = 1u << 30;

class Muxer {
 public:
  /// Counters for monitoring and tests.
  struct Stats {
    uint64_t rejected_packets = 0;  ///< failed parse_guest_packet()
    uint64_t protocol_errors = 0;   ///< valid packets that broke a connection's protocol
    uint64_t refused_requests = 0;  ///< guest REQUESTs with no host listener (answered RST)
    uint64_t rejected_handshakes = 0;
    uint64_t dropped_rsts = 0;
  };

  /// guest_cid: the CID in the device config space; uds_path: the host socket path (guest
  /// connections to port P go to "<uds_path>_P"). Nothing happens until start().
  Muxer(boost::asio::io_context& io, uint64_t guest_cid, std::string uds_path,
        MuxerLimits limits = {});
  /// Closes every socket and removes the listener's file (if it is still ours).
  ~Muxer();
  Muxer(const Muxer&) = delete;
  Muxer& operator=(const Muxer&) = delete;

  /// Creates the listener (mode 0600; a stale socket file left by a dead VMM is replaced,
  /// anything else at the path is an error) and starts accepting. Throws std::system_error.
  void start();

  /// Handles one packet from the guest's tx queue: header followed by its payload.
  void on_guest_packet(std::span<const uint8_t> bytes);
  /// True when next_packet_for_guest() may return a packet.
  bool has_packet_for_guest() const { return !rsts_.empty() || !ready_.empty(); }
  /// The next packet for the guest, its RW payload at most max_payload bytes (the room an rx
  /// buffer has after the header); nullopt when there is nothing to send.
  std::optional<Packet> next_packet_for_guest(size_t max_payload);
  /// Called (posted on the io_context, so never re-entrantly) when packets for the guest
  /// become available; the device then drains next_packet_for_guest() into rx buffers.
  void set_guest_notify(std::function<void()> notify) { notify_ = std::move(notify); }

  /// Drops every stream (closing its host socket) and every packet owed to the guest: the
  /// guest's driver was reset, so its sockets are gone. The listener keeps serving.
  void reset_connections();

  /// The VM was paused: the guest cannot answer, so the connect and shutdown timeouts stop
  /// counting (a host CONNECT sent meanwhile must not be reset for the guest's silence).
  /// Host sockets keep being served and the handshake timeout (the host client's own
  /// deadline) keeps running. Repeated calls are ignored.
  void pause();
  /// The VM runs again: every stream's timer moves later by the time spent paused, and the
  /// device is woken for packets that are waiting. Without a pause() first it does nothing.
  void resume();
  bool paused() const { return paused_since_.has_value(); }

  size_t connection_count() const { return conns_.size(); }
  const Stats& stats() const { return stats_; }
  const std::string& path() const { return path_; }

 private:
  using Socket = boost::asio::local::stream_protocol::socket;
  using Key = std::pair<uint32_t, uint32_t>;  // (host port, guest port)
  struct ConnIo;
  struct Handshake;

  void accept_next();
  void on_accept(Socket sock);
  void arm_handshake(const std::shared_ptr<Handshake>& h);
  void on_handshake_readable(const std::shared_ptr<Handshake>& h);
  void reject_handshake(const std::shared_ptr<Handshake>& h, std::string_view reason);
  void drop_handshake(const std::shared_ptr<Handshake>& h);
  std::optional<uint32_t> allocate_host_port();

  void connect_to_host(const Header& request);
  void queue_rst(const Header& to);
  /// Brings one connection's socket interest, guest queue position and lifetime in line with
  /// its state; called after every event on it.
  void update_io(const std::shared_ptr<ConnIo>& io);
  void flush_to_host(const std::shared_ptr<ConnIo>& io);
  void read_from_host(ConnIo& io);
  void arm_read(const std::shared_ptr<ConnIo>& io);
  void arm_write(const std::shared_ptr<ConnIo>& io);
  void remove(const std::shared_ptr<ConnIo>& io);
  void request_notify();
  void arm_tick();
  void on_tick();
  template <typename... Args>
  void guest_warn(fmt::format_string<Args...> f, Args&&... args);

  boost::asio::io_context& io_;
  const uint64_t guest_cid_;
  const std::string path_;
  const MuxerLimits limits_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer timer_;
  dev_t listener_dev_ = 0;
  ino_t listener_ino_ = 0;
  bool accept_paused_ = false;

  std::map<Key, std::shared_ptr<ConnIo>> conns_;
  std::unordered_set<std::shared_ptr<Handshake>> handshakes_;
  std::deque<Key> ready_;    // connections with packets for the guest, round-robin
  std::deque<Packet> rsts_;  // answers to packets that match no connection
  std::function<void()> notify_;
  bool notify_posted_ = false;
  bool draining_ = false;  // inside next_packet_for_guest(): the caller is already draining
  std::optional<TimePoint> paused_since_;  // set while the VM is paused
  uint32_t next_host_port_ = kFirstEphemeralPort;
  std::vector<uint8_t> scratch_;
  Stats stats_;
  common::log::RateLimiter guest_log_{10, std::chrono::seconds(1)};
  // Handlers hold a weak reference: once the muxer is gone they return without touching it.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace frakti::vmm::virtio::vsock
