#include "vmm/virtio/vsock/muxer.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cstring>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "vmm/virtio/vsock/handshake.hpp"

namespace frakti::vmm::virtio::vsock {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr const char* kLog = "vsock";

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    common::throw_error(ENAMETOOLONG,
                        fmt::format("vsock socket path '{}' is empty or longer than {} bytes", path,
                                    sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

/// Removes a socket file left behind by a VMM that died; refuses to touch anything else.
void remove_stale_socket(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    common::throw_errno(fmt::format("stat vsock socket path {}", path));
  }
  if (!S_ISSOCK(st.st_mode)) {
    common::throw_error(EEXIST, fmt::format("vsock socket path {} exists and is not a socket; "
                                            "remove it or choose another path",
                                            path));
  }
  common::Fd probe(common::check(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0),
                                 "socket for probing {}", path));
  sockaddr_un addr = unix_address(path);
  if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    common::throw_error(EADDRINUSE,
                        fmt::format("vsock socket {} is in use by a running process", path));
  }
  if (errno != ECONNREFUSED) common::throw_errno(fmt::format("probe vsock socket {}", path));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    common::throw_errno(fmt::format("remove stale vsock socket {}", path));
}

}  // namespace

struct Muxer::ConnIo {
  ConnIo(asio::io_context& io, Connection c) : conn(std::move(c)), sock(io) {}
  Key key() const { return {conn.local_port(), conn.peer_port()}; }

  Connection conn;
  Socket sock;
  bool read_armed = false;
  bool write_armed = false;
  bool queued = false;  // in ready_
  bool dead = false;    // removed; late handlers must not touch the muxer
};

struct Muxer::Handshake {
  explicit Handshake(Socket s) : sock(std::move(s)) {}
  Socket sock;
  std::string line;
  TimePoint deadline;
  bool dead = false;
};

template <typename... Args>
void Muxer::guest_warn(fmt::format_string<Args...> f, Args&&... args) {
  uint64_t suppressed = 0;
  if (!guest_log_.allow(&suppressed)) return;
  std::string msg = fmt::format(f, std::forward<Args>(args)...);
  if (suppressed) msg += fmt::format(" ({} similar messages suppressed)", suppressed);
  common::log::warn(kLog, "{}", msg);
}

Muxer::Muxer(asio::io_context& io, uint64_t guest_cid, std::string uds_path, MuxerLimits limits)
    : io_(io),
      guest_cid_(guest_cid),
      path_(std::move(uds_path)),
      limits_(limits),
      acceptor_(io),
      timer_(io),
      scratch_(std::max<size_t>(limits.connection.to_guest_buffer, 4096)) {}

Muxer::~Muxer() {
  alive_.reset();
  error_code ec;
  timer_.cancel();
  if (acceptor_.is_open()) {
    acceptor_.close(ec);
    // Unlink only our own socket: another VMM may have replaced a file we lost track of.
    struct stat st;
    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == listener_dev_ &&
        st.st_ino == listener_ino_) {
      ::unlink(path_.c_str());
    }
  }
  for (auto& h : handshakes_) {
    h->dead = true;
    h->sock.close(ec);
  }
  for (auto& [key, io] : conns_) {
    io->dead = true;
    io->sock.close(ec);
  }
}

void Muxer::start() {
  remove_stale_socket(path_);
  sockaddr_un addr = unix_address(path_);
  common::Fd fd(common::check(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0),
                              "socket for vsock listener {}", path_));
  common::check(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr),
                "bind vsock socket {}", path_);
  // Owner-only before listen(): until then nobody can connect, so there is no window in which
  // another user reaches the guest through a wider mode.
  if (::fchmodat(AT_FDCWD, path_.c_str(), 0600, AT_SYMLINK_NOFOLLOW) != 0) {
    int err = errno;
    ::unlink(path_.c_str());
    common::throw_error(err, fmt::format("chmod 0600 vsock socket {}", path_));
  }
  struct stat st;
  common::check(::lstat(path_.c_str(), &st), "stat vsock socket {}", path_);
  listener_dev_ = st.st_dev;
  listener_ino_ = st.st_ino;
  common::check(::listen(fd.get(), 128), "listen on vsock socket {}", path_);
  acceptor_.assign(asio::local::stream_protocol(), fd.release());
  accept_next();
  arm_tick();
  common::log::info(kLog, "listening on {} for guest CID {}", path_, guest_cid_);
}

// ---------------------------------------------------------------- host-initiated handshakes

