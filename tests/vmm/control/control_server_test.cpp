// ControlServer behind a real Unix socket with a fake VM: every method round-trips, hostile
// input gets precise error replies while the server keeps serving, the socket is owner-only and
// replaces only stale files, a slow stop blocks nobody, many clients work at once.

#include <sys/stat.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <future>
#include <set>

#include "tests/vmm/control/control_test_util.hpp"
#include "vmm/control/control_client.hpp"

using namespace frakti::vmm::control;
using namespace frakti::vmm::control::test;
using namespace std::chrono_literals;
using namespace std::string_literals;

namespace {

const std::string kStatus = "{\"id\":99,\"method\":\"status\"}\n";

/// The connection still answers requests.
void check_still_serving(RawClient& c) {
  REQUIRE(c.send(kStatus));
  Json r = c.reply();
  CHECK(r["id"] == 99);
  CHECK(r["result"]["vcpus"] == 2);
}

}  // namespace

TEST_CASE("every method round-trips through the socket", "[control][server]") {
  Harness h;
  ControlClient client(h.path);

  VmStatus s = client.status();
  CHECK(s == h.vm.snapshot());
  CHECK(s.drives.size() == FakeVm::kSlots);
  // Queries run on the event loop, commands on the command thread.
  CHECK(h.vm.status_thread() == h.loop.get_id());

  CHECK_FALSE(client.boot_time().has_value());
  h.vm.set_boot_time(12345us);
  CHECK(client.boot_time() == 12345us);
  CHECK(client.status().boot_time == 12345us);

  client.pause();
  CHECK(h.vm.snapshot().state == VmState::paused);
  CHECK(h.vm.command_thread() != h.loop.get_id());
  CHECK(h.vm.command_thread() != std::this_thread::get_id());
  try {
    client.pause();
    FAIL("pause of a paused VM succeeded");
  } catch (const ControlError& e) {
    CHECK(e.code() == ErrorCode::failed_precondition);
    CHECK(std::string(e.what()) == "the VM is paused, not running");
  }
  client.resume();
  CHECK(h.vm.snapshot().state == VmState::running);

  client.set_drive(2, std::string("/var/lib/frakti/images/a.erofs"), true, "rootfs-c1");
  CHECK(h.vm.snapshot().drives[2] ==
        DriveSlotInfo{2, "/var/lib/frakti/images/a.erofs", true, "rootfs-c1"});
  CHECK(client.status().drives[2].serial == "rootfs-c1");
  client.set_drive(2, std::nullopt, false, "");
  CHECK(h.vm.snapshot().drives[2] == DriveSlotInfo{2, "", true, ""});

  auto stopped = client.stop(true, 1234ms);
  REQUIRE(stopped.has_value());
  CHECK_FALSE(stopped->forced);
  CHECK(h.vm.last_stop_timeout() == 1234ms);
  CHECK(h.vm.snapshot().state == VmState::stopped);
  stopped = client.stop(false, 0ms);
  REQUIRE(stopped.has_value());
  CHECK(stopped->forced);

  // The raw wire form of a reply.
  RawClient raw(h.path);
  REQUIRE(raw.send("{\"id\":5,\"method\":\"resume\"}\n"));
  CHECK(raw.reply() == Json::parse(R"({"id":5,"error":{"code":"failed_precondition",
                                      "message":"the VM is stopped, not paused"}})"));
  REQUIRE(
      raw.send("{\"id\":6,\"method\":\"set_drive\",\"params\":{\"slot\":0,\"path\":\"/i\"}}\n"));
  CHECK(raw.reply() == Json::parse(R"({"id":6,"result":{}})"));
}

TEST_CASE("handler exceptions become error replies with their message", "[control][server]") {
  Harness h;
  ControlClient client(h.path);
  struct Case {
    std::string path;
    ErrorCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"/missing/image.erofs", ErrorCode::not_found,
       "open /missing/image.erofs: No such file or directory"},
      {"/broken", ErrorCode::internal, "the blk device refused the swap"},
      {"/bad-arg", ErrorCode::invalid_argument, "image is not a multiple of 512 bytes"},
      {"/weird", ErrorCode::internal, "the VMM failed with an unknown error"},
  };
  for (const auto& c : cases) {
    INFO(c.path);
    try {
      client.set_drive(1, c.path, true, "");
      FAIL("set_drive succeeded");
    } catch (const ControlError& e) {
      CHECK(e.code() == c.code);
      CHECK(std::string(e.what()) == c.message);
    }
  }
  CHECK(client.status().drives[1].path.empty());  // still serving, nothing changed
}

