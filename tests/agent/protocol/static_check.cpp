// agent_protocol_static_check: a fully static program (like the guest agent) that runs a
// handshake, a request and a stream over a socketpair, then checks it has no dynamic loader.
// Exit 0 = the static link works and the protocol runs in it.

#include <sys/auxv.h>
#include <sys/socket.h>

#include <cstdio>
#include <optional>

#include <boost/asio/io_context.hpp>

#include "agent/protocol/server.hpp"

using namespace frakti::agent::protocol;

int main() {
  // A dynamically linked program is started by ld.so, whose base the kernel passes as AT_BASE.
  if (getauxval(AT_BASE) != 0) {
    std::fprintf(stderr, "agent_protocol_static_check: not a static binary (AT_BASE set)\n");
    return 1;
  }
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return 2;
  boost::asio::io_context io;
  v1::HelloReply identity;
  identity.set_agent_version("static-check");
  Server server(io, identity);
  server.handle(v1::Request::kPing, [](Session& s, const v1::Request& r, Responder resp) {
    v1::Response out;
    out.mutable_ping()->set_nonce(r.ping().nonce() + 1);
    resp(out);
    s.async_write_stream(7, "stream ok", [&s](std::error_code) { s.finish_stream(7); });
  });
  server.serve(adopt_socket(io, frakti::common::Fd(fds[1])));
  auto client = Session::create(adopt_socket(io, frakti::common::Fd(fds[0])),
                                Session::Role::client);
  std::optional<uint64_t> nonce;
  std::string streamed;
  bool eof = false;
  std::function<void()> read = [&] {
    client->async_read_stream(7, [&](std::error_code e, std::string chunk) {
      if (e) {
        eof = e == ProtocolErrc::end_of_stream;
        client->close();
        return;
      }
      streamed += chunk;
      read();
    });
  };
  client->start_client(v1::Hello{}, [&](std::error_code ec, const v1::HelloReply& reply) {
    if (ec || reply.agent_version() != "static-check") return;
    client->open_receive_stream(7);
    read();
    v1::Request req;
    req.mutable_ping()->set_nonce(41);
    client->call(req, std::chrono::seconds(5), [&](std::error_code e, v1::Response r) {
      if (!e) nonce = r.ping().nonce();
    });
  });
  io.run_for(std::chrono::seconds(10));
  if (nonce != 42u || streamed != "stream ok" || !eof) {
    std::fprintf(stderr, "agent_protocol_static_check: protocol run failed\n");
    return 3;
  }
  std::printf("agent_protocol_static_check: static binary, handshake, call and stream ok\n");
  return 0;
}
