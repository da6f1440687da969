#include "vmm/control/control_server.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <set>
#include <system_error>

#include "common/error.hpp"
#include "common/log.hpp"
#include "vmm/control/command_thread.hpp"
#include "vmm/control/unix_socket.hpp"

namespace frakti::vmm::control {

namespace asio = boost::asio;
using boost::system::error_code;
using Socket = asio::local::stream_protocol::socket;

namespace {

constexpr const char* kLog = "control";

/// The error reply for an exception a handler threw (see control_handler.hpp for the mapping).
std::string error_reply_for_current_exception(uint64_t id) {
  try {
    throw;
  } catch (const ControlError& e) {
    return encode_error(id, e.code(), e.what());
  } catch (const std::invalid_argument& e) {
    return encode_error(id, ErrorCode::invalid_argument, e.what());
  } catch (const std::system_error& e) {
    bool missing = e.code() == std::errc::no_such_file_or_directory;
    return encode_error(id, missing ? ErrorCode::not_found : ErrorCode::internal, e.what());
  } catch (const std::exception& e) {
    return encode_error(id, ErrorCode::internal, e.what());
  } catch (...) {
    return encode_error(id, ErrorCode::internal, "the VMM failed with an unknown error");
  }
}

/// Runs one command on the command thread; returns the reply line. Never throws.
std::string run_command(ControlHandler& handler, const Request& req) {
  try {
    Json result = Json::object();
    switch (req.method) {
      case Method::pause:
        handler.pause();
        break;
      case Method::resume:
        handler.resume();
        break;
      case Method::stop: {
        StopResult r = handler.stop(req.stop.graceful, req.stop.timeout);
        result["forced"] = r.forced;
        break;
      }
      case Method::set_drive:
        handler.set_drive(req.drive.slot, req.drive.path, req.drive.read_only, req.drive.serial);
        break;
      case Method::status:
      case Method::boot_time:
        throw std::logic_error("a query was sent to the command thread");
    }
    common::log::info(kLog, "{} (request {}) done", method_name(req.method), req.id);
    return encode_result(req.id, result);
  } catch (...) {
    std::string reply = error_reply_for_current_exception(req.id);
    common::log::warn(kLog, "{} (request {}) failed: {}", method_name(req.method), req.id,
                      reply.substr(0, reply.size() - 1));
    return reply;
  }
}

std::string describe(const Request& req) {
  switch (req.method) {
    case Method::stop:
      return fmt::format("stop graceful={} timeout={}ms", req.stop.graceful,
                         req.stop.timeout.count());
    case Method::set_drive:
      return req.drive.path
                 ? fmt::format("set_drive slot={} path={} read_only={} serial='{}'", req.drive.slot,
                               *req.drive.path, req.drive.read_only, req.drive.serial)
                 : fmt::format("set_drive slot={} eject", req.drive.slot);
    default:
      return method_name(req.method);
  }
}

}  // namespace

// One client connection. Loop thread only.
struct ControlServer::Connection {
  Connection(Socket s, uint64_t n) : sock(std::move(s)), number(n) {}

  Socket sock;
  uint64_t number;
  std::array<char, 4096> read_buf{};
  std::string in;               // bytes received after the last complete line
  std::deque<std::string> out;  // reply lines not yet written; front() is being written
  size_t out_bytes = 0;
  bool writing = false;
  size_t in_flight = 0;       // commands whose replies are still to come
  bool reading_done = false;  // EOF seen or reading stopped; close once nothing is owed
  bool closing = false;       // close once `out` is written, whatever is in flight
  bool closed = false;
};

// Everything the server owns, shared with its queued callbacks (they hold it weakly), so the
// server can go away while callbacks are still queued on the io_context. Loop thread only,
// except `handler` (also the command thread) and the counters.
struct ControlServer::Core : std::enable_shared_from_this<Core> {
  Core(asio::io_context& io_, std::string path_, ControlHandler& handler_, Options options_)
      : io(io_),
        path(std::move(path_)),
        handler(handler_),
        options(options_),
        owner_uid(options_.owner_uid.value_or(::geteuid())),
        acceptor(io_),
        retry_timer(io_) {}

