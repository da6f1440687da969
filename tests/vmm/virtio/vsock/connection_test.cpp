#include "vmm/virtio/vsock/connection.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace frakti::vmm::virtio::vsock;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kGuest = 3;
constexpr uint32_t kHostPort = 1u << 30;
constexpr uint32_t kGuestPort = 1024;

const TimePoint t0 = TimePoint{} + 1h;

// A header as the guest would send it on this stream.
Header from_guest(Op op, uint32_t len = 0, uint32_t flags = 0, uint32_t buf_alloc = 65536,
                  uint32_t fwd_cnt = 0) {
  Header h;
  h.src_cid = kGuest;
  h.dst_cid = kHostCid;
  h.src_port = kGuestPort;
  h.dst_port = kHostPort;
  h.len = len;
  h.type = kTypeStream;
  h.op = static_cast<uint16_t>(op);
  h.flags = flags;
  h.buf_alloc = buf_alloc;
  h.fwd_cnt = fwd_cnt;
  return h;
}

std::vector<uint8_t> data(size_t n, uint8_t seed = 1) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

Op next_op(Connection& c, size_t max_payload = 65536) {
  auto p = c.next_packet_for_guest(max_payload);
  REQUIRE(p.has_value());
  CHECK(p->hdr.src_cid == kHostCid);
  CHECK(p->hdr.dst_cid == kGuest);
  CHECK(p->hdr.src_port == kHostPort);
  CHECK(p->hdr.dst_port == kGuestPort);
  CHECK(p->hdr.len == p->payload.size());
  return p->hdr.operation();
}

std::string host_text(Connection& c) {
  auto s = c.host_pending();
  return std::string(reinterpret_cast<const char*>(s.data()), s.size());
}

// A host-initiated connection that the guest accepted with the given buf_alloc.
Connection established(uint32_t guest_buf_alloc = 65536, ConnectionLimits limits = {}) {
  Connection c = Connection::host_initiated(kGuest, kHostPort, kGuestPort, limits, t0);
  REQUIRE(next_op(c) == Op::request);
  REQUIRE(c.on_guest_packet(from_guest(Op::response, 0, 0, guest_buf_alloc), {}, t0));
  REQUIRE(c.state() == Connection::State::established);
  REQUIRE(host_text(c) == "OK 1073741824\n");
  c.on_host_written(c.host_pending().size(), t0);
  return c;
}

}  // namespace

TEST_CASE("host-initiated handshake: REQUEST, RESPONSE, OK line", "[vsock]") {
  Connection c = Connection::host_initiated(kGuest, kHostPort, kGuestPort, {}, t0);
  CHECK(c.state() == Connection::State::connecting);
  CHECK(c.host_read_room() == 0);  // nothing is read from the host before the guest accepts
  REQUIRE(c.has_packet_for_guest());
  auto req = c.next_packet_for_guest(4096);
  REQUIRE(req);
  CHECK(req->hdr.operation() == Op::request);
  CHECK(req->hdr.buf_alloc == ConnectionLimits{}.buf_alloc);
  CHECK_FALSE(c.has_packet_for_guest());
  CHECK(c.host_pending().empty());
  REQUIRE(c.on_guest_packet(from_guest(Op::response), {}, t0 + 10ms));
  CHECK(c.state() == Connection::State::established);
  CHECK(host_text(c) == "OK 1073741824\n");
  CHECK_FALSE(c.deadline().has_value());
  CHECK(c.host_read_room() == ConnectionLimits{}.to_guest_buffer);
}

