// ControlClient against scripted servers: connection failures say what to check, replies that
// break the protocol are errors (not crashes), late replies to timed-out calls are skipped, and
// a VMM that exits while stopping counts as stopped.

#include "vmm/control/control_client.hpp"

#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <functional>
#include <future>

#include "tests/vmm/control/control_test_util.hpp"

using namespace frakti::vmm::control;
using namespace frakti::vmm::control::test;
using namespace std::chrono_literals;
using frakti::common::Fd;

namespace {

/// A one-connection server whose replies come from `script`, run on its own thread with the
/// accepted connection (a RawClient-like reader over it).
class ScriptedServer {
 public:
  using Script = std::function<void(int fd, std::function<std::optional<std::string>()> read)>;

  ScriptedServer(const std::string& path, Script script) {
    listen_ = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a = unix_addr(path);
    REQUIRE(::bind(listen_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listen_.get(), 4) == 0);
    thread_ = std::thread([this, script = std::move(script)] {
      Fd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) return;
      std::string buf;
      auto read = [&]() -> std::optional<std::string> {
        for (;;) {
          if (auto nl = buf.find('\n'); nl != std::string::npos) {
            std::string l = buf.substr(0, nl);
            buf.erase(0, nl + 1);
            return l;
          }
          char tmp[4096];
          ssize_t n = ::recv(conn.get(), tmp, sizeof tmp, 0);
          if (n <= 0) return std::nullopt;
          buf.append(tmp, static_cast<size_t>(n));
        }
      };
      script(conn.get(), read);
    });
  }
  ~ScriptedServer() { thread_.join(); }

 private:
  Fd listen_;
  std::thread thread_;
};

void say(int fd, const std::string& s) {
  ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
}

uint64_t id_of(const std::optional<std::string>& line) {
  REQUIRE(line.has_value());
  return Json::parse(*line)["id"].get<uint64_t>();
}

}  // namespace

TEST_CASE("connecting to a missing socket fails at once with a hint", "[control][client]") {
  TempDir dir;
  auto start = std::chrono::steady_clock::now();
  try {
    ControlClient client(dir.path + "/nope.sock");
    FAIL("connected to nothing");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == ENOENT);
    CHECK_THAT(e.what(), Catch::Contains(dir.path + "/nope.sock"));
    CHECK_THAT(e.what(), Catch::Contains("is the VM running?"));
  }
  CHECK(std::chrono::steady_clock::now() - start < 2s);
}

TEST_CASE("wait_for_socket waits for a VMM that is still starting", "[control][client]") {
  TempDir dir;
  std::string path = dir.path + "/control.sock";
  SECTION("gives up at the deadline") {
    ControlClient::Options o;
    o.wait_for_socket = true;
    o.connect_timeout = 100ms;
    auto start = std::chrono::steady_clock::now();
    CHECK_THROWS_AS(ControlClient(path, o), std::system_error);
    CHECK(std::chrono::steady_clock::now() - start >= 100ms);
  }
  SECTION("connects once the socket appears") {
    auto later = std::async(std::launch::async, [&] {
      std::this_thread::sleep_for(150ms);
      ScriptedServer server(path, [](int fd, auto read) {
        std::optional<std::string> line = read();
        say(fd, fmt::format("{{\"id\":{},\"result\":{{}}}}\n", id_of(line)));
      });
    });
    ControlClient::Options o;
    o.wait_for_socket = true;
    ControlClient client(path, o);
    CHECK(client.call("pause").empty());
    later.get();
  }
}

TEST_CASE("replies that break the protocol are EPROTO errors", "[control][client]") {
  struct Case {
    std::string name;
    std::function<std::string(uint64_t id)> reply;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"garbage", [](uint64_t) { return "garbage\n"; }, "not a JSON object"},
      {"array", [](uint64_t) { return "[1]\n"; }, "not a JSON object"},
      {"no id", [](uint64_t) { return "{\"result\":{}}\n"; }, "no 'id'"},
      {"future id",
       [](uint64_t id) { return fmt::format("{{\"id\":{},\"result\":{{}}}}\n", id + 5); },
       "a request we did not send"},
      {"no result", [](uint64_t id) { return fmt::format("{{\"id\":{}}}\n", id); },
       "no 'result' object"},
      {"result not object",
       [](uint64_t id) { return fmt::format("{{\"id\":{},\"result\":3}}\n", id); },
       "no 'result' object"},
      {"error not object",
       [](uint64_t id) { return fmt::format("{{\"id\":{},\"error\":\"x\"}}\n", id); },
       "'error' is not an object"},
      {"error without message",
       [](uint64_t id) {
         return fmt::format("{{\"id\":{},\"error\":{{\"code\":\"internal\"}}}}\n", id);
       },
       "lacks a code or a message"},
      {"null-id result", [](uint64_t) { return "{\"id\":null,\"result\":{}}\n"; },
       "a result with a null id"},
      {"status missing fields",
       [](uint64_t id) {
         return fmt::format("{{\"id\":{},\"result\":{{\"state\":\"running\"}}}}\n", id);
       },
       "status result has no 'vcpus'"},
      {"endless line", [](uint64_t) { return std::string(5 << 20, 'x'); }, "longer than"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    TempDir dir;
    std::string path = dir.path + "/control.sock";
    ScriptedServer server(path, [&](int fd, auto read) {
      auto line = read();
      if (line) say(fd, c.reply(id_of(line)));
      read();  // until the client hangs up
    });
    ControlClient client(path);
    try {
      client.status();
      FAIL("a broken reply was accepted");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == EPROTO);
      CHECK_THAT(e.what(), Catch::Contains(c.message_part));
    }
  }
}

