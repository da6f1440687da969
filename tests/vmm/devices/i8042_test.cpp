// i8042: the status/command/data handshake Linux uses, and the reset request.
#include <catch2/catch.hpp>

#include "vmm/bus/bus.hpp"
#include "vmm/devices/i8042.hpp"

using frakti::vmm::devices::I8042;

TEST_CASE("self test, config byte and keyboard bytes", "[devices][i8042]") {
  int resets = 0;
  I8042 kbd([&] { resets++; });
  REQUIRE((kbd.read_status() & 0x01) == 0);  // output buffer empty
  REQUIRE((kbd.read_status() & 0x04) != 0);  // system flag
  REQUIRE((kbd.read_status() & 0x10) != 0);  // not inhibited: no "Keylock active" warning
  kbd.write_command(0xaa);
  REQUIRE((kbd.read_status() & 0x09) == 0x09);  // output full, last write was a command
  REQUIRE(kbd.read_data() == 0x55);
  REQUIRE((kbd.read_status() & 0x01) == 0);

  kbd.write_command(0x20);
  uint8_t cfg = kbd.read_data();
  kbd.write_command(0x60);
  kbd.write_data(static_cast<uint8_t>(cfg & ~0x01));
  REQUIRE(kbd.config_byte() == (cfg & ~0x01));
  REQUIRE((kbd.read_status() & 0x01) == 0);  // config writes produce no output

  kbd.write_command(0xad);
  REQUIRE((kbd.config_byte() & 0x10) != 0);
  kbd.write_command(0xae);
  REQUIRE((kbd.config_byte() & 0x10) == 0);

  kbd.write_data(0xf4);  // a keyboard command: acknowledged
  REQUIRE(kbd.read_data() == 0xfa);
  REQUIRE(kbd.read_data() == 0xfa);  // empty buffer reads back the last byte
  REQUIRE(resets == 0);
}

TEST_CASE("0xFE on the command port requests a reset", "[devices][i8042]") {
  int resets = 0;
  I8042 kbd([&] { resets++; });
  frakti::vmm::bus::Bus pio("pio");
  pio.insert(I8042::kDataPort, 1, kbd.data_port());
  pio.insert(I8042::kCommandPort, 1, kbd.command_port());
  uint8_t status = 0;
  REQUIRE(pio.read(0x64, std::span<uint8_t>(&status, 1)));
  REQUIRE((status & 0x02) == 0);  // input buffer empty: the kernel's kb_wait() passes
  uint8_t cmd = 0xfe;
  REQUIRE(pio.write(0x64, std::span<const uint8_t>(&cmd, 1)));
  REQUIRE(resets == 1);
}

TEST_CASE("writing the output port with the reset line low requests a reset", "[devices][i8042]") {
  int resets = 0;
  I8042 kbd([&] { resets++; });
  kbd.write_command(0xd1);
  kbd.write_data(0x03);  // reset line high: nothing happens
  REQUIRE(resets == 0);
  kbd.write_command(0xd1);
  kbd.write_data(0x02);
  REQUIRE(resets == 1);
  kbd.write_command(0xd0);
  REQUIRE((kbd.read_data() & 1) == 1);
}

TEST_CASE("a flood of unanswered commands does not grow without bound", "[devices][i8042]") {
  I8042 kbd([] {});
  for (int i = 0; i < 100000; i++) kbd.write_command(0xaa);
  int n = 0;
  while ((kbd.read_status() & 1) && n < 1000) {
    kbd.read_data();
    n++;
  }
  REQUIRE(n <= 16);
}
