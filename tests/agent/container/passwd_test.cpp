#include "agent/container/passwd.hpp"

#include <catch2/catch.hpp>

#include "agent/agent_error.hpp"

using namespace frakti::agent;
using namespace frakti::agent::container;

namespace {
const char* kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# a comment\n"
    "\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "web:x:1000:1000:Web,,,:/home/web:/bin/sh\r\n"
    "+nis::::::\n"
    "short:x:5\n"
    "neg:x:-1:0::/:/bin/sh\n"
    "big:x:4294967295:0::/:/bin/sh\n"
    "hex:x:0x10:0::/:/bin/sh\n"
    ":x:7:7::/:/bin/sh\n"
    "noline";
const char* kGroup =
    "root:x:0:\n"
    "users:x:100:web,other\n"
    "web:x:1000:\n"
    "wheel:x:10:root,web,\n"
    "broken:x:abc:web\n"
    "toomany:x:11:web:extra\n";
}  // namespace

TEST_CASE("passwd: lenient parsing skips every malformed line", "[agent][passwd]") {
  auto users = parse_passwd(kPasswd);
  REQUIRE(users.size() == 3);
  REQUIRE(users[0].name == "root");
  REQUIRE(users[1].name == "daemon");
  REQUIRE(users[2].name == "web");
  REQUIRE(users[2].uid == 1000);
  REQUIRE(users[2].home == "/home/web");
  auto groups = parse_group(kGroup);
  REQUIRE(groups.size() == 4);
  REQUIRE(groups[1].members == std::vector<std::string>{"web", "other"});
  REQUIRE(groups[3].members == std::vector<std::string>{"root", "web"});
}

TEST_CASE("passwd: hostile inputs never throw", "[agent][passwd]") {
  const std::string cases[] = {"",
                               ":::::::",
                               std::string(10000, ':'),
                               std::string("a:x:1:1::/:/bin/sh\0evil", 24),
                               "a:x:99999999999:1::/:/bin/sh",
                               "\n\n\n",
                               "a:x: 1:1::/:/bin/sh"};
  for (const auto& text : cases) {
    REQUIRE(parse_passwd(text).empty());
    REQUIRE(parse_group(text).empty());
  }
}

TEST_CASE("passwd: resolving users", "[agent][passwd]") {
  std::optional<std::string> passwd = kPasswd, group = kGroup;
  SECTION("by name: uid, gid, groups from membership, home") {
    UserSpec u;
    u.username = "web";
    auto r = resolve_user(u, passwd, group);
    REQUIRE(r.uid == 1000);
    REQUIRE(r.gid == 1000);
    REQUIRE(r.groups == std::vector<gid_t>{100, 10});
    REQUIRE(r.home == "/home/web");
  }
  SECTION("by uid: the request's groups are added without duplicates") {
    UserSpec u;
    u.uid = 1000;
    u.gid = 5;
    u.additional_gids = {10, 77};
    auto r = resolve_user(u, passwd, group);
    REQUIRE(r.uid == 1000);
    REQUIRE(r.gid == 5);
    REQUIRE(r.groups == std::vector<gid_t>{100, 10, 77});
  }
  SECTION("a uid without an entry is fine") {
    UserSpec u;
    u.uid = 4242;
    u.gid = 4242;
    auto r = resolve_user(u, passwd, group);
    REQUIRE(r.uid == 4242);
    REQUIRE(r.groups.empty());
    REQUIRE(r.home == "/");
  }
  SECTION("an unknown name is an error naming it") {
    UserSpec u;
    u.username = "ghost";
    try {
      resolve_user(u, passwd, group);
      FAIL("resolved");
    } catch (const AgentError& e) {
      REQUIRE(e.code() == v1::Error::CODE_INVALID_ARGUMENT);
      REQUIRE_THAT(e.what(), Catch::Contains("user 'ghost' is not in the image's /etc/passwd"));
    }
    try {
      resolve_user(u, std::nullopt, std::nullopt);
      FAIL("resolved");
    } catch (const AgentError& e) {
      REQUIRE_THAT(e.what(), Catch::Contains("the image has no /etc/passwd"));
    }
  }
}