  asio::io_context& io;
  const std::string path;
  ControlHandler& handler;
  const Options options;
  const uid_t owner_uid;
  UnixListener listener;
  asio::local::stream_protocol::acceptor acceptor;
  asio::steady_timer retry_timer;
  std::set<std::shared_ptr<Connection>> connections;
  uint64_t next_number = 1;
  size_t queued_commands = 0;
  bool stopped = false;
  std::unique_ptr<CommandThread> commands = std::make_unique<CommandThread>();
  std::atomic<uint64_t> bad_requests{0};
  common::log::RateLimiter bad_log{10, std::chrono::seconds(1)};

  void accept_next();
  void on_accept(Socket socket);
  void read_next(const std::shared_ptr<Connection>& c);
  void on_data(const std::shared_ptr<Connection>& c, size_t n);
  void handle_line(const std::shared_ptr<Connection>& c, std::string_view line);
  void submit_command(const std::shared_ptr<Connection>& c, Request req);
  /// Sends an error reply for a bad or refused request; close_after: then end the connection.
  void reject(const std::shared_ptr<Connection>& c, std::optional<uint64_t> id, ErrorCode code,
              const std::string& message, bool close_after = false);
  void send(const std::shared_ptr<Connection>& c, std::string line);
  void write_next(const std::shared_ptr<Connection>& c);
  void maybe_close(const std::shared_ptr<Connection>& c);
  void close(const std::shared_ptr<Connection>& c);
  void stop();

  template <typename... Args>
  void warn_limited(fmt::format_string<Args...> f, Args&&... args) {
    uint64_t suppressed = 0;
    if (!bad_log.allow(&suppressed)) return;
    std::string msg = fmt::format(f, std::forward<Args>(args)...);
    if (suppressed) msg += fmt::format(" ({} similar messages suppressed)", suppressed);
    common::log::warn(kLog, "{}", msg);
  }
};

void ControlServer::Core::accept_next() {
  if (stopped) return;
  std::weak_ptr<Core> weak = shared_from_this();
  acceptor.async_accept([weak](const error_code& ec, Socket socket) {
    auto core = weak.lock();
    if (!core || core->stopped) return;
    if (ec) {
      // Usually EMFILE: wait for fds to free up rather than spin or give up on the socket.
      core->warn_limited("accepting a control connection on {} failed: {}; retrying in 100 ms",
                         core->path, ec.message());
      core->retry_timer.expires_after(std::chrono::milliseconds(100));
      core->retry_timer.async_wait([weak](const error_code& e) {
        if (auto c = weak.lock(); c && !e) c->accept_next();
      });
      return;
    }
    core->on_accept(std::move(socket));
    core->accept_next();
  });
}

void ControlServer::Core::on_accept(Socket socket) {
  auto c = std::make_shared<Connection>(std::move(socket), next_number++);
  connections.insert(c);
  // Refused connections get one error reply (they may already have sent requests) and close.
  std::optional<uid_t> uid;
  try {
    uid = peer_uid(c->sock.native_handle());
  } catch (const std::system_error& e) {
    common::log::warn(kLog, "control connection {}: {}", c->number, e.what());
  }
  if (!uid || !(*uid == owner_uid || (options.allow_root && *uid == 0))) {
    reject(c, std::nullopt, ErrorCode::permission_denied,
           uid ? fmt::format("uid {} may not use this VMM's control socket (owner uid {})", *uid,
                             owner_uid)
               : std::string("the control socket could not identify its peer"),
           true);
    return;
  }
  if (connections.size() > options.max_connections) {
    reject(c, std::nullopt, ErrorCode::failed_precondition,
           fmt::format("too many control connections (limit {}); close one and retry",
                       options.max_connections),
           true);
    return;
  }
  read_next(c);
}

void ControlServer::Core::read_next(const std::shared_ptr<Connection>& c) {
  std::weak_ptr<Core> weak = shared_from_this();
  c->sock.async_read_some(asio::buffer(c->read_buf), [weak, c](const error_code& ec, size_t n) {
    auto core = weak.lock();
    if (!core || c->closed) return;
    if (ec) {
      // EOF (possibly a half-close after the last request: still owed its replies) or a reset.
      // A partial line left in `in` was never a request and gets no reply.
      c->reading_done = true;
      if (ec != asio::error::eof) c->closing = true;
      core->maybe_close(c);
      return;
    }
    core->on_data(c, n);
    if (!c->closed && !c->reading_done) core->read_next(c);
  });
}

void ControlServer::Core::on_data(const std::shared_ptr<Connection>& c, size_t n) {
  c->in.append(c->read_buf.data(), n);
  size_t start = 0;
  while (!c->closed && !c->reading_done) {
    size_t nl = c->in.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(c->in.data() + start, nl - start);
    if (line.size() > options.max_line_bytes) break;  // reported below
    handle_line(c, line);
    start = nl + 1;
  }
  c->in.erase(0, start);
  if (c->closed || c->reading_done) return;
  size_t line_len = std::min(c->in.find('\n'), c->in.size());
  if (line_len > options.max_line_bytes) {
    reject(c, std::nullopt, ErrorCode::invalid_argument,
           fmt::format("request line longer than {} bytes; closing the connection",
                       options.max_line_bytes),
           true);
  }
}

void ControlServer::Core::handle_line(const std::shared_ptr<Connection>& c, std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == std::string_view::npos) return;  // blank: ignored

