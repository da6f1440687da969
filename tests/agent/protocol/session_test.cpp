#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/protocol/session.hpp"
#include "agent/protocol/version.hpp"
#include "tests/agent/protocol/test_util.hpp"

using namespace frakti::agent::protocol;
using namespace std::chrono_literals;
using frakti::agent::protocol::test::drain_raw;
using frakti::agent::protocol::test::fd_pair;
using frakti::agent::protocol::test::pattern;
using frakti::agent::protocol::test::run_for;
using frakti::agent::protocol::test::run_until;

namespace {

struct Closed {
  bool done = false;
  std::error_code ec;
  std::string reason;
};

// A host-side client and an agent-side server Session over one socketpair.
struct Connected {
  boost::asio::io_context io;
  std::shared_ptr<Session> client;
  std::shared_ptr<Session> server;
  Closed client_closed, server_closed;
  std::optional<v1::HelloReply> hello_reply;
  std::optional<v1::Hello> server_saw;
  Session::RequestHandler handler;

  explicit Connected(uint32_t max_payload = kMaxFramePayload) {
    auto [a, b] = fd_pair();
    client = Session::create(adopt_socket(io, std::move(a)), Session::Role::client,
                             Session::Options{"host", max_payload, kStreamWindow, 1000ms});
    server = Session::create(adopt_socket(io, std::move(b)), Session::Role::server,
                             Session::Options{"agent", max_payload, kStreamWindow, 1000ms});
    client->set_close_handler([this](std::error_code ec, const std::string& why) {
      client_closed = {true, ec, why};
    });
    server->set_close_handler([this](std::error_code ec, const std::string& why) {
      server_closed = {true, ec, why};
    });
    v1::HelloReply identity;
    identity.set_agent_version("agent-test 0.1");
    identity.set_kernel_release("6.1.0-test");
    identity.add_capabilities("oom-events");
    server->start_server(
        identity,
        [this](Session& s, const v1::Request& r, Responder resp) {
          if (handler) handler(s, r, std::move(resp));
        },
        [this](const v1::Hello& h) { server_saw = h; });
    v1::Hello hello;
    hello.set_host_version("host-test 0.1");
    client->start_client(hello, [this](std::error_code ec, const v1::HelloReply& reply) {
      REQUIRE_FALSE(ec);
      hello_reply = reply;
    });
    REQUIRE(run_until(io, [&] { return hello_reply.has_value() && server_saw.has_value(); }));
  }