TEST_CASE("hostile input gets precise replies and the server keeps serving", "[control][server]") {
  Harness h;
  RawClient c(h.path);
  struct Case {
    std::string bytes;
    Json id;
    std::string code;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"garbage\n", nullptr, "invalid_argument", "not valid JSON"},
      {"{\"id\":1,\n", nullptr, "invalid_argument", "not valid JSON"},
      {"\xff\xfe\x00\x01\n"s, nullptr, "invalid_argument", "not valid JSON"},
      {"[]\n", nullptr, "invalid_argument", "must be a JSON object"},
      {"{\"id\":\"7\",\"method\":\"status\"}\n", nullptr, "invalid_argument", "'id' must be"},
      {"{\"id\":7,\"method\":\"reboot\"}\n", 7, "not_found", "unknown method 'reboot'"},
      {"{\"id\":8,\"method\":\"stop\",\"params\":{\"graceful\":\"no\"}}\n", 8, "invalid_argument",
       "'graceful' must be true or false"},
      {"{\"id\":9,\"method\":\"set_drive\",\"params\":{\"slot\":4,\"path\":\"/x\"}}\n", 9,
       "not_found", "drive slot 4 does not exist"},
      {"{\"id\":10,\"method\":\"set_drive\",\"params\":{\"slot\":1,\"path\":\"rel\"}}\r\n", 10,
       "invalid_argument", "must be absolute"},
      {"{\"id\":11,\"method\":\"status\",\"params\":5}\n", 11, "invalid_argument",
       "'params' must be a JSON object"},
  };
  uint64_t before = h.server->bad_request_count();
  for (const auto& k : cases) {
    INFO("bytes: " << k.bytes);
    REQUIRE(c.send(k.bytes));
    Json r = c.reply();
    CHECK(r["id"] == k.id);
    CHECK(r["error"]["code"] == k.code);
    CHECK_THAT(r["error"]["message"].get<std::string>(), Catch::Contains(k.message_part));
    CHECK(r.find("result") == r.end());
  }
  CHECK(h.server->bad_request_count() == before + cases.size());
  CHECK(h.vm.set_drive_calls() == 0);  // nothing invalid reached the VM
  CHECK(h.vm.stop_calls() == 0);

  // Blank lines are skipped; a request split across writes is joined.
  REQUIRE(c.send("\n  \r\n{\"id\":12,"));
  std::this_thread::sleep_for(20ms);
  REQUIRE(c.send("\"method\":\"status\"}\n"));
  CHECK(c.reply()["id"] == 12);
  check_still_serving(c);
}

TEST_CASE("pipelined requests on one connection are all answered", "[control][server]") {
  Harness h;
  RawClient c(h.path);
  std::string batch;
  for (int i = 1; i <= 100; ++i) {
    batch += fmt::format("{{\"id\":{},\"method\":\"{}\"}}\n", i, i % 2 ? "status" : "boot_time");
  }
  REQUIRE(c.send(batch));
  for (int i = 1; i <= 100; ++i) {
    Json r = c.reply();
    CHECK(r["id"] == i);  // queries are answered in order
    CHECK(r.contains("result"));
  }
}

TEST_CASE("an oversized line gets an error reply and closes only that connection",
          "[control][server]") {
  Harness h;
  RawClient other(h.path);
  check_still_serving(other);

  SECTION("no newline in sight") {
    RawClient c(h.path);
    REQUIRE(c.send_until_closed(std::string(kDefaultMaxLineBytes + 1, 'a')));
    Json r = c.reply();
    CHECK(r["id"].is_null());
    CHECK(r["error"]["code"] == "invalid_argument");
    CHECK(r["error"]["message"] == "request line longer than 65536 bytes; closing the connection");
    CHECK(c.at_eof());
  }
  SECTION("a complete line that is too long, after a good request") {
    RawClient c(h.path);
    std::string big = "{\"id\":1,\"method\":\"status\"}" + std::string(kDefaultMaxLineBytes, ' ');
    REQUIRE(c.send_until_closed(kStatus + big + "\n" + kStatus));
    CHECK(c.reply()["id"] == 99);
    CHECK(c.reply()["error"]["code"] == "invalid_argument");
    CHECK(c.at_eof());  // the request after the long line is not served
  }
  SECTION("a line of exactly the limit is served") {
    RawClient c(h.path);
    std::string line = "{\"id\":3,\"method\":\"status\"}";
    line += std::string(kDefaultMaxLineBytes - line.size(), ' ');
    REQUIRE(c.send(line + "\n"));
    CHECK(c.reply()["id"] == 3);
    check_still_serving(c);
  }
  check_still_serving(other);
  RawClient fresh(h.path);
  check_still_serving(fresh);
}

