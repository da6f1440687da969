#include "agent/protocol/session.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <stdexcept>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "agent/protocol/version.hpp"
#include "common/error.hpp"
#include "common/log.hpp"

namespace frakti::agent::protocol {
namespace {

constexpr const char* kLog = "agent-proto";
constexpr size_t kReadBufferSize = 64u << 10;

// Anything a peer can trigger at will is logged through this, so a hostile guest cannot flood
// the host's log.
common::log::RateLimiter& peer_log_limiter() {
  static common::log::RateLimiter limiter(20, std::chrono::seconds(1));
  return limiter;
}

}  // namespace

Socket adopt_socket(boost::asio::io_context& io, common::Fd fd) {
  int domain = 0;
  socklen_t len = sizeof(domain);
  common::check(::getsockopt(fd.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len),
                "getsockopt SO_DOMAIN on agent connection fd {}", fd.get());
  Socket socket(io);
  boost::system::error_code ec;
  socket.assign(boost::asio::generic::stream_protocol(domain, 0), fd.get(), ec);
  if (ec) common::throw_error(ec.value(), "adopt agent connection socket");
  fd.release();
  return socket;
}

// ---------------------------------------------------------------------------------------------
// Responder

struct Responder::State {
  std::weak_ptr<Session> session;
  uint32_t id = 0;
  bool done = false;

  ~State() {
    if (done) return;
    if (auto s = session.lock(); s && s->is_open()) {
      v1::Response r;
      r.mutable_error()->set_code(v1::Error::CODE_INTERNAL);
      r.mutable_error()->set_message("the agent dropped this request without answering");
      s->send_response(id, r);
    }
  }
};

Responder::Responder(std::weak_ptr<Session> session, uint32_t request_id)
    : state_(std::make_shared<State>()) {
  state_->session = std::move(session);
  state_->id = request_id;
}

void Responder::operator()(v1::Response response) const {
  if (state_->done) return;
  state_->done = true;
  if (auto s = state_->session.lock(); s && s->is_open()) s->send_response(state_->id, response);
}

void Responder::fail(v1::Error::Code code, std::string message) const {
  v1::Response r;
  r.mutable_error()->set_code(code);
  r.mutable_error()->set_message(std::move(message));
  (*this)(std::move(r));
}

uint32_t Responder::request_id() const { return state_->id; }
bool Responder::answered() const { return state_->done; }

// ---------------------------------------------------------------------------------------------
// Session: setup and handshake

std::shared_ptr<Session> Session::create(Socket socket, Role role, Options options) {
  return std::shared_ptr<Session>(new Session(std::move(socket), role, std::move(options)));
}

Session::Session(Socket socket, Role role, Options options)
    : socket_(std::move(socket)),
      role_(role),
      options_(std::move(options)),
      decoder_(options_.max_frame_payload),
      read_buffer_(kReadBufferSize) {}

Session::~Session() = default;

void Session::start_client(v1::Hello hello, HelloHandler done) {
  if (role_ != Role::client) throw std::logic_error("start_client on a server session");
  on_hello_ = std::move(done);
  hello.set_protocol_version(kProtocolVersion);
  if (closed_) {
    post([this] { on_hello_(ProtocolErrc::connection_closed, v1::HelloReply{}); });
    return;
  }
  if (auto f = encode_message_frame(FrameType::hello, 0, hello, options_.max_frame_payload)) {
    enqueue(std::move(*f));
  } else {
    fail_connection(ProtocolErrc::message_too_large, "Hello message too large", false);
    return;
  }
  start_handshake_timer();
  start_reading();
}

void Session::start_handshake_timer() {
  handshake_timer_ = std::make_unique<boost::asio::steady_timer>(socket_.get_executor(),
                                                                  options_.handshake_timeout);
  handshake_timer_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->handshake_done_) return;
    self->fail_connection(
        ProtocolErrc::timeout,
        fmt::format("no {} within {} ms of connecting",
                    self->role_ == Role::client ? "HelloReply from the agent" : "Hello from the host",
                    self->options_.handshake_timeout.count()),
        false);
  });
}

void Session::start_server(v1::HelloReply identity, RequestHandler handler, ReadyHandler ready) {
  if (role_ != Role::server) throw std::logic_error("start_server on a client session");
  identity_ = std::move(identity);
  identity_.set_protocol_version(kProtocolVersion);
  on_request_ = std::move(handler);
  on_ready_ = std::move(ready);
  start_handshake_timer();
  start_reading();
}

