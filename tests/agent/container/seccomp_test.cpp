#include "agent/container/seccomp.hpp"

#include <seccomp.h>

#include <catch2/catch.hpp>

#include "agent/agent_error.hpp"

using namespace frakti::agent;
using namespace frakti::agent::container;

TEST_CASE("seccomp: an OCI profile is parsed", "[agent][seccomp]") {
  auto p = parse_seccomp_profile(R"({
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [
      {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
      {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
      {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
      {"names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS"}
    ]})");
  REQUIRE(p.default_action == SCMP_ACT_ERRNO(38));
  REQUIRE(p.rules.size() == 4);
  REQUIRE(p.rules[0].names == std::vector<std::string>{"read", "write"});
  REQUIRE(p.rules[1].args.size() == 1);
  REQUIRE(p.rules[1].args[0].op == SCMP_CMP_EQ);
  REQUIRE(p.rules[2].action == SCMP_ACT_ERRNO(1));
  REQUIRE(p.rules[3].action == SCMP_ACT_KILL_PROCESS);
}

TEST_CASE("seccomp: hostile profile table", "[agent][seccomp]") {
  const std::pair<const char*, const char*> cases[] = {
      {"", "not a JSON object"},
      {"[]", "not a JSON object"},
      {"{}", "no defaultAction"},
      {R"({"defaultAction": 1})", "defaultAction is not a string"},
      {R"({"defaultAction": "SCMP_ACT_NOTIFY"})", "'SCMP_ACT_NOTIFY' is not supported"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x"})", "listenerPath"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}})", "syscalls is not an array"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{}]})", "syscalls[0] has no names"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [1], "action": "SCMP_ACT_ALLOW"}]})",
       "non-string"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"]}]})",
       "syscalls[0].action is not a string"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99999}]})",
       "not an errno"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]})",
       "index is not 0-5"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]})",
       "not a comparison"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0}]}]})",
       "needs index, value and op"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]})",
       "value is not a number"},
  };
  for (const auto& [json, message] : cases) {
    INFO(json);
    try {
      parse_seccomp_profile(json);
      FAIL("accepted");
    } catch (const AgentError& e) {
      REQUIRE(e.code() == v1::Error::CODE_INVALID_ARGUMENT);
      REQUIRE_THAT(e.what(), Catch::Contains(message));
    }
  }
}
