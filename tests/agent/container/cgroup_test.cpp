#include "agent/container/cgroup.hpp"

#include <catch2/catch.hpp>

using namespace frakti::agent::container;

TEST_CASE("cgroup: flat-keyed files", "[agent][cgroup]") {
  std::string cpu =
      "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\nnr_throttled "
      "2\nthrottled_usec 77\n";
  REQUIRE(stat_value(cpu, "usage_usec") == 1500);
  REQUIRE(stat_value(cpu, "nr_throttled") == 2);
  REQUIRE(stat_value(cpu, "throttled_usec") == 77);
  REQUIRE(stat_value(cpu, "usage") == 0);  // a prefix is not a key
  REQUIRE(stat_value(cpu, "missing") == 0);
  std::string events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0";
  REQUIRE(stat_value(events, "oom_kill") == 2);
  REQUIRE(stat_value(events, "oom") == 3);
  REQUIRE(stat_value(events, "oom_group_kill") == 0);
  REQUIRE(stat_value("", "x") == 0);
  REQUIRE(stat_value("x\n\n x 5\nx notanumber\n", "x") == 0);
}

TEST_CASE("cgroup: a root that is not cgroup v2 is refused with advice", "[agent][cgroup]") {
  char tmpl[] = "/tmp/frakti-cg-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  try {
    CgroupRoot::open(tmpl);
    FAIL("opened");
  } catch (const std::system_error& e) {
    REQUIRE_THAT(e.what(), Catch::Contains("not on a cgroup v2 file system"));
    REQUIRE_THAT(e.what(), Catch::Contains("--cgroup-root=none"));
  }
  ::rmdir(tmpl);
}
