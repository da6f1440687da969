#include "initrd/init/options.hpp"

#include <catch2/catch.hpp>
#include <string>

using frakti::initrd::BootOptions;
using frakti::initrd::ConsoleCommand;
using frakti::initrd::LineReader;
using frakti::initrd::parse_boot_options;
using frakti::initrd::parse_console_command;

TEST_CASE("parse_boot_options reads frakti.poweroff and frakti.reboot", "[initrd]") {
  struct Case {
    std::string cmdline;
    bool poweroff;
    bool reboot;
  };
  // Hostile and odd command lines: none may crash, and only an exact "=1" turns a key on.
  const Case cases[] = {
      {"", false, false},
      {"console=ttyS0 quiet", false, false},
      {"console=ttyS0 frakti.poweroff=1", true, false},
      {"frakti.reboot=1\n", false, true},
      {"frakti.poweroff=1 frakti.reboot=1", true, true},
      {"frakti.poweroff=1 frakti.poweroff=0", false, false},  // last one wins
      {"frakti.poweroff=0 frakti.poweroff=1", true, false},
      {"frakti.poweroff", false, false},
      {"frakti.poweroff=", false, false},
      {"frakti.poweroff=10", false, false},
      {"frakti.poweroff=1x", false, false},
      {"frakti.poweroff= 1", false, false},
      {"xfrakti.poweroff=1", false, false},
      {"frakti.poweroffx=1", false, false},
      {"FRAKTI.POWEROFF=1", false, false},
      {"\tfrakti.poweroff=1\t\r\n", true, false},
      {"\"frakti.poweroff=1\"", true, false},       // quotes are dropped like the kernel
      {"a=\"x frakti.poweroff=1\"", false, false},  // inside a quoted value
      {"a=\"unterminated frakti.poweroff=1", false, false},
      {"\"\" \"\" frakti.reboot=1", false, true},
      {"-- frakti.poweroff=1", false, false},  // init's argv, not a parameter
      {"frakti.reboot=1 -- frakti.poweroff=1", false, true},
      {std::string("frakti.poweroff=1\0frakti.reboot=1", 33), false, false},
      {std::string(100000, ' ') + "frakti.reboot=1", false, true},
      {std::string(100000, '"'), false, false},
      {std::string(5000, '=') + " frakti.poweroff=1", true, false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.cmdline.substr(0, 80));
    BootOptions options = parse_boot_options(c.cmdline);
    CHECK(options.poweroff == c.poweroff);
    CHECK(options.reboot == c.reboot);
  }
}

TEST_CASE("parse_console_command accepts exactly poweroff and reboot", "[initrd]") {
  struct Case {
    std::string line;
    ConsoleCommand want;
  };
  const Case cases[] = {
      {"", ConsoleCommand::none},
      {"   \t\r", ConsoleCommand::none},
      {"poweroff", ConsoleCommand::poweroff},
      {"reboot", ConsoleCommand::reboot},
      {"  poweroff \r", ConsoleCommand::poweroff},
      {"reboot\r", ConsoleCommand::reboot},
      {"Poweroff", ConsoleCommand::unknown},
      {"poweroff now", ConsoleCommand::unknown},
      {"rebootx", ConsoleCommand::unknown},
      {"power off", ConsoleCommand::unknown},
      {std::string("reboot\0", 7), ConsoleCommand::unknown},
      {std::string(1000, 'x'), ConsoleCommand::unknown},
      {std::string(LineReader::kOverlong), ConsoleCommand::unknown},
  };
  for (const auto& c : cases) {
    CAPTURE(c.line.substr(0, 40));
    CHECK(parse_console_command(c.line) == c.want);
  }
}

TEST_CASE("LineReader splits lines across reads and drops overlong ones", "[initrd]") {
  LineReader reader;
  CHECK(reader.feed("pow").empty());
  auto lines = reader.feed("eroff\nreb");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "poweroff");
  lines = reader.feed("oot\n\n");
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "reboot");
  CHECK(lines[1].empty());

  SECTION("a line of exactly kMaxLine bytes is kept") {
    lines = reader.feed(std::string(LineReader::kMaxLine, 'a') + "\n");
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].size() == LineReader::kMaxLine);
  }
  SECTION("a longer line is dropped whole, across many reads, and the next line is intact") {
    for (int i = 0; i < 1000; ++i) CHECK(reader.feed(std::string(1000, 'b')).empty());
    lines = reader.feed("tail\nreboot\n");
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == LineReader::kOverlong);
    CHECK(parse_console_command(lines[0]) == ConsoleCommand::unknown);
    CHECK(lines[1] == "reboot");
  }
}
