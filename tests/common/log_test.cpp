#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "common/fd.hpp"
#include "common/log.hpp"

namespace flog = frakti::common::log;

TEST_CASE("log lines carry level and component and respect the level", "[common]") {
  auto p = frakti::common::make_pipe();
  flog::set_fd(p.write.get());
  flog::set_level(flog::Level::info);
  flog::debug("t", "hidden {}", 1);
  flog::warn("vmm", "shown {}", 2);
  flog::set_fd(2);
  p.write.reset();
  char buf[256];
  ssize_t n = read(p.read.get(), buf, sizeof buf);
  std::string out(buf, n > 0 ? n : 0);
  REQUIRE(out.find("hidden") == std::string::npos);
  REQUIRE(out.find(" W vmm: shown 2\n") != std::string::npos);
}

TEST_CASE("parse_level accepts names and rejects junk", "[common]") {
  REQUIRE(flog::parse_level("debug") == flog::Level::debug);
  REQUIRE(flog::parse_level("3") == flog::Level::error);
  REQUIRE_THROWS_AS(flog::parse_level("loud"), std::invalid_argument);
}

TEST_CASE("RateLimiter lets a burst through and counts the rest", "[common]") {
  flog::RateLimiter rl(3, std::chrono::hours(1));
  int allowed = 0;
  for (int i = 0; i < 10; i++) allowed += rl.allow() ? 1 : 0;
  REQUIRE(allowed == 3);
  REQUIRE(rl.total() == 10);
}
