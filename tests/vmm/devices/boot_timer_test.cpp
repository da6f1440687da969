// Boot timer and power-off port.
#include <catch2/catch.hpp>
#include <thread>

#include "common/guest_abi.hpp"
#include "vmm/devices/boot_timer.hpp"
#include "vmm/devices/quiet_ports.hpp"

using namespace frakti::vmm::devices;
namespace abi = frakti::guest_abi;

TEST_CASE("boot timer records the first magic write only", "[devices][boot_timer]") {
  auto start = BootTimer::Clock::now() - std::chrono::milliseconds(250);
  int calls = 0;
  std::chrono::microseconds seen{};
  BootTimer t(start, [&](std::chrono::microseconds us) {
    calls++;
    seen = us;
  });
  uint8_t other = abi::kBootTimerMagic + 1;
  t.write(0, std::span<const uint8_t>(&other, 1));
  REQUIRE_FALSE(t.boot_time());
  uint8_t magic = abi::kBootTimerMagic;
  t.write(0, std::span<const uint8_t>(&magic, 1));
  REQUIRE(t.boot_time());
  REQUIRE(*t.boot_time() >= std::chrono::milliseconds(250));
  REQUIRE(*t.boot_time() < std::chrono::seconds(60));
  REQUIRE(calls == 1);
  REQUIRE(seen == *t.boot_time());
  t.write(0, std::span<const uint8_t>(&magic, 1));
  REQUIRE(calls == 1);
}

TEST_CASE("power-off port reacts to its magic byte only", "[devices][power]") {
  int offs = 0;
  PowerOffPort p([&] { offs++; });
  uint8_t wrong = 0;
  p.write(0, std::span<const uint8_t>(&wrong, 1));
  REQUIRE(offs == 0);
  uint8_t magic = abi::kPowerOffMagic;
  p.write(0, std::span<const uint8_t>(&magic, 1));
  REQUIRE(offs == 1);
}

TEST_CASE("quiet ports read as all ones and leave the devices' ports free", "[devices][quiet]") {
  frakti::vmm::bus::Bus pio("pio");
  register_quiet_ports(pio);
  uint8_t b[2] = {};
  REQUIRE(pio.read(0x80, std::span<uint8_t>(b, 1)));
  REQUIRE(b[0] == 0xff);
  REQUIRE(pio.read(0x4f, std::span<uint8_t>(b, 1)));
  REQUIRE(pio.read(0x2f8, std::span<uint8_t>(b, 2)));
  REQUIRE(b[1] == 0xff);
  for (uint16_t port : {uint16_t{0x3f8}, uint16_t{0x60}, uint16_t{0x64}, abi::kBootTimerPort,
                        abi::kPowerOffPort, uint16_t{0x20}, uint16_t{0x40}})
    REQUIRE_FALSE(pio.read(port, std::span<uint8_t>(b, 1)));
}
