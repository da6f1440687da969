#include <sys/socket.h>
#include <sys/un.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "agent/protocol/server.hpp"
#include "tests/agent/protocol/test_util.hpp"

using namespace frakti::agent::protocol;
using namespace std::chrono_literals;
using frakti::common::Fd;
using frakti::agent::protocol::test::drain_raw;
using frakti::agent::protocol::test::run_until;
using frakti::agent::protocol::test::send_raw;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/frakti-agentproto-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

Fd listen_unix(const std::string& path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  auto addr = unix_address(path);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(fd.get(), 16) == 0);
  return fd;
}

Fd connect_unix(const std::string& path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  auto addr = unix_address(path);
  REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  return fd;
}

// A host client on its own connection, handshake done.
std::shared_ptr<Session> connect_client(boost::asio::io_context& io, const std::string& path) {
  auto client = Session::create(adopt_socket(io, connect_unix(path)), Session::Role::client);
  bool ready = false;
  client->start_client(v1::Hello{}, [&](std::error_code ec, const v1::HelloReply& reply) {
    REQUIRE_FALSE(ec);
    REQUIRE(reply.agent_version() == "server-test");
    ready = true;
  });
  REQUIRE(run_until(io, [&] { return ready; }));
  return client;
}

uint64_t ping(boost::asio::io_context& io, Session& client, uint64_t nonce) {
  v1::Request req;
  req.mutable_ping()->set_nonce(nonce);
  std::optional<uint64_t> got;
  client.call(req, 5s, [&](std::error_code ec, v1::Response r) {
    REQUIRE_FALSE(ec);
    got = r.ping().nonce();
  });
  REQUIRE(run_until(io, [&] { return got.has_value(); }));
  return *got;
}

}  // namespace

TEST_CASE("a garbage frame closes only its own connection", "[agent][server]") {
  TempDir dir;
  std::string path = (dir.path / "agent.sock").string();
  boost::asio::io_context io;
  v1::HelloReply identity;
  identity.set_agent_version("server-test");
  Server server(io, identity);
  server.handle(v1::Request::kPing, [](Session&, const v1::Request& r, Responder resp) {
    v1::Response out;
    out.mutable_ping()->set_nonce(r.ping().nonce() * 2);
    resp(out);
  });
  std::vector<std::pair<std::error_code, std::string>> closed;
  server.set_closed_handler([&](Session&, std::error_code ec, const std::string& why) {
    closed.emplace_back(ec, why);
  });
  server.listen(adopt_acceptor(io, listen_unix(path)));

  auto good = connect_client(io, path);
  REQUIRE(ping(io, *good, 21) == 42);
  REQUIRE(server.connection_count() == 1);

  Fd raw = connect_unix(path);
  REQUIRE(run_until(io, [&] { return server.connection_count() == 2; }));
  send_raw(io, raw.get(), "this is not a frame, it is garbage");
  std::string answer = drain_raw(io, raw.get());
  REQUIRE(run_until(io, [&] { return closed.size() == 1; }));
  REQUIRE(closed[0].first == ProtocolErrc::bad_magic);
  REQUIRE(closed[0].second.find("bad frame magic 0x74") != std::string::npos);
  // The raw peer was told why before the connection closed.
  FrameDecoder d;
  d.feed(answer.data(), answer.size());
  Frame f;
  REQUIRE(d.next(f) == FrameDecoder::Status::frame);
  REQUIRE(f.type == FrameType::error);
  v1::Error err;
  REQUIRE(err.ParseFromString(f.payload));
  REQUIRE(err.code() == v1::Error::CODE_PROTOCOL);

  // The established connection and new ones keep working.
  REQUIRE(server.connection_count() == 1);
  REQUIRE(good->is_open());
  REQUIRE(ping(io, *good, 50) == 100);
  auto second = connect_client(io, path);
  REQUIRE(ping(io, *second, 7) == 14);
  REQUIRE(server.connection_count() == 2);

  // Events go to every open connection.
  std::vector<std::string> events;
  good->set_event_handler([&](const v1::Event& e) { events.push_back("good " + e.oom().container_id()); });
  second->set_event_handler([&](const v1::Event& e) { events.push_back("second " + e.oom().container_id()); });
  v1::Event oom;
  oom.mutable_oom()->set_container_id("c9");
  REQUIRE(server.broadcast_event(oom) == 2);
  REQUIRE(run_until(io, [&] { return events.size() == 2; }));
  std::sort(events.begin(), events.end());
  REQUIRE(events == std::vector<std::string>{"good c9", "second c9"});

  // Kinds without a handler are answered, not fatal.
  v1::Request shutdown;
  shutdown.mutable_shutdown();
  std::optional<v1::Response> resp;
  second->call(shutdown, 5s, [&](std::error_code ec, v1::Response r) {
    REQUIRE_FALSE(ec);
    resp = r;
  });
  REQUIRE(run_until(io, [&] { return resp.has_value(); }));
  REQUIRE(resp->error().code() == v1::Error::CODE_UNIMPLEMENTED);

  // A client going away is a clean close for the server.
  good->close();
  REQUIRE(run_until(io, [&] { return closed.size() == 2; }));
  REQUIRE(closed[1].first == ProtocolErrc::connection_closed);
  server.stop();
  REQUIRE(run_until(io, [&] { return server.connection_count() == 0; }));
  REQUIRE(run_until(io, [&] { return !second->is_open(); }));
}