TEST_CASE("host-initiated: guest RST refuses; silence times out", "[vsock]") {
  SECTION("RST") {
    Connection c = Connection::host_initiated(kGuest, kHostPort, kGuestPort, {}, t0);
    REQUIRE(next_op(c) == Op::request);
    REQUIRE(c.on_guest_packet(from_guest(Op::rst), {}, t0));
    CHECK(c.finished());
    CHECK_FALSE(c.has_packet_for_guest());
    CHECK(c.host_pending().empty());  // no OK line: the muxer just closes the host socket
  }
  SECTION("timeout") {
    Connection c = Connection::host_initiated(kGuest, kHostPort, kGuestPort, {}, t0);
    REQUIRE(next_op(c) == Op::request);
    CHECK_FALSE(c.on_tick(t0 + 1999ms));
    CHECK(c.on_tick(t0 + 2000ms));
    REQUIRE(next_op(c) == Op::rst);  // cancels a RESPONSE that may still come
    CHECK(c.finished());
  }
  SECTION("postponed timeout (the VM was paused for 5 s)") {
    Connection c = Connection::host_initiated(kGuest, kHostPort, kGuestPort, {}, t0);
    REQUIRE(next_op(c) == Op::request);
    c.postpone(5s);
    CHECK(c.deadline() == t0 + 7s);
    CHECK_FALSE(c.on_tick(t0 + 6999ms));
    CHECK(c.on_tick(t0 + 7s));
    REQUIRE(next_op(c) == Op::rst);
  }
  SECTION("postpone without a running timer keeps none") {
    Connection c = Connection::host_initiated(kGuest, kHostPort, kGuestPort, {}, t0);
    REQUIRE(next_op(c) == Op::request);
    REQUIRE(c.on_guest_packet(from_guest(Op::response), {}, t0));
    CHECK_FALSE(c.deadline().has_value());
    c.postpone(5s);
    CHECK_FALSE(c.deadline().has_value());
  }
  SECTION("timeout before the guest took the REQUEST: closed quietly") {
    Connection c = Connection::host_initiated(kGuest, kHostPort, kGuestPort, {}, t0);
    CHECK(c.on_tick(t0 + 2s));
    CHECK(c.finished());
    CHECK_FALSE(c.has_packet_for_guest());
  }
  SECTION("wrong answer") {
    Connection c = Connection::host_initiated(kGuest, kHostPort, kGuestPort, {}, t0);
    REQUIRE(next_op(c) == Op::request);
    CHECK_FALSE(c.on_guest_packet(from_guest(Op::rw, 3), data(3), t0));
    REQUIRE(next_op(c) == Op::rst);
    CHECK(c.finished());
  }
}

TEST_CASE("guest-initiated connection answers RESPONSE first", "[vsock]") {
  Header req = from_guest(Op::request, 0, 0, 1000);
  Connection c = Connection::guest_initiated(req, {});
  CHECK(c.local_port() == kHostPort);
  CHECK(c.peer_port() == kGuestPort);
  c.on_host_data(data(10), t0);  // host spoke before RESPONSE went out
  REQUIRE(next_op(c) == Op::response);
  auto rw = c.next_packet_for_guest(4096);
  REQUIRE(rw);
  CHECK(rw->hdr.operation() == Op::rw);
  CHECK(rw->payload == data(10));
  CHECK(c.peer_free() == 990);  // credit came with the REQUEST
}

TEST_CASE("data flows both ways and fwd_cnt counts delivered bytes", "[vsock]") {
  Connection c = established();
  // Guest to host.
  auto a = data(3000);
  REQUIRE(c.on_guest_packet(from_guest(Op::rw, 3000), a, t0));
  CHECK(c.host_pending().size() == 3000);
  c.on_host_written(1000, t0);
  CHECK(c.fwd_cnt() == 1000);
  CHECK(c.host_pending().size() == 2000);
  c.on_host_written(2000, t0);
  CHECK(c.fwd_cnt() == 3000);
  // Host to guest, split by the rx buffer size.
  c.on_host_data(data(10000, 9), t0);
  std::vector<uint8_t> got;
  while (auto p = c.next_packet_for_guest(4096)) {
    REQUIRE(p->hdr.operation() == Op::rw);
    REQUIRE(p->payload.size() <= 4096);
    CHECK(p->hdr.fwd_cnt == 3000);  // every packet carries our credit
    got.insert(got.end(), p->payload.begin(), p->payload.end());
  }
  CHECK(got == data(10000, 9));
}

TEST_CASE("host-to-guest data stops at the guest's credit and resumes on update", "[vsock]") {
  Connection c = established(/*guest_buf_alloc=*/5000);
  size_t room = c.host_read_room();
  c.on_host_data(data(room), t0);
  CHECK(c.host_read_room() == 0);  // full: the muxer stops reading the host socket
  size_t sent = 0;
  while (c.has_packet_for_guest()) {
    auto p = c.next_packet_for_guest(65536);
    REQUIRE(p);
    if (p->hdr.operation() == Op::credit_request) break;
    REQUIRE(p->hdr.operation() == Op::rw);
    sent += p->payload.size();
  }
  CHECK(sent == 5000);
  CHECK(c.peer_free() == 0);
  CHECK_FALSE(c.has_packet_for_guest());  // one CREDIT_REQUEST, then silence
  CHECK(c.host_read_room() == 5000);      // room reopened by what was sent
  // The guest read 3000 bytes and says so.
  REQUIRE(c.on_guest_packet(from_guest(Op::credit_update, 0, 0, 5000, 3000), {}, t0));
  CHECK(c.peer_free() == 3000);
  auto p = c.next_packet_for_guest(65536);
  REQUIRE(p);
  CHECK(p->hdr.operation() == Op::rw);
  CHECK(p->payload.size() == 3000);
  // A guest that shrinks its buffer below what is in flight grants nothing (no underflow).
  REQUIRE(c.on_guest_packet(from_guest(Op::credit_update, 0, 0, 100, 3000), {}, t0));
  CHECK(c.peer_free() == 0);
}

