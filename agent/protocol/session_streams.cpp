// Session: stdio streams and their credit-based flow control (docs/agent-protocol.md,
// "Streams"). A receiver grants credit only for bytes its owner has consumed, so a producer
// that waits for its write handler can never run more than one window ahead of the consumer.

#include <algorithm>
#include <stdexcept>

#include "agent/protocol/session.hpp"
#include "common/log.hpp"

namespace frakti::agent::protocol {
namespace {

constexpr const char* kLog = "agent-proto";

common::log::RateLimiter& unknown_stream_limiter() {
  static common::log::RateLimiter limiter(10, std::chrono::seconds(1));
  return limiter;
}

}  // namespace

uint32_t Session::new_stream_id() {
  do {
    ++next_stream_id_;
  } while (next_stream_id_ == 0 || send_streams_.count(next_stream_id_) != 0 ||
           recv_streams_.count(next_stream_id_) != 0);
  return next_stream_id_;
}

void Session::open_receive_stream(uint32_t id) {
  if (id == 0) throw std::invalid_argument("agent protocol: stream id 0 is reserved");
  if (closed_) return;
  recv_streams_.try_emplace(id);
}

void Session::async_read_stream(uint32_t id, ReadHandler done) {
  auto it = recv_streams_.find(id);
  if (it == recv_streams_.end()) {
    std::error_code ec = closed_ ? make_error_code(ProtocolErrc::connection_closed)
                                 : make_error_code(ProtocolErrc::stream_reset);
    post([done = std::move(done), ec] { done(ec, {}); });
    return;
  }
  if (it->second.reader) {
    post([done = std::move(done)] { done(ProtocolErrc::stream_busy, {}); });
    return;
  }
  it->second.reader = std::move(done);
  deliver(id);
}

void Session::deliver(uint32_t id) {
  auto it = recv_streams_.find(id);
  if (it == recv_streams_.end() || !it->second.reader) return;
  RecvStream& s = it->second;
  if (!s.chunks.empty()) {
    std::string chunk = std::move(s.chunks.front());
    s.chunks.pop_front();
    s.ungranted -= chunk.size();
    // The owner has taken these bytes: the sender may send as many again.
    enqueue(encode_window_update(id, static_cast<uint32_t>(chunk.size())));
    post([done = std::move(s.reader), chunk = std::move(chunk)]() mutable {
      done({}, std::move(chunk));
    });
    s.reader = nullptr;
  } else if (s.fin) {
    post([done = std::move(s.reader)] { done(ProtocolErrc::end_of_stream, {}); });
    recv_streams_.erase(it);
  }
}

bool Session::handle_stream_data(Frame& frame) {
  uint32_t id = frame.stream_id;
  bool fin = (frame.flags & frame_flags::kFin) != 0;
  auto it = recv_streams_.find(id);
  if (it == recv_streams_.end()) {
    ++stats_.unknown_stream_frames;
    uint64_t suppressed = 0;
    if (unknown_stream_limiter().allow(&suppressed)) {
      common::log::debug(kLog, "{}: dropped {} bytes for unknown stream {} ({} suppressed)",
                         options_.name, frame.payload.size(), id, suppressed);
    }
    // Tell the sender to stop instead of letting it block on credit that never comes.
    if (!frame.payload.empty()) enqueue(encode_frame(FrameType::stream_reset, 0, id, {}));
    return true;
  }
  RecvStream& s = it->second;
  if (s.fin) {
    fail_connection(ProtocolErrc::unexpected_frame,
                    fmt::format("STREAM_DATA on stream {} after its FIN", id), true);
    return false;
  }
  s.ungranted += frame.payload.size();
  if (s.ungranted > options_.stream_window) {
    fail_connection(ProtocolErrc::window_exceeded,
                    fmt::format("stream {}: peer has {} unacknowledged bytes in flight, the "
                                "window is {}",
                                id, s.ungranted, options_.stream_window),
                    true);
    return false;
  }
  if (!frame.payload.empty()) s.chunks.push_back(std::move(frame.payload));
  if (fin) s.fin = true;
  deliver(id);
  return true;
}

bool Session::handle_window_update(const Frame& frame) {
  uint32_t increment = decode_window_increment(frame.payload);
  auto it = send_streams_.find(frame.stream_id);
  if (it == send_streams_.end()) {
    ++stats_.unknown_stream_frames;  // the stream ended or was reset meanwhile
    return true;
  }
  it->second.credit += increment;
  if (it->second.credit > static_cast<int64_t>(options_.stream_window)) {
    fail_connection(ProtocolErrc::window_exceeded,
                    fmt::format("stream {}: peer granted credit up to {} bytes, beyond the "
                                "{}-byte window",
                                frame.stream_id, it->second.credit, options_.stream_window),
                    true);
    return false;
  }
  pump(frame.stream_id);
  return true;
}

void Session::handle_stream_reset(const Frame& frame) {
  uint32_t id = frame.stream_id;
  if (auto it = send_streams_.find(id); it != send_streams_.end()) {
    for (auto& w : it->second.queue) {
      post([done = std::move(w.done)] { done(ProtocolErrc::stream_reset); });
    }
    send_streams_.erase(it);
  }
  if (auto it = recv_streams_.find(id); it != recv_streams_.end()) {
    if (it->second.reader) {
      post([done = std::move(it->second.reader)] { done(ProtocolErrc::stream_reset, {}); });
    }
    recv_streams_.erase(it);
  }
}

void Session::async_write_stream(uint32_t id, std::string data, WriteHandler done) {
  if (id == 0) throw std::invalid_argument("agent protocol: stream id 0 is reserved");
  if (closed_) {
    post([done = std::move(done)] { done(ProtocolErrc::connection_closed); });
    return;
  }
  auto [it, created] = send_streams_.try_emplace(id);
  if (created) it->second.credit = options_.stream_window;
  if (it->second.fin_requested) {
    post([done = std::move(done)] { done(ProtocolErrc::end_of_stream); });
    return;
  }
  it->second.queue.push_back(PendingWrite{std::move(data), 0, std::move(done)});
  pump(id);
}

void Session::pump(uint32_t id) {
  auto it = send_streams_.find(id);
  if (it == send_streams_.end()) return;
  SendStream& s = it->second;
  const size_t max_chunk = std::min<size_t>(kMaxStreamChunk, options_.max_frame_payload);
  while (!s.queue.empty()) {
    PendingWrite& w = s.queue.front();
    size_t remaining = w.data.size() - w.offset;
    if (remaining > 0) {
      if (s.credit <= 0) return;
      size_t n = std::min({remaining, static_cast<size_t>(s.credit), max_chunk});
      enqueue(encode_frame(FrameType::stream_data, 0, id,
                           std::string_view(w.data).substr(w.offset, n)));
      w.offset += n;
      s.credit -= static_cast<int64_t>(n);
      if (w.offset < w.data.size()) continue;
    }
    post([done = std::move(w.done)] {
      if (done) done({});
    });
    s.queue.pop_front();
  }
  if (s.fin_requested) {
    enqueue(encode_frame(FrameType::stream_data, frame_flags::kFin, id, {}));
    send_streams_.erase(it);
  }
}

void Session::finish_stream(uint32_t id) {
  if (closed_ || id == 0) return;
  auto it = send_streams_.find(id);
  if (it == send_streams_.end()) {
    enqueue(encode_frame(FrameType::stream_data, frame_flags::kFin, id, {}));
    return;
  }
  it->second.fin_requested = true;
  pump(id);
}

void Session::reset_stream(uint32_t id) {
  if (closed_ || id == 0) return;
  Frame as_if_peer{FrameType::stream_reset, 0, id, {}};
  handle_stream_reset(as_if_peer);  // fails our own waiters the same way
  enqueue(encode_frame(FrameType::stream_reset, 0, id, {}));
}

void Session::fail_streams(std::error_code ec) {
  for (auto& [id, s] : send_streams_) {
    for (auto& w : s.queue) {
      post([done = std::move(w.done), ec] {
        if (done) done(ec);
      });
    }
  }
  send_streams_.clear();
  for (auto& [id, s] : recv_streams_) {
    if (s.reader) post([done = std::move(s.reader), ec] { done(ec, {}); });
  }
  recv_streams_.clear();
}

}  // namespace frakti::agent::protocol
