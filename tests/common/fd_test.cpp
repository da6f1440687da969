#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <system_error>

#include "common/error.hpp"
#include "common/fd.hpp"

using frakti::common::Fd;

TEST_CASE("Fd closes on destruction and moves ownership", "[common]") {
  auto p = frakti::common::make_pipe();
  int raw = p.read.get();
  REQUIRE(fcntl(raw, F_GETFD) & FD_CLOEXEC);
  {
    Fd moved = std::move(p.read);
    REQUIRE_FALSE(p.read.valid());
    REQUIRE(moved.get() == raw);
  }
  REQUIRE(fcntl(raw, F_GETFD) == -1);
}

TEST_CASE("write_all and read_exact round-trip and report short reads", "[common]") {
  auto p = frakti::common::make_pipe();
  frakti::common::write_all(p.write.get(), "hello", 5, "pipe");
  char buf[3];
  REQUIRE(frakti::common::read_exact(p.read.get(), buf, 3, "pipe"));
  REQUIRE(std::string(buf, 3) == "hel");
  p.write.reset();
  char rest[4];
  REQUIRE_THROWS_AS(frakti::common::read_exact(p.read.get(), rest, 4, "pipe"), std::system_error);
  REQUIRE_FALSE(frakti::common::read_exact(p.read.get(), rest, 4, "pipe"));
}

TEST_CASE("check throws system_error naming the call", "[common]") {
  try {
    frakti::common::check(::open("/nonexistent/x", O_RDONLY), "open {}", "/nonexistent/x");
    FAIL("no throw");
  } catch (const std::system_error& e) {
    REQUIRE(e.code().value() == ENOENT);
    REQUIRE(std::string(e.what()).find("open /nonexistent/x") != std::string::npos);
  }
}