TEST_CASE("error replies carry the server's code and message", "[control][client]") {
  TempDir dir;
  std::string path = dir.path + "/control.sock";
  ScriptedServer server(path, [](int fd, auto read) {
    auto line = read();
    say(fd, fmt::format(
                "{{\"id\":{},\"error\":{{\"code\":\"not_found\",\"message\":\"no slot 9\"}}}}\n",
                id_of(line)));
    line = read();
    say(fd, fmt::format(
                "{{\"id\":{},\"error\":{{\"code\":\"brand_new\",\"message\":\"newer VMM\"}}}}\n",
                id_of(line)));
    read();
  });
  ControlClient client(path);
  try {
    client.set_drive(9, std::nullopt, true, "");
    FAIL("error reply ignored");
  } catch (const ControlError& e) {
    CHECK(e.code() == ErrorCode::not_found);
    CHECK(std::string(e.what()) == "no slot 9");
  }
  try {
    client.pause();
    FAIL("error reply ignored");
  } catch (const ControlError& e) {
    CHECK(e.code() == ErrorCode::internal);  // unknown codes still deliver their message
    CHECK(std::string(e.what()) == "newer VMM");
  }
}

TEST_CASE("a timed-out call's late reply is skipped by the next call", "[control][client]") {
  TempDir dir;
  std::string path = dir.path + "/control.sock";
  ScriptedServer server(path, [](int fd, auto read) {
    uint64_t first = id_of(read());  // not answered in time
    uint64_t second = id_of(read());
    say(fd, fmt::format("{{\"id\":{},\"result\":{{\"late\":true}}}}\n", first));
    say(fd, fmt::format("{{\"id\":{},\"result\":{{\"fresh\":true}}}}\n", second));
    read();
  });
  ControlClient client(path);
  try {
    client.call("pause", Json::object(), 50ms);
    FAIL("no timeout");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == ETIMEDOUT);
  }
  Json r = client.call("resume");
  CHECK(r == Json{{"fresh", true}});
}

TEST_CASE("a VMM that exits while stopping counts as stopped", "[control][client]") {
  TempDir dir;
  std::string path = dir.path + "/control.sock";
  std::string seen;
  ScriptedServer server(path, [&](int, auto read) { seen = read().value_or(""); });
  ControlClient client(path);
  CHECK_FALSE(client.stop(true, 200ms).has_value());
  Json sent = Json::parse(seen);
  CHECK(sent["method"] == "stop");
  CHECK(sent["params"] == Json{{"graceful", true}, {"timeout_ms", 200}});
  // The connection is gone: further calls fail clearly.
  CHECK_THROWS_AS(client.status(), std::system_error);
}

TEST_CASE("a closed connection before a reply is ECONNRESET for other calls", "[control][client]") {
  TempDir dir;
  std::string path = dir.path + "/control.sock";
  ScriptedServer server(path, [](int, auto read) { read(); });
  ControlClient client(path);
  try {
    client.pause();
    FAIL("no error");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == ECONNRESET);
    CHECK_THAT(e.what(), Catch::Contains("before answering 'pause'"));
  }
}

TEST_CASE("format_status is readable", "[control][client]") {
  VmStatus s;
  s.vcpus = 2;
  s.memory_mib = 512;
  s.uptime = 2500ms;
  s.drives = {{0, "/img/a.erofs", true, "rootfs"}, {1, "", true, ""}};
  std::string text = format_status(s);
  CHECK_THAT(text, Catch::Contains("state:      running"));
  CHECK_THAT(text, Catch::Contains("uptime:     2.500 s"));
  CHECK_THAT(text, Catch::Contains("(guest not ready yet)"));
  CHECK_THAT(text, Catch::Contains("drive 0:    /img/a.erofs (ro, serial rootfs)"));
  CHECK_THAT(text, Catch::Contains("drive 1:    (empty)"));
  s.boot_time = 81234us;
  CHECK_THAT(format_status(s), Catch::Contains("boot time:  81.234 ms"));
}