bool Session::handle_hello(const Frame& frame) {
  if (handshake_done_) {
    fail_connection(ProtocolErrc::unexpected_frame, "second HELLO frame on one connection", true);
    return false;
  }
  if (role_ == Role::server) {
    v1::Hello hello;
    if (!hello.ParseFromString(frame.payload)) {
      fail_connection(ProtocolErrc::bad_payload, "HELLO frame payload is not a Hello message",
                      true);
      return false;
    }
    if (hello.protocol_version() != kProtocolVersion) {
      fail_connection(ProtocolErrc::version_mismatch,
                      fmt::format("agent protocol version mismatch: host speaks version {}, "
                                  "agent speaks version {}; install matching frakti and guest "
                                  "agent builds",
                                  hello.protocol_version(), kProtocolVersion),
                      true, v1::Error::CODE_VERSION_MISMATCH);
      return false;
    }
    handshake_done_ = true;
    if (handshake_timer_) handshake_timer_->cancel();
    auto reply = encode_message_frame(FrameType::hello, 0, identity_, options_.max_frame_payload);
    if (!reply) {
      fail_connection(ProtocolErrc::message_too_large, "HelloReply message too large", false);
      return false;
    }
    enqueue(std::move(*reply));
    for (auto& held : held_until_handshake_) enqueue(std::move(held));
    held_until_handshake_.clear();
    if (on_ready_) post([this, hello = std::move(hello)] {
      if (on_ready_) on_ready_(hello);
    });
    return true;
  }
  v1::HelloReply reply;
  if (!reply.ParseFromString(frame.payload)) {
    fail_connection(ProtocolErrc::bad_payload, "HELLO frame payload is not a HelloReply message",
                    true);
    return false;
  }
  if (reply.protocol_version() != kProtocolVersion) {
    fail_connection(ProtocolErrc::version_mismatch,
                    fmt::format("agent protocol version mismatch: host speaks version {}, agent "
                                "speaks version {}; install matching frakti and guest agent builds",
                                kProtocolVersion, reply.protocol_version()),
                    true, v1::Error::CODE_VERSION_MISMATCH);
    return false;
  }
  handshake_done_ = true;
  if (handshake_timer_) handshake_timer_->cancel();
  if (on_hello_) {
    post([this, reply = std::move(reply)] {
      auto done = std::move(on_hello_);
      on_hello_ = nullptr;
      done({}, reply);
    });
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Calls, requests, responses, events

void Session::call(v1::Request request, std::chrono::milliseconds timeout, CallHandler done) {
  if (role_ != Role::client) throw std::logic_error("call on a server session");
  if (closed_) {
    post([done = std::move(done)] { done(ProtocolErrc::connection_closed, v1::Response{}); });
    return;
  }
  do {
    ++next_request_id_;
  } while (next_request_id_ == 0 || calls_.count(next_request_id_) != 0);
  uint32_t id = next_request_id_;
  auto ms = std::clamp<int64_t>(timeout.count(), 0, UINT32_MAX);
  request.set_timeout_ms(static_cast<uint32_t>(ms));
  auto frame = encode_message_frame(FrameType::request, id, request, options_.max_frame_payload);
  if (!frame) {
    post([done = std::move(done)] { done(ProtocolErrc::message_too_large, v1::Response{}); });
    return;
  }
  PendingCall pending{std::move(done),
                      std::make_unique<boost::asio::steady_timer>(socket_.get_executor(), timeout)};
  pending.timer->async_wait([self = shared_from_this(), id](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: answered or closed
    auto it = self->calls_.find(id);
    if (it == self->calls_.end()) return;
    auto handler = std::move(it->second.done);
    self->calls_.erase(it);
    handler(ProtocolErrc::timeout, v1::Response{});
  });
  calls_.emplace(id, std::move(pending));
  enqueue(std::move(*frame));
}

bool Session::handle_request(const Frame& frame) {
  v1::Request request;
  if (!request.ParseFromString(frame.payload)) {
    fail_connection(ProtocolErrc::bad_payload,
                    fmt::format("REQUEST {} payload is not a Request message", frame.stream_id),
                    true);
    return false;
  }
  Responder responder(weak_from_this(), frame.stream_id);
  if (!on_request_) {
    responder.fail(v1::Error::CODE_UNIMPLEMENTED, "this endpoint serves no requests");
    return true;
  }
  // A handler's exception is the agent's failure, not the connection's: answer and go on.
  try {
    on_request_(*this, request, responder);
  } catch (const std::exception& e) {
    responder.fail(v1::Error::CODE_INTERNAL, fmt::format("request failed: {}", e.what()));
  }
  return true;
}

void Session::send_response(uint32_t id, const v1::Response& response) {
  if (closed_) return;
  auto frame = encode_message_frame(FrameType::response, id, response, options_.max_frame_payload);
  if (!frame) {
    v1::Response error;
    error.mutable_error()->set_code(v1::Error::CODE_RESOURCE_EXHAUSTED);
    error.mutable_error()->set_message(
        fmt::format("response of {} bytes exceeds the {}-byte frame limit",
                    response.ByteSizeLong(), options_.max_frame_payload));
    frame = encode_message_frame(FrameType::response, id, error, options_.max_frame_payload);
  }
  enqueue(std::move(*frame));
}

bool Session::handle_response(const Frame& frame) {
  auto it = calls_.find(frame.stream_id);
  if (it == calls_.end()) {
    ++stats_.late_responses;
    common::log::debug(kLog, "{}: dropped response {} for no pending call", options_.name,
                       frame.stream_id);
    return true;
  }
  v1::Response response;
  if (!response.ParseFromString(frame.payload)) {
    fail_connection(ProtocolErrc::bad_payload,
                    fmt::format("RESPONSE {} payload is not a Response message", frame.stream_id),
                    true);
    return false;
  }
  auto done = std::move(it->second.done);
  it->second.timer->cancel();
  calls_.erase(it);
  post([done = std::move(done), response = std::move(response)]() mutable {
    done({}, std::move(response));
  });
  return true;
}

void Session::send_event(const v1::Event& event) {
  if (role_ != Role::server) throw std::logic_error("send_event on a client session");
  if (closed_) return;
  auto frame = encode_message_frame(FrameType::event, 0, event, options_.max_frame_payload);
  if (!frame) {
    common::log::error(kLog, "{}: event of {} bytes exceeds the frame limit; dropped",
                       options_.name, event.ByteSizeLong());
    return;
  }
  enqueue(std::move(*frame));
}

bool Session::handle_event(const Frame& frame) {
  v1::Event event;
  if (!event.ParseFromString(frame.payload)) {
    fail_connection(ProtocolErrc::bad_payload, "EVENT payload is not an Event message", true);
    return false;
  }
  if (on_event_) post([this, event = std::move(event)] {
    if (on_event_) on_event_(event);
  });
  return true;
}

bool Session::handle_error_frame(const Frame& frame) {
  v1::Error error;
  std::string text = error.ParseFromString(frame.payload)
                         ? error.message()
                         : std::string("(unreadable ERROR payload)");
  auto code = error.code() == v1::Error::CODE_VERSION_MISMATCH ? ProtocolErrc::version_mismatch
                                                                : ProtocolErrc::remote_error;
  fail_connection(code, fmt::format("peer closed the connection with an error: {}", text), false);
  return false;
}

// ---------------------------------------------------------------------------------------------
// Reading

void Session::start_reading() {
  if (reading_ || closed_) return;
  reading_ = true;
  socket_.async_read_some(
      boost::asio::buffer(read_buffer_),
      [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
        self->on_read(ec, n);
      });
}

void Session::on_read(const boost::system::error_code& ec, size_t n) {
  reading_ = false;
  if (closed_) return;
  if (ec) {
    if (ec == boost::asio::error::eof) {
      if (decoder_.finish() == FrameDecoder::Status::error) {
        fail_connection(decoder_.error().code, decoder_.error().message, false);
      } else {
        fail_connection(ProtocolErrc::connection_closed, "peer closed the connection", false);
      }
    } else {
      fail_connection(ec, fmt::format("read from peer: {}", ec.message()), false);
    }
    return;
  }
  stats_.bytes_received += n;
  decoder_.feed(read_buffer_.data(), n);
  Frame frame;
  for (;;) {
    auto status = decoder_.next(frame);
    if (status == FrameDecoder::Status::need_more) break;
    if (status == FrameDecoder::Status::error) {
      fail_connection(decoder_.error().code, decoder_.error().message, true);
      return;
    }
    ++stats_.frames_received;
    if (!handle_frame(frame) || closed_) return;
  }
  start_reading();
}

bool Session::handle_frame(Frame& frame) {
  auto unexpected = [&](const char* why) {
    fail_connection(ProtocolErrc::unexpected_frame,
                    fmt::format("{} frame {}", frame_type_name(static_cast<uint8_t>(frame.type)),
                                why),
                    true);
    return false;
  };
  if (frame.type == FrameType::error) return handle_error_frame(frame);
  if (frame.type == FrameType::hello) return handle_hello(frame);
  if (!handshake_done_) return unexpected("before the HELLO handshake");
  switch (frame.type) {
    case FrameType::request:
      if (role_ != Role::server) return unexpected("sent to the host side");
      return handle_request(frame);
    case FrameType::response:
      if (role_ != Role::client) return unexpected("sent to the agent side");
      return handle_response(frame);
    case FrameType::event:
      if (role_ != Role::client) return unexpected("sent to the agent side");
      return handle_event(frame);
    case FrameType::stream_data: return handle_stream_data(frame);
    case FrameType::window_update: return handle_window_update(frame);
    case FrameType::stream_reset: handle_stream_reset(frame); return true;
    default: return unexpected("of an unexpected type");
  }
}

// ---------------------------------------------------------------------------------------------
// Writing and teardown

void Session::enqueue(std::string frame) {
  if (role_ == Role::server && !handshake_done_) {
    held_until_handshake_.push_back(std::move(frame));
    return;
  }
  ++stats_.frames_sent;
  out_queue_.push_back(std::move(frame));
  write_next();
}

void Session::write_next() {
  if (writing_ || write_failed_ || out_queue_.empty() || !socket_.is_open()) return;
  in_flight_.assign(std::make_move_iterator(out_queue_.begin()),
                    std::make_move_iterator(out_queue_.end()));
  out_queue_.clear();
  std::vector<boost::asio::const_buffer> buffers;
  buffers.reserve(in_flight_.size());
  for (const auto& f : in_flight_) buffers.push_back(boost::asio::buffer(f));
  writing_ = true;
  boost::asio::async_write(
      socket_, buffers,
      [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
        self->writing_ = false;
        self->in_flight_.clear();
        self->stats_.bytes_sent += n;
        if (ec) {
          if (self->closed_) {
            self->close_socket();
          } else {
            self->on_write_failed(ec);
          }
          return;
        }
        if (self->closed_ && self->out_queue_.empty()) {
          self->close_socket();  // the ERROR frame is out
          return;
        }
        self->write_next();
      });
}

// A peer that sends an ERROR frame (or a last response) and closes makes our next write fail
// with EPIPE, often before the read side has run. Its own words are still in the receive
// queue: the read side, already waiting, gets them and then EOF, and closes the connection
// with the real reason. The write error is the reason only when reading cannot settle it.
void Session::on_write_failed(const boost::system::error_code& ec) {
  write_failed_ = true;
  out_queue_.clear();
  std::string reason = fmt::format("write to peer: {}", ec.message());
  if (!reading_) {
    fail_connection(ec, reason, false);
    return;
  }
  linger_timer_ = std::make_unique<boost::asio::steady_timer>(socket_.get_executor(),
                                                              options_.linger);
  linger_timer_->async_wait(
      [self = shared_from_this(), ec, reason](const boost::system::error_code& e) {
        if (!e) self->fail_connection(ec, reason, false);
      });
}

void Session::close() {
  fail_connection(ProtocolErrc::connection_closed, "closed by its owner", false);
}

void Session::fail_connection(std::error_code ec, const std::string& reason,
                              bool send_error_frame, v1::Error::Code code) {
  if (closed_) return;
  closed_ = true;
  close_reason_ = reason;
  if (ec != ProtocolErrc::connection_closed) {
    uint64_t suppressed = 0;
    if (peer_log_limiter().allow(&suppressed)) {
      common::log::warn(kLog, "{}: closing connection: {} ({} earlier messages suppressed)",
                        options_.name, reason, suppressed);
    }
  }
  if (send_error_frame && socket_.is_open()) {
    v1::Error error;
    error.set_code(code);
    error.set_message(reason);
    if (auto f = encode_message_frame(FrameType::error, 0, error, options_.max_frame_payload)) {
      ++stats_.frames_sent;
      out_queue_.push_back(std::move(*f));
    }
  }
  for (auto& [id, pending] : calls_) {
    pending.timer->cancel();
    post([done = std::move(pending.done)] {
      done(ProtocolErrc::connection_closed, v1::Response{});
    });
  }
  calls_.clear();
  if (on_hello_) {
    post([this, ec] {
      if (!on_hello_) return;
      auto done = std::move(on_hello_);
      on_hello_ = nullptr;
      done(ec, v1::HelloReply{});
    });
  }
  fail_streams(ProtocolErrc::connection_closed);
  if ((out_queue_.empty() || write_failed_) && !writing_) {
    close_socket();
  } else {
    // Flush the ERROR frame, but never wait on a peer that stopped reading.
    linger_timer_ = std::make_unique<boost::asio::steady_timer>(socket_.get_executor(),
                                                                options_.linger);
    linger_timer_->async_wait([self = shared_from_this()](const boost::system::error_code& e) {
      if (!e) self->close_socket();
    });
    write_next();
  }
  // Handlers may hold the session (a cycle); drop them once nothing of ours is running.
  post([this, ec, reason] {
    auto on_close = std::move(on_close_);
    on_close_ = nullptr;
    on_request_ = nullptr;
    on_event_ = nullptr;
    on_ready_ = nullptr;
    if (on_close) on_close(ec, reason);
  });
}

void Session::close_socket() {
  boost::system::error_code ignored;
  if (linger_timer_) linger_timer_->cancel();
  if (handshake_timer_) handshake_timer_->cancel();
  if (socket_.is_open()) {
    socket_.shutdown(boost::asio::socket_base::shutdown_both, ignored);
    socket_.close(ignored);
  }
}

}  // namespace frakti::agent::protocol