void Muxer::accept_next() {
  acceptor_.async_accept([this, alive = std::weak_ptr<int>(alive_)](error_code ec, Socket s) {
    if (alive.expired() || ec == asio::error::operation_aborted) return;
    if (ec) {
      // EMFILE and friends: retry from the timer instead of spinning on a full fd table.
      common::log::warn(kLog, "accept on {}: {}", path_, ec.message());
      accept_paused_ = true;
      return;
    }
    on_accept(std::move(s));
    accept_next();
  });
}

void Muxer::on_accept(Socket sock) {
  auto h = std::make_shared<Handshake>(std::move(sock));
  error_code ec;
  h->sock.non_blocking(true, ec);
  h->deadline = Clock::now() + limits_.handshake_timeout;
  handshakes_.insert(h);
  if (handshakes_.size() > limits_.max_handshakes || conns_.size() >= limits_.max_connections) {
    reject_handshake(h, "too many connections");
    return;
  }
  arm_handshake(h);
}

void Muxer::arm_handshake(const std::shared_ptr<Handshake>& h) {
  h->sock.async_wait(Socket::wait_read,
                     [this, alive = std::weak_ptr<int>(alive_), h](error_code ec) {
                       if (alive.expired() || h->dead) return;
                       if (ec) {
                         drop_handshake(h);
                         return;
                       }
                       on_handshake_readable(h);
                     });
}

void Muxer::on_handshake_readable(const std::shared_ptr<Handshake>& h) {
  char buf[kMaxHandshakeLine];
  size_t room = kMaxHandshakeLine - h->line.size();
  ssize_t n =
      common::retry_eintr([&] { return ::recv(h->sock.native_handle(), buf, room, MSG_DONTWAIT); });
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    arm_handshake(h);
    return;
  }
  if (n <= 0) {
    drop_handshake(h);  // the client went away before asking for anything
    return;
  }
  h->line.append(buf, static_cast<size_t>(n));
  HandshakeScan scan = scan_handshake(h->line);
  if (scan.status == HandshakeScan::Status::incomplete) {
    arm_handshake(h);
    return;
  }
  if (scan.status == HandshakeScan::Status::bad) {
    reject_handshake(h, scan.error);
    return;
  }
  auto port = allocate_host_port();
  if (!port) {
    reject_handshake(h, "no free host port");
    return;
  }
  auto io = std::make_shared<ConnIo>(
      io_,
      Connection::host_initiated(guest_cid_, *port, scan.port, limits_.connection, Clock::now()));
  io->sock = std::move(h->sock);
  h->dead = true;
  handshakes_.erase(h);
  // Bytes sent right after the CONNECT line are stream data for the guest.
  std::string_view early = std::string_view(h->line).substr(scan.consumed);
  if (!early.empty()) {
    io->conn.on_host_data({reinterpret_cast<const uint8_t*>(early.data()), early.size()},
                          Clock::now());
  }
  conns_.emplace(io->key(), io);
  common::log::debug(kLog, "host connection to guest port {} as host port {}", scan.port, *port);
  update_io(io);
}