TEST_CASE("guest-to-host credit: updates when low, overrun resets", "[vsock]") {
  ConnectionLimits lim;
  lim.buf_alloc = 16384;
  lim.credit_update_threshold = 4096;
  Connection c = established(65536, lim);
  // Guest fills 14000 of our 16384: its view of our free space (2384) is below threshold,
  // but nothing was delivered yet, so an update would say nothing new.
  REQUIRE(c.on_guest_packet(from_guest(Op::rw, 14000), data(14000), t0));
  CHECK_FALSE(c.has_packet_for_guest());
  // The slow host reader drains some: now the guest must hear about it.
  c.on_host_written(8000, t0);
  REQUIRE(c.has_packet_for_guest());
  auto p = c.next_packet_for_guest(4096);
  REQUIRE(p);
  CHECK(p->hdr.operation() == Op::credit_update);
  CHECK(p->hdr.fwd_cnt == 8000);
  CHECK(p->hdr.buf_alloc == 16384);
  CHECK_FALSE(c.has_packet_for_guest());
  // An explicit CREDIT_REQUEST is always answered.
  REQUIRE(c.on_guest_packet(from_guest(Op::credit_request), {}, t0));
  CHECK(next_op(c) == Op::credit_update);
  // 6000 buffered; 10384 free. Sending 10385 breaks the credit: reset, memory released.
  CHECK_FALSE(c.on_guest_packet(from_guest(Op::rw, 10385), data(10385), t0));
  CHECK(c.to_host_size() == 0);
  CHECK(next_op(c) == Op::rst);
  CHECK(c.finished());
}

TEST_CASE("a slow host reader bounds memory via credit", "[vsock]") {
  ConnectionLimits lim;
  Connection c = established(65536, lim);
  // A well-behaved guest sends exactly its credit, then must stop.
  for (uint32_t sent = 0; sent < lim.buf_alloc; sent += 4096)
    REQUIRE(c.on_guest_packet(from_guest(Op::rw, 4096), data(4096), t0));
  CHECK(c.to_host_size() == lim.buf_alloc);
  CHECK_FALSE(c.on_guest_packet(from_guest(Op::rw, 1), data(1), t0));
}

TEST_CASE("guest shuts down sending, then host EOF: orderly close", "[vsock]") {
  Connection c = established();
  REQUIRE(c.on_guest_packet(from_guest(Op::rw, 5), data(5), t0));
  REQUIRE(c.on_guest_packet(from_guest(Op::shutdown, 0, kShutdownSend), {}, t0));
  CHECK_FALSE(c.wants_host_write_shutdown());  // 5 bytes still to deliver
  c.on_host_written(5, t0);
  CHECK(c.wants_host_write_shutdown());
  c.mark_host_write_shut();
  CHECK_FALSE(c.wants_host_write_shutdown());
  // Data after SHUTDOWN(SEND) breaks the protocol; checked on a copy.
  {
    Connection d = c;
    CHECK_FALSE(d.on_guest_packet(from_guest(Op::rw, 1), data(1), t0));
  }
  // The host answers and closes.
  c.on_host_data(data(7), t0);
  c.on_host_eof(t0);
  CHECK(next_op(c) == Op::rw);
  CHECK(next_op(c) == Op::shutdown);
  CHECK(next_op(c) == Op::rst);  // both directions done
  CHECK(c.finished());
}