TEST_CASE("clients that leave early do not disturb the server", "[control][server]") {
  Harness h;
  {
    RawClient c(h.path);
    REQUIRE(c.send("{\"id\":1,\"meth"));  // partial line, then gone
  }
  {
    RawClient c(h.path);  // connect and leave without a byte
  }
  {
    RawClient c(h.path);
    REQUIRE(c.send_until_closed(std::string(100000, 'x')));  // oversized, and gone before the reply
  }
  CHECK(h.wait_connections(0));
  RawClient c(h.path);
  check_still_serving(c);

  SECTION("a half-closed client still gets its replies, then EOF") {
    RawClient d(h.path);
    REQUIRE(
        d.send("{\"id\":1,\"method\":\"status\"}\n{\"id\":2,\"method\":\"pause\"}\n"
               "{\"id\":3,\"method\":\"st"));
    d.shutdown_write();
    std::set<uint64_t> ids;
    ids.insert(d.reply()["id"].get<uint64_t>());
    ids.insert(d.reply()["id"].get<uint64_t>());
    CHECK(ids == std::set<uint64_t>{1, 2});
    CHECK(d.at_eof());  // the partial third request gets no reply
    CHECK(h.vm.snapshot().state == VmState::paused);
  }
  SECTION("a client leaving with a command in flight: the command still happens") {
    h.vm.hold_stop(true);
    {
      RawClient d(h.path);
      REQUIRE(d.send("{\"id\":1,\"method\":\"stop\"}\n"));
      REQUIRE(h.vm.wait_stop_entered(1));
    }
    h.vm.hold_stop(false);
    ControlClient client(h.path);
    for (int i = 0; i < 500 && client.status().state != VmState::stopped; ++i) {
      std::this_thread::sleep_for(5ms);
    }
    CHECK(client.status().state == VmState::stopped);
  }
}

TEST_CASE("a slow stop blocks neither the loop nor other clients", "[control][server]") {
  Harness h;
  h.vm.hold_stop(true);
  auto stopping = std::async(std::launch::async, [&] {
    ControlClient a(h.path);
    return a.stop(true, 30000ms);
  });
  REQUIRE(h.vm.wait_stop_entered(1));

  // While stop() is blocked in the VM, other clients' queries are answered at once.
  ControlClient b(h.path);
  CHECK(b.status().state == VmState::stopping);
  ControlClient c(h.path);
  CHECK_FALSE(c.boot_time().has_value());
  CHECK(stopping.wait_for(0ms) == std::future_status::timeout);

  // Commands queue behind it: a set_drive issued now runs only after stop returns.
  auto drive = std::async(std::launch::async, [&] {
    ControlClient d(h.path);
    d.set_drive(0, std::string("/img/x"), true, "x");
  });
  std::this_thread::sleep_for(50ms);
  CHECK(h.vm.set_drive_calls() == 0);
  CHECK(drive.wait_for(0ms) == std::future_status::timeout);

  h.vm.hold_stop(false);
  auto result = stopping.get();
  REQUIRE(result.has_value());
  CHECK_FALSE(result->forced);
  drive.get();
  CHECK(h.vm.set_drive_calls() == 1);
}

TEST_CASE("too many queued commands are refused, not queued forever", "[control][server]") {
  ControlServer::Options options;
  options.max_queued_commands = 1;
  Harness h(options);
  h.vm.hold_stop(true);
  RawClient a(h.path);
  REQUIRE(a.send("{\"id\":1,\"method\":\"stop\"}\n"));
  REQUIRE(h.vm.wait_stop_entered(1));
  RawClient b(h.path);
  REQUIRE(b.send("{\"id\":2,\"method\":\"pause\"}\n"));
  Json r = b.reply();
  CHECK(r["id"] == 2);
  CHECK(r["error"]["code"] == "failed_precondition");
  CHECK_THAT(r["error"]["message"].get<std::string>(), Catch::Contains("already waiting"));
  check_still_serving(b);
  h.vm.hold_stop(false);
  CHECK(a.reply()["result"]["forced"] == false);
}

TEST_CASE("two clients at once", "[control][server]") {
  Harness h;
  auto worker = [&](uint32_t slot) {
    ControlClient client(h.path);
    for (int i = 0; i < 100; ++i) {
      std::string path = fmt::format("/img/{}-{}", slot, i);
      client.set_drive(slot, path, i % 2 == 0, fmt::format("s{}-{}", slot, i));
      VmStatus s = client.status();
      if (s.drives.at(slot).path != path) return false;
    }
    return true;
  };
  auto one = std::async(std::launch::async, worker, 0u);
  auto two = std::async(std::launch::async, worker, 1u);
  CHECK(one.get());
  CHECK(two.get());
  CHECK(h.vm.set_drive_calls() == 200);
  CHECK(h.vm.snapshot().drives[1] == DriveSlotInfo{1, "/img/1-99", false, "s1-99"});
}