void Muxer::reject_handshake(const std::shared_ptr<Handshake>& h, std::string_view reason) {
  ++stats_.rejected_handshakes;
  std::string answer = fmt::format("ERR {}\n", reason);
  // Best effort: the client may already be gone, and it must never block the loop.
  [[maybe_unused]] ssize_t n =
      ::send(h->sock.native_handle(), answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  uint64_t suppressed = 0;
  if (guest_log_.allow(&suppressed))
    common::log::warn(kLog, "rejected host connection on {}: {}", path_, reason);
  drop_handshake(h);
}

void Muxer::drop_handshake(const std::shared_ptr<Handshake>& h) {
  h->dead = true;
  error_code ec;
  h->sock.close(ec);
  handshakes_.erase(h);
}

std::optional<uint32_t> Muxer::allocate_host_port() {
  for (size_t tries = 0; tries <= limits_.max_connections; ++tries) {
    uint32_t port = next_host_port_;
    next_host_port_ = port == UINT32_MAX ? kFirstEphemeralPort : port + 1;
    auto it = conns_.lower_bound({port, 0});
    if (it == conns_.end() || it->first.first != port) return port;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- guest packets

void Muxer::on_guest_packet(std::span<const uint8_t> bytes) {
  GuestPacket pkt;
  ParseError err = parse_guest_packet(bytes, guest_cid_, pkt);
  const Header& h = pkt.hdr;
  Key key{h.dst_port, h.src_port};
  if (err != ParseError::none) {
    ++stats_.rejected_packets;
    guest_warn("dropped guest packet ({} bytes, op {}, ports {}->{}): {}", bytes.size(), h.op,
               h.src_port, h.dst_port, describe(err));
    bool addressable = err != ParseError::short_header && err != ParseError::bad_src_cid &&
                       err != ParseError::bad_dst_cid;
    if (!addressable || h.op == static_cast<uint16_t>(Op::rst)) return;
    // The stream lost bytes: whatever it was, it cannot continue.
    if (auto it = conns_.find(key); it != conns_.end()) {
      auto io = it->second;
      io->conn.reset();
      update_io(io);
    } else {
      queue_rst(h);
    }
    return;
  }
  if (auto it = conns_.find(key); it != conns_.end()) {
    auto io = it->second;
    if (h.operation() == Op::request && io->conn.state() == Connection::State::closed) {
      // The guest reuses the ports of a stream that is over on our side but not yet
      // forgotten (its RST still queued): the new stream replaces it.
      remove(io);
      connect_to_host(h);
      return;
    }
    if (!io->conn.on_guest_packet(h, pkt.payload, Clock::now())) {
      ++stats_.protocol_errors;
      guest_warn("guest broke the vsock protocol on ports {}->{} (op {}, len {}); reset",
                 h.src_port, h.dst_port, h.op, h.len);
    }
    update_io(io);
    return;
  }
  switch (h.operation()) {
    case Op::request:
      connect_to_host(h);
      break;
    case Op::rst:
      break;  // already gone on our side
    default:
      queue_rst(h);
      break;
  }
}

void Muxer::connect_to_host(const Header& request) {
  if (conns_.size() >= limits_.max_connections) {
    guest_warn("refused guest connection to host port {}: {} connections open", request.dst_port,
               conns_.size());
    queue_rst(request);
    return;
  }
  std::string target = fmt::format("{}_{}", path_, request.dst_port);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  common::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  int err = 0;
  if (!fd) {
    err = errno;
  } else if (target.size() >= sizeof(addr.sun_path)) {
    err = ENAMETOOLONG;
  } else {
    std::memcpy(addr.sun_path, target.c_str(), target.size() + 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) err = errno;
  }
  if (err != 0) {
    // Usually no listener at <path>_<port>: the guest sees ECONNRESET, as with vhost-vsock.
    ++stats_.refused_requests;
    uint64_t suppressed = 0;
    if (guest_log_.allow(&suppressed))
      common::log::info(kLog, "guest connection to host port {} refused: connect {}: {}",
                        request.dst_port, target, std::strerror(err));
    queue_rst(request);
    return;
  }
  auto io = std::make_shared<ConnIo>(io_, Connection::guest_initiated(request, limits_.connection));
  error_code ec;
  io->sock.assign(asio::local::stream_protocol(), fd.release(), ec);
  if (ec) {
    queue_rst(request);
    return;
  }
  conns_.emplace(io->key(), io);
  update_io(io);
}

void Muxer::queue_rst(const Header& to) {
  if (rsts_.size() >= limits_.max_pending_rsts) {
    ++stats_.dropped_rsts;
    return;
  }
  rsts_.push_back(Packet{rst_reply(to), {}});
  request_notify();
}

std::optional<Packet> Muxer::next_packet_for_guest(size_t max_payload) {
  if (!rsts_.empty()) {
    Packet p = std::move(rsts_.front());
    rsts_.pop_front();
    return p;
  }
  // No wake-up for what we re-queue here: the caller keeps draining while it has buffers,
  // and a wake-up for a packet it just could not take would spin the loop.
  draining_ = true;
  struct Done {
    bool& flag;
    ~Done() { flag = false; }
  } done{draining_};
  // Each ready connection gets one turn; one that cannot send right now (for example only
  // data and max_payload == 0) goes to the back, so this loop always ends.
  for (size_t turns = ready_.size(); turns > 0 && !ready_.empty(); --turns) {
    Key key = ready_.front();
    ready_.pop_front();
    auto it = conns_.find(key);
    if (it == conns_.end()) continue;
    auto io = it->second;
    io->queued = false;
    std::optional<Packet> p = io->conn.next_packet_for_guest(max_payload);
    update_io(io);
    if (p) return p;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- host socket I/O

void Muxer::update_io(const std::shared_ptr<ConnIo>& io) {
  if (io->dead) return;
  Connection& c = io->conn;
  if (io->sock.is_open()) {
    flush_to_host(io);
    if (c.wants_host_write_shutdown()) {
      ::shutdown(io->sock.native_handle(), SHUT_WR);
      c.mark_host_write_shut();
    }
    if (c.host_read_room() > 0 && !io->read_armed) arm_read(io);
  }
  if (c.has_packet_for_guest() && !io->queued) {
    io->queued = true;
    ready_.push_back(io->key());
    request_notify();
  }
  if (c.finished() && !io->queued) remove(io);
}

void Muxer::flush_to_host(const std::shared_ptr<ConnIo>& iop) {
  ConnIo& io = *iop;
  Connection& c = io.conn;
  for (;;) {
    auto pending = c.host_pending();
    if (pending.empty()) return;
    ssize_t n = common::retry_eintr([&] {
      return ::send(io.sock.native_handle(), pending.data(), pending.size(),
                    MSG_NOSIGNAL | MSG_DONTWAIT);
    });
    if (n > 0) {
      c.on_host_written(static_cast<size_t>(n), Clock::now());
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The host reads slowly: wait; meanwhile the guest runs out of credit.
      if (!io.write_armed) arm_write(iop);
      return;
    }
    c.on_host_error(Clock::now());
    return;
  }
}

void Muxer::read_from_host(ConnIo& io) {
  Connection& c = io.conn;
  while (size_t room = c.host_read_room()) {
    size_t want = std::min(room, scratch_.size());
    ssize_t n = common::retry_eintr(
        [&] { return ::recv(io.sock.native_handle(), scratch_.data(), want, MSG_DONTWAIT); });
    if (n > 0) {
      c.on_host_data({scratch_.data(), static_cast<size_t>(n)}, Clock::now());
    } else if (n == 0) {
      c.on_host_eof(Clock::now());
      return;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else {
      c.on_host_error(Clock::now());
      return;
    }
  }
}

void Muxer::arm_read(const std::shared_ptr<ConnIo>& io) {
  io->read_armed = true;
  io->sock.async_wait(Socket::wait_read,
                      [this, alive = std::weak_ptr<int>(alive_), io](error_code ec) {
                        if (alive.expired() || io->dead) return;
                        io->read_armed = false;
                        if (ec) {
                          io->conn.on_host_error(Clock::now());
                        } else {
                          read_from_host(*io);
                        }
                        update_io(io);
                      });
}

void Muxer::arm_write(const std::shared_ptr<ConnIo>& io) {
  io->write_armed = true;
  io->sock.async_wait(Socket::wait_write,
                      [this, alive = std::weak_ptr<int>(alive_), io](error_code ec) {
                        if (alive.expired() || io->dead) return;
                        io->write_armed = false;
                        if (ec) io->conn.on_host_error(Clock::now());
                        update_io(io);
                      });
}

void Muxer::remove(const std::shared_ptr<ConnIo>& io) {
  io->dead = true;
  error_code ec;
  io->sock.close(ec);
  conns_.erase(io->key());
}

void Muxer::request_notify() {
  if (!notify_ || notify_posted_ || draining_) return;
  notify_posted_ = true;
  asio::post(io_, [this, alive = std::weak_ptr<int>(alive_)] {
    if (alive.expired()) return;
    notify_posted_ = false;
    if (has_packet_for_guest() && notify_) notify_();
  });
}

void Muxer::reset_connections() {
  error_code ec;
  for (auto& [key, io] : conns_) {
    io->dead = true;
    io->sock.close(ec);
  }
  conns_.clear();
  ready_.clear();
  rsts_.clear();
}

void Muxer::pause() {
  if (!paused_since_) paused_since_ = Clock::now();
}

void Muxer::resume() {
  if (!paused_since_) return;
  auto paused_for = Clock::now() - *paused_since_;
  paused_since_.reset();
  for (auto& [key, io] : conns_) io->conn.postpone(paused_for);
  // Packets may have waited for rx buffers the paused guest could not refill; its next kick
  // would bring them, but a wake-up costs nothing and does not rely on it.
  if (has_packet_for_guest()) request_notify();
}

// ---------------------------------------------------------------- timers

void Muxer::arm_tick() {
  timer_.expires_after(limits_.tick);
  timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](error_code ec) {
    if (alive.expired() || ec) return;
    on_tick();
    arm_tick();
  });
}

void Muxer::on_tick() {
  TimePoint now = Clock::now();
  std::vector<std::shared_ptr<Handshake>> late;
  for (auto& h : handshakes_)
    if (now >= h->deadline) late.push_back(h);
  for (auto& h : late) reject_handshake(h, "handshake timed out");

  std::vector<std::shared_ptr<ConnIo>> due;
  // While the VM is paused the guest cannot answer: its streams' timers wait for resume().
  if (!paused_since_) {
    for (auto& [key, io] : conns_) {
      auto d = io->conn.deadline();
      if (d && now >= *d) due.push_back(io);
    }
  }
  for (auto& io : due) {
    if (io->conn.on_tick(now)) {
      common::log::info(kLog, "vsock stream host port {} / guest port {} timed out; reset",
                        io->conn.local_port(), io->conn.peer_port());
    }
    update_io(io);
  }
  if (accept_paused_) {
    accept_paused_ = false;
    accept_next();
  }
}

}  // namespace frakti::vmm::virtio::vsock