  auto parsed = parse_request(line, handler.drive_slot_count());
  if (auto* err = std::get_if<RequestError>(&parsed)) {
    reject(c, err->id, err->code, err->message);
    return;
  }
  Request req = std::get<Request>(std::move(parsed));
  if (req.method != Method::status && req.method != Method::boot_time) {
    submit_command(c, std::move(req));
    return;
  }
  // Queries run inline: the handler promises status() is quick.
  try {
    VmStatus s = handler.status();
    Json result = req.method == Method::status
                      ? status_to_json(s)
                      : Json{{"boot_time_us", status_to_json(s)["boot_time_us"]}};
    send(c, encode_result(req.id, result));
  } catch (...) {
    std::string reply = error_reply_for_current_exception(req.id);
    common::log::warn(kLog, "{} (request {}) failed: {}", method_name(req.method), req.id,
                      reply.substr(0, reply.size() - 1));
    send(c, std::move(reply));
  }
}

void ControlServer::Core::submit_command(const std::shared_ptr<Connection>& c, Request req) {
  if (queued_commands >= options.max_queued_commands) {
    reject(c, req.id, ErrorCode::failed_precondition,
           fmt::format("{} control commands are already waiting; retry once they finish",
                       queued_commands));
    return;
  }
  common::log::info(kLog, "connection {} request {}: {}", c->number, req.id, describe(req));
  ++queued_commands;
  ++c->in_flight;
  std::weak_ptr<Core> weak_core = shared_from_this();
  std::weak_ptr<Connection> weak_conn = c;
  // The handler and io_context outlive the server, and ~ControlServer joins this thread before
  // either goes, so the job may hold plain references to them.
  commands->post([&handler = handler, &io = io, weak_core, weak_conn, req = std::move(req)] {
    std::string reply = run_command(handler, req);
    asio::post(io, [weak_core, weak_conn, reply = std::move(reply)]() mutable {
      auto core = weak_core.lock();
      if (!core) return;
      --core->queued_commands;
      auto conn = weak_conn.lock();
      if (!conn || conn->closed) return;  // the client left; the command still took effect
      --conn->in_flight;
      core->send(conn, std::move(reply));
      core->maybe_close(conn);
    });
  });
}