TEST_CASE("connections beyond the limit are refused with a reply", "[control][server]") {
  ControlServer::Options options;
  options.max_connections = 2;
  Harness h(options);
  auto a = std::make_unique<RawClient>(h.path);
  RawClient b(h.path);
  check_still_serving(*a);
  check_still_serving(b);
  {
    RawClient c(h.path);
    Json r = c.reply();
    CHECK(r["id"].is_null());
    CHECK(r["error"]["code"] == "failed_precondition");
    CHECK_THAT(r["error"]["message"].get<std::string>(), Catch::Contains("limit 2"));
    CHECK(c.at_eof());
  }
  a.reset();
  REQUIRE(h.wait_connections(1));
  RawClient d(h.path);
  check_still_serving(d);
}

TEST_CASE("only the owner uid (or root, when allowed) may connect", "[control][server]") {
  ControlServer::Options options;
  options.owner_uid = ::geteuid() + 4242;  // someone else owns this VMM
  options.allow_root = false;
  Harness h(options);
  ControlClient client(h.path);  // connect succeeds; the first call learns the refusal
  try {
    client.status();
    FAIL("a foreign uid was served");
  } catch (const ControlError& e) {
    CHECK(e.code() == ErrorCode::permission_denied);
    CHECK_THAT(e.what(), Catch::Contains(fmt::format("uid {} may not use", ::geteuid())));
  }
  RawClient raw(h.path);
  raw.send(kStatus);
  CHECK(raw.reply()["error"]["code"] == "permission_denied");
  CHECK(raw.at_eof());
  CHECK(h.vm.snapshot().state == VmState::running);
}

TEST_CASE("a client that never reads its replies is disconnected", "[control][server]") {
  ControlServer::Options options;
  options.max_pending_reply_bytes = 16 * 1024;
  Harness h(options);
  RawClient greedy(h.path);
  std::string batch;
  for (int i = 0; i < 20000; ++i) batch += kStatus;  // ~560 KB in, ~4 MB of replies out
  greedy.send(batch);                                // may fail part way once the server hangs up
  CHECK(h.wait_connections(0));
  CHECK(greedy.at_eof());
  RawClient polite(h.path);
  check_still_serving(polite);
}

TEST_CASE("the socket file is owner-only and removed on shutdown", "[control][server]") {
  // A permissive umask must not leak into the socket's mode.
  mode_t old_umask = ::umask(0);
  Harness h;
  ::umask(old_umask);
  struct stat st;
  REQUIRE(::lstat(h.path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(st.st_uid == ::geteuid());
  h.on_loop([&] {
    h.server.reset();
    return 0;
  });
  CHECK(::access(h.path.c_str(), F_OK) != 0);
}

TEST_CASE("a stale socket is replaced; a live one or another file is refused",
          "[control][server]") {
  TempDir dir;
  std::string path = dir.path + "/control.sock";
  FakeVm vm;
  boost::asio::io_context io;

  SECTION("stale socket from a dead VMM") {
    {
      frakti::common::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_un a = unix_addr(path);
      REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
      ::chmod(path.c_str(), 0777);
    }  // closed without unlink: what a crashed VMM leaves behind
    ControlServer server(io, path, vm);
    struct stat st;
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    std::thread loop([&] { io.run(); });
    {
      ControlClient client(path);
      CHECK(client.status().vcpus == 2);
    }
    io.stop();
    loop.join();
  }
  SECTION("a live socket") {
    ControlServer first(io, path, vm);
    try {
      ControlServer second(io, path, vm);
      FAIL("a live control socket was replaced");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == EADDRINUSE);
      CHECK_THAT(e.what(), Catch::Contains(path));
    }
    struct stat st;
    CHECK(::lstat(path.c_str(), &st) == 0);  // the first server's socket is untouched
  }
  SECTION("a regular file") {
    { std::ofstream(path) << "precious"; }
    try {
      ControlServer server(io, path, vm);
      FAIL("a regular file was replaced");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == EEXIST);
      CHECK_THAT(e.what(), Catch::Contains("is not a socket"));
    }
    std::ifstream in(path);
    std::string text;
    in >> text;
    CHECK(text == "precious");
  }
  SECTION("a symlink to a socket is not a socket") {
    REQUIRE(::symlink("/nonexistent", path.c_str()) == 0);
    CHECK_THROWS_AS(ControlServer(io, path, vm), std::system_error);
    struct stat st;
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    CHECK(S_ISLNK(st.st_mode));
  }
  SECTION("a path too long for a Unix socket") {
    std::string long_path = dir.path + "/" + std::string(120, 'x');
    try {
      ControlServer server(io, long_path, vm);
      FAIL("an over-long path was accepted");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == ENAMETOOLONG);
    }
  }
}