  // One call, run to completion.
  std::pair<std::error_code, v1::Response> call(v1::Request req,
                                                std::chrono::milliseconds timeout = 5s) {
    std::optional<std::pair<std::error_code, v1::Response>> result;
    client->call(std::move(req), timeout, [&](std::error_code ec, v1::Response r) {
      result.emplace(ec, std::move(r));
    });
    REQUIRE(run_until(io, [&] { return result.has_value(); }));
    return *result;
  }
};

v1::Request ping(uint64_t nonce) {
  v1::Request r;
  r.mutable_ping()->set_nonce(nonce);
  return r;
}

/// Reads what a raw peer has received so far (a peer that closes with unread input makes the
/// other side read ECONNRESET instead of EOF).
void drain_pending(int fd) {
  char buf[4096];
  while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

v1::Response pong(uint64_t nonce) {
  v1::Response r;
  r.mutable_ping()->set_nonce(nonce);
  return r;
}

}  // namespace

TEST_CASE("handshake exchanges versions and identities", "[agent][session]") {
  Connected c;
  REQUIRE(c.hello_reply->protocol_version() == kProtocolVersion);
  REQUIRE(c.hello_reply->agent_version() == "agent-test 0.1");
  REQUIRE(c.hello_reply->kernel_release() == "6.1.0-test");
  REQUIRE(c.hello_reply->capabilities(0) == "oom-events");
  REQUIRE(c.server_saw->protocol_version() == kProtocolVersion);
  REQUIRE(c.server_saw->host_version() == "host-test 0.1");
}

TEST_CASE("requests get their responses; errors and unknown kinds are answered",
          "[agent][session]") {
  Connected c;
  c.handler = [](Session&, const v1::Request& r, Responder resp) {
    if (r.has_ping()) {
      REQUIRE(r.timeout_ms() == 5000);  // the caller's deadline travels with the request
      resp(pong(r.ping().nonce() + 1));
    } else if (r.has_set_hostname()) {
      throw std::runtime_error("sethostname: Operation not permitted");
    } else if (r.has_start_container()) {
      // Dropped without an answer: the Responder answers for us.
    } else {
      resp.fail(v1::Error::CODE_UNIMPLEMENTED, "not here");
    }
  };
  auto [ec, resp] = c.call(ping(41));
  REQUIRE_FALSE(ec);
  REQUIRE(resp.ping().nonce() == 42);

  v1::Request host;
  host.mutable_set_hostname()->set_hostname("pod");
  auto [ec2, resp2] = c.call(host);
  REQUIRE_FALSE(ec2);
  REQUIRE(resp2.error().code() == v1::Error::CODE_INTERNAL);
  REQUIRE(resp2.error().message().find("Operation not permitted") != std::string::npos);

  v1::Request start;
  start.mutable_start_container()->set_container_id("c1");
  auto [ec3, resp3] = c.call(start);
  REQUIRE_FALSE(ec3);
  REQUIRE(resp3.error().code() == v1::Error::CODE_INTERNAL);

  auto [ec4, resp4] = c.call(v1::Request{});  // a kind this side does not know
  REQUIRE_FALSE(ec4);
  REQUIRE(resp4.error().code() == v1::Error::CODE_UNIMPLEMENTED);
  REQUIRE(c.client->is_open());
  REQUIRE(c.server->is_open());
}

TEST_CASE("a deadline expires when the agent never answers; the connection stays usable",
          "[agent][session]") {
  Connected c;
  std::vector<Responder> held;
  c.handler = [&](Session&, const v1::Request& r, Responder resp) {
    if (r.ping().nonce() == 1) {
      held.push_back(resp);  // never answered in time
    } else {
      resp(pong(r.ping().nonce()));
    }
  };
  auto start = std::chrono::steady_clock::now();
  auto [ec, resp] = c.call(ping(1), 50ms);
  auto waited = std::chrono::steady_clock::now() - start;
  REQUIRE(ec == ProtocolErrc::timeout);
  REQUIRE(waited >= 50ms);
  REQUIRE(waited < 3s);

  auto [ec2, resp2] = c.call(ping(2));
  REQUIRE_FALSE(ec2);
  REQUIRE(resp2.ping().nonce() == 2);

  // The stale answer arrives after its caller gave up: dropped and counted, nothing breaks.
  REQUIRE(held.size() == 1);
  held[0](pong(1));
  REQUIRE(run_until(c.io, [&] { return c.client->stats().late_responses == 1; }));
  auto [ec3, resp3] = c.call(ping(3));
  REQUIRE_FALSE(ec3);
  REQUIRE(resp3.ping().nonce() == 3);
}

TEST_CASE("concurrent requests answered out of order reach their own callers",
          "[agent][session]") {
  Connected c;
  std::vector<std::pair<uint64_t, Responder>> held;
  c.handler = [&](Session&, const v1::Request& r, Responder resp) {
    held.emplace_back(r.ping().nonce(), resp);
  };
  std::map<uint64_t, uint64_t> answers;  // request nonce -> answer nonce
  std::vector<uint64_t> order;
  for (uint64_t n = 100; n < 110; ++n) {
    c.client->call(ping(n), 5s, [&, n](std::error_code ec, v1::Response r) {
      REQUIRE_FALSE(ec);
      answers[n] = r.ping().nonce();
      order.push_back(n);
    });
  }
  REQUIRE(run_until(c.io, [&] { return held.size() == 10; }));
  // Answer in a shuffled order: evens backwards, then odds.
  for (auto it = held.rbegin(); it != held.rend(); ++it) {
    if (it->first % 2 == 0) it->second(pong(it->first * 10));
  }
  for (auto& [n, resp] : held) {
    if (n % 2 == 1) resp(pong(n * 10));
  }
  REQUIRE(run_until(c.io, [&] { return answers.size() == 10; }));
  for (auto& [n, a] : answers) REQUIRE(a == n * 10);
  REQUIRE(order.front() == 108);
  REQUIRE(order.back() == 109);
}

TEST_CASE("4 MiB of stdout arrives intact, and the producer waits for the consumer",
          "[agent][session][stream]") {
  Connected c;
  const std::string data = pattern(4u << 20, 7);
  size_t produced = 0;  // bytes whose write completed on the agent side
  bool producer_done = false;
  std::function<void(Session&, uint32_t)> produce = [&](Session& s, uint32_t id) {
    if (produced == data.size()) {
      s.finish_stream(id);
      producer_done = true;
      return;
    }
    // Odd-sized pieces so chunk and window boundaries do not line up.
    size_t n = std::min<size_t>(48 * 1024 + 7, data.size() - produced);
    s.async_write_stream(id, data.substr(produced, n), [&, n, id](std::error_code ec) {
      REQUIRE_FALSE(ec);
      produced += n;
      produce(*c.server, id);
    });
  };
  c.handler = [&](Session& s, const v1::Request& r, Responder resp) {
    if (r.has_ping()) {
      resp(pong(r.ping().nonce()));
      return;
    }
    REQUIRE(r.has_exec_process());
    v1::Response ok;
    ok.mutable_exec_process()->set_pid(1234);
    resp(ok);
    produce(s, r.exec_process().process().stdout_stream());
  };
  uint32_t out = c.client->new_stream_id();
  c.client->open_receive_stream(out);
  v1::Request exec;
  exec.mutable_exec_process()->set_container_id("c1");
  exec.mutable_exec_process()->mutable_process()->set_stdout_stream(out);
  auto [ec, resp] = c.call(exec);
  REQUIRE_FALSE(ec);
  REQUIRE(resp.exec_process().pid() == 1234);

  // Nobody reads yet: the agent must stall with at most one window accepted.
  run_for(c.io, 200ms);
  REQUIRE_FALSE(producer_done);
  REQUIRE(produced <= kStreamWindow);
  REQUIRE(produced >= kStreamWindow - (48 * 1024 + 7));
  size_t stalled_at = produced;
  run_for(c.io, 100ms);
  REQUIRE(produced == stalled_at);
  // A stalled stream does not stall requests on the same connection.
  auto [ping_ec, ping_resp] = c.call(ping(9));
  REQUIRE_FALSE(ping_ec);
  REQUIRE(ping_resp.ping().nonce() == 9);
  REQUIRE(produced == stalled_at);

  // Consume slowly at first, then all of it.
  std::string received;
  bool eof = false;
  std::function<void()> read_next = [&] {
    c.client->async_read_stream(out, [&](std::error_code ec, std::string chunk) {
      if (ec == ProtocolErrc::end_of_stream) {
        eof = true;
        return;
      }
      REQUIRE_FALSE(ec);
      REQUIRE(chunk.size() <= kMaxStreamChunk);
      received += chunk;
      read_next();
    });
  };
  read_next();
  REQUIRE(run_until(c.io, [&] { return eof; }, 30s));
  REQUIRE(producer_done);
  REQUIRE(received.size() == data.size());
  REQUIRE(received == data);
  REQUIRE(c.client->is_open());
  REQUIRE(c.server->is_open());
}

TEST_CASE("stdin flows to the agent and ends with FIN; a reset stops the writer",
          "[agent][session][stream]") {
  Connected c;
  uint32_t in = c.client->new_stream_id();
  c.server->open_receive_stream(in);
  std::string got;
  bool eof = false;
  std::function<void()> read_next = [&] {
    c.server->async_read_stream(in, [&](std::error_code ec, std::string chunk) {
      if (ec == ProtocolErrc::end_of_stream) {
        eof = true;
        return;
      }
      REQUIRE_FALSE(ec);
      got += chunk;
      read_next();
    });
  };
  read_next();
  int writes_done = 0;
  c.client->async_write_stream(in, "hello ", [&](std::error_code ec) {
    REQUIRE_FALSE(ec);
    ++writes_done;
  });
  c.client->async_write_stream(in, "", [&](std::error_code ec) {
    REQUIRE_FALSE(ec);
    ++writes_done;
  });
  c.client->async_write_stream(in, "world", [&](std::error_code ec) {
    REQUIRE_FALSE(ec);
    ++writes_done;
  });
  c.client->finish_stream(in);
  REQUIRE(run_until(c.io, [&] { return eof && writes_done == 3; }));
  REQUIRE(got == "hello world");

  // The host stops reading a stream: the agent's blocked writer learns it.
  uint32_t out = c.client->new_stream_id();
  c.client->open_receive_stream(out);
  std::optional<std::error_code> writer_result;
  c.server->async_write_stream(out, pattern(kStreamWindow + 1000), [&](std::error_code ec) {
    writer_result = ec;
  });
  run_for(c.io, 50ms);
  REQUIRE_FALSE(writer_result);
  c.client->reset_stream(out);
  REQUIRE(run_until(c.io, [&] { return writer_result.has_value(); }));
  REQUIRE(*writer_result == ProtocolErrc::stream_reset);
  // Data for a stream nobody opened is answered with a reset, not buffered.
  std::optional<std::error_code> stray;
  c.server->async_write_stream(4242, "stray", [&](std::error_code ec) { stray = ec; });
  REQUIRE(run_until(c.io, [&] { return c.client->stats().unknown_stream_frames >= 1; }));
  REQUIRE(c.client->is_open());
}

TEST_CASE("events reach the host", "[agent][session]") {
  Connected c;
  std::vector<v1::Event> events;
  c.client->set_event_handler([&](const v1::Event& e) { events.push_back(e); });
  v1::Event exited;
  exited.mutable_process_exited()->set_container_id("c1");
  exited.mutable_process_exited()->set_signal(9);
  v1::Event oom;
  oom.mutable_oom()->set_container_id("c2");
  c.server->send_event(exited);
  c.server->send_event(oom);
  REQUIRE(run_until(c.io, [&] { return events.size() == 2; }));
  REQUIRE(events[0].process_exited().signal() == 9);
  REQUIRE(events[1].oom().container_id() == "c2");
}

TEST_CASE("messages over the frame limit fail the one call, not the connection",
          "[agent][session]") {
  Connected c(1024);
  c.handler = [](Session&, const v1::Request& r, Responder resp) {
    v1::Response big;
    big.mutable_list_processes()->add_processes()->add_args(std::string(r.ping().nonce(), 'a'));
    resp(big);
  };
  v1::Request huge;
  huge.mutable_create_container()->set_seccomp_profile_json(std::string(2000, '{'));
  auto [ec, resp] = c.call(huge);
  REQUIRE(ec == ProtocolErrc::message_too_large);
  auto [ec2, resp2] = c.call(ping(5000));  // the agent's answer would be too large
  REQUIRE_FALSE(ec2);
  REQUIRE(resp2.error().code() == v1::Error::CODE_RESOURCE_EXHAUSTED);
  auto [ec3, resp3] = c.call(ping(10));
  REQUIRE_FALSE(ec3);
  REQUIRE(resp3.list_processes().processes(0).args(0) == std::string(10, 'a'));
  REQUIRE(c.client->is_open());
}

TEST_CASE("an event the agent sends before the handshake arrives after it", "[agent][session]") {
  boost::asio::io_context io;
  auto [a, b] = fd_pair();
  auto client = Session::create(adopt_socket(io, std::move(a)), Session::Role::client);
  auto server = Session::create(adopt_socket(io, std::move(b)), Session::Role::server);
  v1::Event early;
  early.mutable_oom()->set_container_id("early");
  server->send_event(early);
  server->start_server(v1::HelloReply{}, {});
  std::vector<std::string> seen;
  client->set_event_handler([&](const v1::Event& e) { seen.push_back(e.oom().container_id()); });
  client->start_client(v1::Hello{}, [&](std::error_code ec, const v1::HelloReply&) {
    REQUIRE_FALSE(ec);
    seen.push_back("hello");
  });
  REQUIRE(run_until(io, [&] { return seen.size() == 2; }));
  REQUIRE(seen == std::vector<std::string>{"hello", "early"});
  REQUIRE(client->is_open());
}

TEST_CASE("closing fails pending calls and tells both owners", "[agent][session]") {
  Connected c;
  std::vector<Responder> held;
  c.handler = [&](Session&, const v1::Request&, Responder resp) { held.push_back(resp); };
  std::optional<std::error_code> result;
  c.client->call(ping(1), 5s, [&](std::error_code ec, v1::Response) { result = ec; });
  REQUIRE(run_until(c.io, [&] { return held.size() == 1; }));
  c.server->close();
  REQUIRE(run_until(c.io, [&] { return result && c.client_closed.done && c.server_closed.done; }));
  REQUIRE(*result == ProtocolErrc::connection_closed);
  REQUIRE(c.client_closed.ec == ProtocolErrc::connection_closed);
  REQUIRE(c.client_closed.reason == "peer closed the connection");
  // Calls after the end fail at once instead of hanging.
  std::optional<std::error_code> late;
  c.client->call(ping(2), 5s, [&](std::error_code ec, v1::Response) { late = ec; });
  REQUIRE(run_until(c.io, [&] { return late.has_value(); }));
  REQUIRE(*late == ProtocolErrc::connection_closed);
}

TEST_CASE("a protocol version mismatch names both versions", "[agent][session]") {
  boost::asio::io_context io;
  SECTION("host too new: the agent refuses with an ERROR frame") {
    auto [raw, b] = fd_pair();
    auto server = Session::create(adopt_socket(io, std::move(b)), Session::Role::server);
    Closed closed;
    server->set_close_handler([&](std::error_code ec, const std::string& why) {
      closed = {true, ec, why};
    });
    server->start_server(v1::HelloReply{}, {});
    v1::Hello hello;
    hello.set_protocol_version(99);
    auto frame = encode_message_frame(FrameType::hello, 0, hello);
    frakti::common::write_all(raw.get(), frame->data(), frame->size(), "raw host");
    std::string answer = drain_raw(io, raw.get());
    REQUIRE(run_until(io, [&] { return closed.done; }));
    REQUIRE(closed.ec == ProtocolErrc::version_mismatch);
    REQUIRE(closed.reason.find("host speaks version 99, agent speaks version 1") !=
            std::string::npos);
    FrameDecoder d;
    d.feed(answer.data(), answer.size());
    Frame f;
    REQUIRE(d.next(f) == FrameDecoder::Status::frame);
    REQUIRE(f.type == FrameType::error);
    v1::Error err;
    REQUIRE(err.ParseFromString(f.payload));
    REQUIRE(err.code() == v1::Error::CODE_VERSION_MISMATCH);
    REQUIRE(err.message().find("99") != std::string::npos);
  }
  SECTION("agent too old: the host's handshake fails") {
    auto [a, raw] = fd_pair();
    auto client = Session::create(adopt_socket(io, std::move(a)), Session::Role::client);
    std::optional<std::error_code> result;
    client->start_client(v1::Hello{}, [&](std::error_code ec, const v1::HelloReply&) {
      result = ec;
    });
    v1::HelloReply reply;
    reply.set_protocol_version(0);
    auto frame = encode_message_frame(FrameType::hello, 0, reply);
    frakti::common::write_all(raw.get(), frame->data(), frame->size(), "raw agent");
    REQUIRE(run_until(io, [&] { return result.has_value(); }));
    REQUIRE(*result == ProtocolErrc::version_mismatch);
    REQUIRE(client->close_reason().find("host speaks version 1, agent speaks version 0") !=
            std::string::npos);
  }
}

TEST_CASE("a silent peer fails the handshake after its timeout", "[agent][session]") {
  boost::asio::io_context io;
  Session::Options quick;
  quick.handshake_timeout = 50ms;
  auto [a, raw_agent] = fd_pair();
  auto client = Session::create(adopt_socket(io, std::move(a)), Session::Role::client, quick);
  std::optional<std::error_code> hello;
  client->start_client(v1::Hello{}, [&](std::error_code ec, const v1::HelloReply&) { hello = ec; });
  auto [raw_host, b] = fd_pair();
  auto server = Session::create(adopt_socket(io, std::move(b)), Session::Role::server, quick);
  Closed closed;
  server->set_close_handler([&](std::error_code ec, const std::string& why) {
    closed = {true, ec, why};
  });
  server->start_server(v1::HelloReply{}, {});
  REQUIRE(run_until(io, [&] { return hello.has_value() && closed.done; }));
  REQUIRE(*hello == ProtocolErrc::timeout);
  REQUIRE(client->close_reason() == "no HelloReply from the agent within 50 ms of connecting");
  REQUIRE(closed.ec == ProtocolErrc::timeout);
  REQUIRE(closed.reason == "no Hello from the host within 50 ms of connecting");
}

TEST_CASE("protocol violations close the connection with a reason", "[agent][session]") {
  struct Case {
    const char* name;
    std::function<std::string()> bytes;  // sent after a valid HELLO
    ProtocolErrc expected;
  };
  auto hello = [] {
    v1::Hello h;
    h.set_protocol_version(kProtocolVersion);
    return *encode_message_frame(FrameType::hello, 0, h);
  };
  const std::vector<Case> cases = {
      {"request before hello",
       [] { return *encode_message_frame(FrameType::request, 1, ping(1)); },
       ProtocolErrc::unexpected_frame},
      {"garbage after hello", [&] { return hello() + std::string("\x00\x01\x02garbage garbage", 18); },
       ProtocolErrc::bad_magic},
      {"second hello", [&] { return hello() + hello(); }, ProtocolErrc::unexpected_frame},
      {"request payload not a Request",
       [&] { return hello() + encode_frame(FrameType::request, 0, 1, "\xff\xff\xff"); },
       ProtocolErrc::bad_payload},
      {"response sent to the agent",
       [&] { return hello() + *encode_message_frame(FrameType::response, 1, pong(1)); },
       ProtocolErrc::unexpected_frame},
      {"stream data beyond the window", [&] {
         std::string s = hello();
         for (int i = 0; i < 5; ++i) s += encode_frame(FrameType::stream_data, 0, 5,
                                                       std::string(64 * 1024 + 1, 'x'));
         return s;
       },
       ProtocolErrc::window_exceeded},
      {"truncated frame at EOF",
       [&] { return hello() + encode_frame(FrameType::request, 0, 1, "abcdef").substr(0, 15); },
       ProtocolErrc::truncated_frame},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    boost::asio::io_context io;
    auto [raw, b] = fd_pair();
    auto server = Session::create(adopt_socket(io, std::move(b)), Session::Role::server);
    Closed closed;
    server->set_close_handler([&](std::error_code ec, const std::string& why) {
      closed = {true, ec, why};
    });
    server->start_server(v1::HelloReply{}, {});
    server->open_receive_stream(5);
    frakti::agent::protocol::test::send_raw(io, raw.get(), c.bytes());
    ::shutdown(raw.get(), SHUT_WR);
    REQUIRE(run_until(io, [&] { return closed.done; }));
    REQUIRE(closed.ec == c.expected);
    REQUIRE_FALSE(closed.reason.empty());
    REQUIRE_FALSE(server->is_open());
  }
}

namespace {

/// A host-side client Session whose agent is a raw socket that has answered the handshake and
/// read everything sent so far (unread bytes would turn the client's EOF into ECONNRESET).
struct RawAgent {
  boost::asio::io_context io;
  std::shared_ptr<Session> client;
  frakti::common::Fd raw;
  Closed closed;

