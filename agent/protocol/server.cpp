#include "agent/protocol/server.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <set>
#include <unordered_map>

#include <boost/asio/steady_timer.hpp>

#include "common/error.hpp"
#include "common/log.hpp"

namespace frakti::agent::protocol {
namespace {
constexpr const char* kLog = "agent-proto";
}

// Shared with the callbacks of every session and the accept loop (they hold it weakly), so a
// Server can be destroyed while operations are still queued on the io_context.
struct Server::Core {
  Core(boost::asio::io_context& io_, v1::HelloReply identity_, Session::Options options_)
      : io(io_), identity(std::move(identity_)), options(std::move(options_)) {}

  boost::asio::io_context& io;
  v1::HelloReply identity;
  Session::Options options;
  std::unordered_map<int, Handler> handlers;
  ClosedHandler on_closed;
  std::set<std::shared_ptr<Session>> sessions;
  std::unique_ptr<Acceptor> acceptor;
  std::unique_ptr<boost::asio::steady_timer> retry_timer;
  uint64_t next_connection = 1;
  bool stopped = false;

  void dispatch(Session& session, const v1::Request& request, Responder responder) {
    auto it = handlers.find(static_cast<int>(request.kind_case()));
    if (it == handlers.end()) {
      responder.fail(v1::Error::CODE_UNIMPLEMENTED,
                     fmt::format("the agent does not implement request kind {}",
                                 static_cast<int>(request.kind_case())));
      return;
    }
    it->second(session, request, std::move(responder));
  }
};

Acceptor adopt_acceptor(boost::asio::io_context& io, common::Fd fd) {
  int domain = 0;
  socklen_t len = sizeof(domain);
  common::check(::getsockopt(fd.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len),
                "getsockopt SO_DOMAIN on agent listening fd {}", fd.get());
  Acceptor acceptor(io);
  boost::system::error_code ec;
  acceptor.assign(boost::asio::generic::stream_protocol(domain, 0), fd.get(), ec);
  if (ec) common::throw_error(ec.value(), "adopt agent listening socket");
  fd.release();
  return acceptor;
}

Server::Server(boost::asio::io_context& io, v1::HelloReply identity, Session::Options options)
    : core_(std::make_shared<Core>(io, std::move(identity), std::move(options))) {}

Server::~Server() { stop(); }

void Server::handle(v1::Request::KindCase kind, Handler handler) {
  core_->handlers[static_cast<int>(kind)] = std::move(handler);
}

void Server::set_closed_handler(ClosedHandler handler) { core_->on_closed = std::move(handler); }

size_t Server::connection_count() const { return core_->sessions.size(); }

std::shared_ptr<Session> Server::serve(Socket socket) { return serve_on(core_, std::move(socket)); }

std::shared_ptr<Session> Server::serve_on(const std::shared_ptr<Core>& core_, Socket socket) {
  // asio's accept() does not set O_CLOEXEC: no container process may inherit a connection.
  ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
  auto options = core_->options;
  options.name = fmt::format("{} conn {}", options.name, core_->next_connection++);
  auto session = Session::create(std::move(socket), Session::Role::server, std::move(options));
  std::weak_ptr<Core> weak = core_;
  std::weak_ptr<Session> weak_session = session;
  session->set_close_handler([weak, weak_session](std::error_code ec, const std::string& why) {
    auto core = weak.lock();
    auto s = weak_session.lock();
    if (!core || !s) return;
    core->sessions.erase(s);
    if (core->on_closed) core->on_closed(*s, ec, why);
  });
  session->start_server(core_->identity,
                        [weak](Session& s, const v1::Request& request, Responder responder) {
                          if (auto core = weak.lock()) {
                            core->dispatch(s, request, std::move(responder));
                          } else {
                            responder.fail(v1::Error::CODE_UNAVAILABLE, "the agent is stopping");
                          }
                        });
  core_->sessions.insert(session);
  return session;
}

void Server::listen(Acceptor acceptor) {
  core_->acceptor = std::make_unique<Acceptor>(std::move(acceptor));
  core_->stopped = false;
  accept_next(core_);
}

void Server::accept_next(const std::shared_ptr<Core>& core) {
  if (core->stopped || !core->acceptor) return;
  std::weak_ptr<Core> weak = core;
  core->acceptor->async_accept([weak](const boost::system::error_code& ec, Socket socket) {
    auto core = weak.lock();
    if (!core || core->stopped) return;
    if (ec) {
      common::log::warn(kLog, "accepting an agent connection failed: {}; retrying in 100 ms",
                        ec.message());
      core->retry_timer = std::make_unique<boost::asio::steady_timer>(
          core->io, std::chrono::milliseconds(100));
      core->retry_timer->async_wait([weak](const boost::system::error_code& e) {
        if (auto c = weak.lock(); c && !e) accept_next(c);
      });
      return;
    }
    serve_on(core, std::move(socket));
    accept_next(core);
  });
}

size_t Server::broadcast_event(const v1::Event& event) {
  size_t sent = 0;
  for (const auto& s : core_->sessions) {
    if (!s->is_open()) continue;
    s->send_event(event);
    ++sent;
  }
  return sent;
}

void Server::stop() {
  if (!core_) return;
  core_->stopped = true;
  boost::system::error_code ignored;
  if (core_->acceptor) core_->acceptor->close(ignored);
  if (core_->retry_timer) core_->retry_timer->cancel();
  auto sessions = core_->sessions;  // close() posts removal; iterate over a copy
  for (auto& s : sessions) s->close();
}

}  // namespace frakti::agent::protocol
