#pragma once
// Session: one agent-protocol connection (host side = client, guest agent = server) on any
// stream socket: AF_VSOCK in the guest, the VMM's hybrid-vsock Unix socket on the host, a
// socketpair in tests. See docs/agent-protocol.md for the wire rules it enforces.
//
// Threading: a Session belongs to ONE io_context thread. Every member function must be called
// on that thread (other threads post to executor()), and every completion handler runs there,
// never inline inside the call that started the operation. Sessions are shared_ptr-owned;
// pending operations keep them alive until they complete.
//
// Errors: transport failures, protocol violations and deadlines reach handlers as
// std::error_code (ProtocolErrc or a socket error). A peer's malformed frame closes this
// connection only: the owner learns why from the close handler, pending calls fail with
// connection_closed, and nothing throws through the event loop.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/protocol/errors.hpp"
#include "agent/protocol/frame.hpp"
#include "common/fd.hpp"
#include "proto/agent/agent.pb.h"

namespace frakti::agent::protocol {

namespace v1 = ::frakti::agent::v1;

/// The socket type every Session runs on (address family chosen at run time).
using Socket = boost::asio::generic::stream_protocol::socket;

/// Wraps a connected stream socket fd (AF_UNIX, AF_VSOCK, ...) for use by a Session.
Socket adopt_socket(boost::asio::io_context& io, common::Fd fd);

/// Bytes a receiver lets a sender have in flight on one stream before it must wait for a
/// WINDOW_UPDATE (the same on both sides; not negotiated).
inline constexpr uint32_t kStreamWindow = 256u << 10;

/// Counters an owner can log or export; all grow monotonically.
struct SessionStats {
  uint64_t frames_received = 0;
  uint64_t frames_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  /// Responses for no pending call (timed out earlier, or never sent): dropped.
  uint64_t late_responses = 0;
  /// STREAM_DATA / WINDOW_UPDATE frames for streams this side does not have: dropped.
  uint64_t unknown_stream_frames = 0;
};

class Session;

/// Sends the answer to one request, once. Copyable (handlers may capture it); a request whose
/// Responders all disappear unanswered is answered with CODE_INTERNAL so no caller hangs.
class Responder {
 public:
  Responder(std::weak_ptr<Session> session, uint32_t request_id);
  /// Sends response; later calls (from any copy) are ignored.
  void operator()(v1::Response response) const;
  /// Sends an Error response.
  void fail(v1::Error::Code code, std::string message) const;
  uint32_t request_id() const;
  bool answered() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  enum class Role { client, server };

  struct Options {
    /// Names the connection in log lines ("vm 12 agent", "agent conn 3").
    std::string name = "agent";
    /// Largest frame payload accepted from the peer (and sent).
    uint32_t max_frame_payload = kMaxFramePayload;
    uint32_t stream_window = kStreamWindow;
    /// How long a connection closing after an error waits to flush its ERROR frame.
    std::chrono::milliseconds linger{1000};
    /// A peer that has not completed the handshake by then is dropped (ec = timeout), so a
    /// hung agent cannot hang the host and a silent client cannot pin an agent connection.
    std::chrono::milliseconds handshake_timeout{10000};
  };

  /// Told once, when the connection ends: ec = connection_closed for a clean end, otherwise
  /// the error; reason is a readable sentence naming what went wrong.
  using CloseHandler = std::function<void(std::error_code ec, const std::string& reason)>;
  using EventHandler = std::function<void(const v1::Event&)>;
  using RequestHandler = std::function<void(Session&, const v1::Request&, Responder)>;
  /// ec is set for transport errors and timeouts; a failure the agent reports arrives as a
  /// Response whose error case is set.
  using CallHandler = std::function<void(std::error_code ec, v1::Response response)>;
  using HelloHandler = std::function<void(std::error_code ec, const v1::HelloReply& reply)>;
  using ReadyHandler = std::function<void(const v1::Hello& hello)>;
  /// One chunk of stream data; ec = end_of_stream after the last one.
  using ReadHandler = std::function<void(std::error_code ec, std::string data)>;
  using WriteHandler = std::function<void(std::error_code ec)>;

  static std::shared_ptr<Session> create(Socket socket, Role role, Options options);
  static std::shared_ptr<Session> create(Socket socket, Role role) {
    return create(std::move(socket), role, Options{});
  }
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// Set before start_*.
  void set_close_handler(CloseHandler handler) { on_close_ = std::move(handler); }
  /// Client: receives Events (process exits, OOM).
  void set_event_handler(EventHandler handler) { on_event_ = std::move(handler); }

  /// Client: sends Hello (protocol_version is filled in) and starts reading. done gets the
  /// agent's HelloReply, or version_mismatch / remote_error with the reason in the close handler.
  void start_client(v1::Hello hello, HelloHandler done);
  /// Client: sends one request; done runs exactly once (response, timeout or connection error).
  /// A timeout leaves the connection usable; a response arriving later is dropped and counted.
  void call(v1::Request request, std::chrono::milliseconds timeout, CallHandler done);
  /// Client: a fresh stream id to name in a Process (stdin/stdout/stderr).
  uint32_t new_stream_id();