TEST_CASE("host EOF first: SHUTDOWN(SEND) after pending data, then guest close", "[vsock]") {
  Connection c = established();
  c.on_host_data(data(100), t0);
  c.on_host_eof(t0);
  CHECK(c.host_read_room() == 0);
  auto rw = c.next_packet_for_guest(4096);
  REQUIRE(rw);
  CHECK(rw->hdr.operation() == Op::rw);
  auto sd = c.next_packet_for_guest(4096);
  REQUIRE(sd);
  CHECK(sd->hdr.operation() == Op::shutdown);
  CHECK(sd->hdr.flags == kShutdownSend);
  CHECK_FALSE(c.has_packet_for_guest());
  // The guest still talks (half-close), then closes fully.
  REQUIRE(c.on_guest_packet(from_guest(Op::rw, 4), data(4), t0));
  CHECK(c.host_pending().size() == 4);
  REQUIRE(c.on_guest_packet(from_guest(Op::shutdown, 0, kShutdownBoth), {}, t0));
  CHECK_FALSE(c.has_packet_for_guest());  // delivers the 4 bytes first
  c.on_host_written(4, t0);
  CHECK(next_op(c) == Op::rst);
  CHECK(c.finished());
}

TEST_CASE("guest full shutdown with a host that never drains times out", "[vsock]") {
  Connection c = established();
  REQUIRE(c.on_guest_packet(from_guest(Op::rw, 10), data(10), t0));
  c.on_host_data(data(20), t0);
  REQUIRE(c.on_guest_packet(from_guest(Op::shutdown, 0, kShutdownBoth), {}, t0));
  CHECK(c.to_guest_size() == 0);  // the guest reads no more: dropped
  CHECK(c.host_read_room() == 0);
  REQUIRE(c.deadline().has_value());
  CHECK_FALSE(c.on_tick(t0 + 1500ms));
  CHECK(c.on_tick(t0 + 2000ms));
  CHECK(next_op(c) == Op::rst);
  CHECK(c.finished());
}

TEST_CASE("host socket error: SHUTDOWN to the guest, RST or timeout ends it", "[vsock]") {
  SECTION("guest answers RST") {
    Connection c = established();
    REQUIRE(c.on_guest_packet(from_guest(Op::rw, 10), data(10), t0));
    c.on_host_error(t0);
    CHECK(c.state() == Connection::State::closing);
    CHECK(c.host_pending().empty());
    auto p = c.next_packet_for_guest(4096);
    REQUIRE(p);
    CHECK(p->hdr.operation() == Op::shutdown);
    CHECK(p->hdr.flags == kShutdownBoth);
    CHECK_FALSE(c.has_packet_for_guest());
    // Data still in flight from the guest is ignored, not an error.
    CHECK(c.on_guest_packet(from_guest(Op::rw, 10), data(10), t0));
    CHECK(c.host_pending().empty());
    REQUIRE(c.on_guest_packet(from_guest(Op::rst), {}, t0));
    CHECK(c.finished());
  }
  SECTION("guest never finishes") {
    Connection c = established();
    c.on_host_error(t0);
    CHECK(next_op(c) == Op::shutdown);
    CHECK_FALSE(c.on_tick(t0 + 1ms));
    CHECK(c.on_tick(t0 + 2s));
    CHECK(next_op(c) == Op::rst);
    CHECK(c.finished());
  }
}

TEST_CASE("guest RST on an open stream closes it without an answer", "[vsock]") {
  Connection c = established();
  c.on_host_data(data(50), t0);
  REQUIRE(c.on_guest_packet(from_guest(Op::rst), {}, t0));
  CHECK(c.finished());
  CHECK_FALSE(c.has_packet_for_guest());
  CHECK(c.host_read_room() == 0);
  // Late packets after the close are ignored.
  CHECK(c.on_guest_packet(from_guest(Op::rw, 3), data(3), t0));
  CHECK_FALSE(c.has_packet_for_guest());
}

TEST_CASE("REQUEST or RESPONSE on an open stream resets it", "[vsock]") {
  for (Op op : {Op::request, Op::response}) {
    Connection c = established();
    CHECK_FALSE(c.on_guest_packet(from_guest(op), {}, t0));
    CHECK(next_op(c) == Op::rst);
    CHECK(c.finished());
  }
}

TEST_CASE("host gives up while connecting", "[vsock]") {
  SECTION("before the REQUEST went out: nothing to tell the guest") {
    Connection c = Connection::host_initiated(kGuest, kHostPort, kGuestPort, {}, t0);
    c.on_host_eof(t0);
    CHECK(c.finished());
    CHECK_FALSE(c.has_packet_for_guest());
  }
  SECTION("after the REQUEST: RST cancels it") {
    Connection c = Connection::host_initiated(kGuest, kHostPort, kGuestPort, {}, t0);
    REQUIRE(next_op(c) == Op::request);
    c.on_host_error(t0);
    CHECK(next_op(c) == Op::rst);
    CHECK(c.finished());
  }
}