void ControlServer::Core::reject(const std::shared_ptr<Connection>& c, std::optional<uint64_t> id,
                                 ErrorCode code, const std::string& message, bool close_after) {
  bad_requests.fetch_add(1, std::memory_order_relaxed);
  warn_limited("control connection {}: {}: {}", c->number, error_code_name(code), message);
  if (close_after) {
    c->reading_done = true;
    c->closing = true;
  }
  send(c, encode_error(id, code, message));
  maybe_close(c);
}

void ControlServer::Core::send(const std::shared_ptr<Connection>& c, std::string line) {
  if (c->closed) return;
  if (c->out_bytes + line.size() > options.max_pending_reply_bytes) {
    warn_limited("control connection {} leaves more than {} reply bytes unread; closing it",
                 c->number, options.max_pending_reply_bytes);
    close(c);
    return;
  }
  c->out_bytes += line.size();
  c->out.push_back(std::move(line));
  if (!c->writing) write_next(c);
}

void ControlServer::Core::write_next(const std::shared_ptr<Connection>& c) {
  c->writing = true;
  std::weak_ptr<Core> weak = shared_from_this();
  asio::async_write(c->sock, asio::buffer(c->out.front()), [weak, c](const error_code& ec, size_t) {
    auto core = weak.lock();
    if (!core || c->closed) return;
    c->writing = false;
    c->out_bytes -= c->out.front().size();
    c->out.pop_front();
    if (ec) {
      core->close(c);  // the client went away; nothing left to tell it
      return;
    }
    if (!c->out.empty()) {
      core->write_next(c);
    } else {
      core->maybe_close(c);
    }
  });
}

void ControlServer::Core::maybe_close(const std::shared_ptr<Connection>& c) {
  if (c->closed || c->writing || !c->out.empty()) return;
  if (c->closing || (c->reading_done && c->in_flight == 0)) close(c);
}

void ControlServer::Core::close(const std::shared_ptr<Connection>& c) {
  if (c->closed) return;
  c->closed = true;
  error_code ignored;
  c->sock.shutdown(Socket::shutdown_both, ignored);
  c->sock.close(ignored);
  connections.erase(c);
}

void ControlServer::Core::stop() {
  stopped = true;
  error_code ignored;
  acceptor.close(ignored);
  retry_timer.cancel();
  auto all = connections;  // close() erases from the set
  for (const auto& c : all) close(c);
}

ControlServer::ControlServer(asio::io_context& io, std::string socket_path, ControlHandler& handler,
                             Options options)
    : core_(std::make_shared<Core>(io, std::move(socket_path), handler, options)) {
  core_->listener = listen_owner_only(core_->path, 64);
  // The acceptor takes the fd; listener keeps only the file's identity for unlink_if_ours.
  error_code ec;
  core_->acceptor.assign(asio::local::stream_protocol(), core_->listener.fd.get(), ec);
  if (ec) {
    unlink_if_ours(core_->path, core_->listener);
    common::throw_error(ec.value(), fmt::format("watch control socket {}", core_->path));
  }
  core_->listener.fd.release();
  core_->accept_next();
  common::log::info(kLog, "listening on {} ({} drive slots)", core_->path,
                    handler.drive_slot_count());
}

ControlServer::~ControlServer() {
  core_->stop();
  // Joins the command thread (a running command returns first) before the handler may go.
  core_->commands.reset();
  unlink_if_ours(core_->path, core_->listener);
}

const std::string& ControlServer::path() const {
  return core_->path;
}

size_t ControlServer::connection_count() const {
  return core_->connections.size();
}

uint64_t ControlServer::bad_request_count() const {
  return core_->bad_requests.load(std::memory_order_relaxed);
}

}  // namespace frakti::vmm::control