  RawAgent() {
    auto [a, b] = fd_pair();
    raw = std::move(b);
    client = Session::create(adopt_socket(io, std::move(a)), Session::Role::client);
    client->set_close_handler([this](std::error_code ec, const std::string& why) {
      closed = {true, ec, why};
    });
    std::optional<std::error_code> hello;
    client->start_client(v1::Hello{}, [&](std::error_code ec, const v1::HelloReply&) { hello = ec; });
    v1::HelloReply reply;
    reply.set_protocol_version(kProtocolVersion);
    send(*encode_message_frame(FrameType::hello, 0, reply));
    REQUIRE(run_until(io, [&] { return hello.has_value(); }));
    REQUIRE_FALSE(*hello);
    drain_pending(raw.get());
  }
  void send(const std::string& frame) {
    frakti::common::write_all(raw.get(), frame.data(), frame.size(), "raw agent");
  }
  /// The agent is gone; then one call, run until it and the session have ended. Unless the
  /// loop ran since, the call's write fails (EPIPE) before the agent's last bytes are read.
  std::error_code leave_then_call() {
    raw.reset();
    std::optional<std::error_code> result;
    client->call(ping(1), 5s, [&](std::error_code ec, v1::Response) { result = ec; });
    REQUIRE(run_until(io, [&] { return result.has_value() && closed.done; }));
    return *result;
  }
};

}  // namespace

TEST_CASE("an agent that sends ERROR and leaves is heard even when our write fails first",
          "[agent][session]") {
  RawAgent agent;
  v1::Error error;
  error.set_code(v1::Error::CODE_PROTOCOL);
  error.set_message("boom: the agent is shutting down");
  agent.send(*encode_message_frame(FrameType::error, 0, error));
  CHECK(agent.leave_then_call() == ProtocolErrc::connection_closed);
  CHECK(agent.closed.ec == ProtocolErrc::remote_error);
  CHECK(agent.closed.reason ==
        "peer closed the connection with an error: boom: the agent is shutting down");
  CHECK_FALSE(agent.client->is_open());
}

TEST_CASE("a peer that closes without a word gives a closed connection, not a write error",
          "[agent][session]") {
  RawAgent agent;
  CHECK(agent.leave_then_call() == ProtocolErrc::connection_closed);
  CHECK(agent.closed.ec == ProtocolErrc::connection_closed);
  CHECK(agent.closed.reason == "peer closed the connection");
}
