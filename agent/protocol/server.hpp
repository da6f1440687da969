#pragma once
// Server: the agent's side of the protocol. Accepts connections (AF_VSOCK in the guest, Unix
// sockets in tests), runs the handshake on each, and dispatches requests to a handler table
// keyed by request kind. Each connection is its own Session: a malformed frame closes that
// connection only, and the server keeps accepting and serving the others.
//
// Threading: like Session, a Server lives on one io_context thread.

#include <functional>
#include <memory>
#include <string>
#include <system_error>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>

#include "agent/protocol/session.hpp"

namespace frakti::agent::protocol {

using Acceptor = boost::asio::basic_socket_acceptor<boost::asio::generic::stream_protocol>;

/// Wraps a listening stream socket fd (AF_UNIX, AF_VSOCK, ...) for Server::listen.
Acceptor adopt_acceptor(boost::asio::io_context& io, common::Fd fd);

class Server {
 public:
  /// Answers one request through the Responder, now or later (e.g. WaitProcess). A handler may
  /// throw: the caller then gets CODE_INTERNAL with the exception's text.
  using Handler = std::function<void(Session&, const v1::Request&, Responder)>;
  /// Told when a connection ends, with the reason (see Session::CloseHandler).
  using ClosedHandler = std::function<void(Session&, std::error_code, const std::string&)>;

  /// identity is the HelloReply every connection receives.
  Server(boost::asio::io_context& io, v1::HelloReply identity,
         Session::Options options = Session::Options{});
  /// Closes every connection and stops accepting.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Installs the handler for one request kind; kinds without one answer CODE_UNIMPLEMENTED.
  void handle(v1::Request::KindCase kind, Handler handler);
  void set_closed_handler(ClosedHandler handler);
  /// Serves one connected socket.
  std::shared_ptr<Session> serve(Socket socket);
  /// Accepts connections until stop(); each is served. Accept errors are logged and retried
  /// (a shortage of fds must not end the agent).
  void listen(Acceptor acceptor);
  /// Sends an event on every open connection (the agent does not know which host process
  /// listens; normally there is one). Returns how many connections it went to.
  size_t broadcast_event(const v1::Event& event);
  /// Stops accepting and closes every connection.
  void stop();
  size_t connection_count() const;

 private:
  struct Core;
  static void accept_next(const std::shared_ptr<Core>& core);
  static std::shared_ptr<Session> serve_on(const std::shared_ptr<Core>& core, Socket socket);
  std::shared_ptr<Core> core_;
};

}  // namespace frakti::agent::protocol