  /// Server: waits for Hello, checks the version (answering an ERROR naming both versions on
  /// mismatch), replies identity, then passes every request to handler.
  void start_server(v1::HelloReply identity, RequestHandler handler, ReadyHandler ready = {});
  /// Server: sends an event to the client (held back until the handshake is done, so the
  /// client always sees HelloReply first).
  void send_event(const v1::Event& event);

  /// Receiving side of a stream: must be opened before the peer may send on it (for a
  /// process's output: before sending the request that names the stream).
  void open_receive_stream(uint32_t id);
  /// Delivers the next chunk; consuming it grants the sender that much more credit.
  /// One read at a time per stream.
  void async_read_stream(uint32_t id, ReadHandler done);
  /// Queues data on a stream; done runs once all of it fit within the peer's window (so a
  /// producer that waits for done never has more than one window outstanding).
  void async_write_stream(uint32_t id, std::string data, WriteHandler done);
  /// Ends a stream (FIN) after the data already queued.
  void finish_stream(uint32_t id);
  /// Abandons a stream in both directions and tells the peer (STREAM_RESET).
  void reset_stream(uint32_t id);

  /// Closes the connection; the close handler gets connection_closed.
  void close();
  bool is_open() const { return !closed_; }
  /// Why the connection ended (empty while open).
  const std::string& close_reason() const { return close_reason_; }
  const SessionStats& stats() const { return stats_; }
  const std::string& name() const { return options_.name; }
  Socket::executor_type executor() { return socket_.get_executor(); }

 private:
  friend class Responder;
  struct PendingCall {
    CallHandler done;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  struct PendingWrite {
    std::string data;
    size_t offset = 0;
    WriteHandler done;
  };
  struct SendStream {
    int64_t credit = 0;
    std::deque<PendingWrite> queue;
    bool fin_requested = false;
  };
  struct RecvStream {
    std::deque<std::string> chunks;
    uint64_t ungranted = 0;  // received and not yet consumed
    bool fin = false;
    ReadHandler reader;
  };

  Session(Socket socket, Role role, Options options);

  // Reading and dispatch (session.cpp).
  void start_reading();
  void on_read(const boost::system::error_code& ec, size_t n);
  bool handle_frame(Frame& frame);
  bool handle_hello(const Frame& frame);
  bool handle_request(const Frame& frame);
  bool handle_response(const Frame& frame);
  bool handle_event(const Frame& frame);
  bool handle_error_frame(const Frame& frame);
  void send_response(uint32_t id, const v1::Response& response);

  void start_handshake_timer();

  // Writing and teardown (session.cpp).
  void enqueue(std::string frame);
  void write_next();
  /// A write failed: the peer is gone, but what it sent before going is still readable.
  void on_write_failed(const boost::system::error_code& ec);
  /// Fatal error: tell the peer (when send_error_frame), fail everything, tell the owner.
  void fail_connection(std::error_code ec, const std::string& reason, bool send_error_frame,
                       v1::Error::Code code = v1::Error::CODE_PROTOCOL);
  void close_socket();

  // Streams (session_streams.cpp).
  bool handle_stream_data(Frame& frame);
  bool handle_window_update(const Frame& frame);
  void handle_stream_reset(const Frame& frame);
  void pump(uint32_t id);
  void deliver(uint32_t id);
  void fail_streams(std::error_code ec);

  /// Runs f later on the session's thread, keeping the session alive until then.
  template <typename F>
  void post(F&& f) {
    boost::asio::post(socket_.get_executor(),
                      [self = shared_from_this(), f = std::forward<F>(f)]() mutable { f(); });
  }

  Socket socket_;
  const Role role_;
  const Options options_;
  FrameDecoder decoder_;
  std::vector<uint8_t> read_buffer_;
  std::deque<std::string> out_queue_;
  std::vector<std::string> held_until_handshake_;  // server frames produced before HelloReply
  std::vector<std::string> in_flight_;
  bool writing_ = false;
  bool closed_ = false;
  bool handshake_done_ = false;
  bool reading_ = false;
  bool write_failed_ = false;
  std::string close_reason_;
  std::unique_ptr<boost::asio::steady_timer> linger_timer_;  // also bounds on_write_failed
  std::unique_ptr<boost::asio::steady_timer> handshake_timer_;

  CloseHandler on_close_;
  EventHandler on_event_;
  RequestHandler on_request_;
  HelloHandler on_hello_;
  ReadyHandler on_ready_;
  v1::HelloReply identity_;

  uint32_t next_request_id_ = 1;
  uint32_t next_stream_id_ = 1;
  std::unordered_map<uint32_t, PendingCall> calls_;
  std::unordered_map<uint32_t, SendStream> send_streams_;
  std::unordered_map<uint32_t, RecvStream> recv_streams_;
  SessionStats stats_;
};

}  // namespace frakti::agent::protocol
