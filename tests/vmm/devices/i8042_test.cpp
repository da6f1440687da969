// i8042: the status/command/data handshake Linux uses, and the reset request.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "vmm/bus/bus.hpp"
#include "vmm/devices/i8042.hpp"
#include "vmm/irq/irq_line.hpp"

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
  REQUIRE(n == 32);  // the buffer's capacity
}

namespace {
struct CountingIrq : frakti::vmm::irq::IrqLine {
  int count = 0;
  void trigger() override { count++; }
};

std::vector<uint8_t> drain(I8042& kbd) {
  std::vector<uint8_t> out;
  while (kbd.read_status() & 0x01) out.push_back(kbd.read_data());
  return out;
}
}  // namespace

TEST_CASE("Ctrl-Alt-Del is typed in the scancode set the guest reads, one IRQ per byte",
          "[devices][i8042]") {
  CountingIrq irq;
  I8042 kbd([] {}, &irq);
  // Translation on (the power-on default): set 1 make and break codes.
  REQUIRE(kbd.send_ctrl_alt_del());
  REQUIRE(irq.count == 1);  // the first byte; each read raises the next one
  std::vector<uint8_t> got;
  while (kbd.read_status() & 0x01) {
    int before = irq.count;
    got.push_back(kbd.read_data());
    bool more = (kbd.read_status() & 0x01) != 0;
    REQUIRE(irq.count == before + (more ? 1 : 0));
  }
  REQUIRE(got == std::vector<uint8_t>{0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d});
  REQUIRE(irq.count == 8);

  // Translation off: set 2, with 0xF0 before each break code.
  kbd.write_command(0x60);
  kbd.write_data(0x05);
  REQUIRE(kbd.send_ctrl_alt_del());
  REQUIRE(drain(kbd) == std::vector<uint8_t>{0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0,
                                             0x11, 0xf0, 0x14});
}

TEST_CASE("no keys are typed while the guest has the keyboard or its interrupt off",
          "[devices][i8042]") {
  CountingIrq irq;
  I8042 kbd([] {}, &irq);
  kbd.write_command(0x60);
  kbd.write_data(0x44);  // keyboard interrupt off
  REQUIRE_FALSE(kbd.send_ctrl_alt_del());
  kbd.write_command(0x60);
  kbd.write_data(0x45);
  kbd.write_command(0xad);  // keyboard disabled
  REQUIRE_FALSE(kbd.send_ctrl_alt_del());
  REQUIRE(irq.count == 0);
  REQUIRE((kbd.read_status() & 0x01) == 0);
  kbd.write_command(0xae);
  REQUIRE(kbd.send_ctrl_alt_del());
  REQUIRE(irq.count == 1);
}

TEST_CASE("controller replies raise no IRQ; keyboard replies do", "[devices][i8042]") {
  CountingIrq irq;
  I8042 kbd([] {}, &irq);
  kbd.write_command(0xaa);
  kbd.write_command(0x20);
  REQUIRE(drain(kbd) == std::vector<uint8_t>{0x55, 0x45});
  REQUIRE(irq.count == 0);

  kbd.write_data(0xf2);  // get id: ACK, then an MF2 id (translated second byte)
  REQUIRE(drain(kbd) == std::vector<uint8_t>{0xfa, 0xab, 0x41});
  REQUIRE(irq.count == 3);
  kbd.write_data(0xff);  // reset: ACK, self-test passed
  REQUIRE(drain(kbd) == std::vector<uint8_t>{0xfa, 0xaa});
  kbd.write_data(0xed);  // set LEDs takes an argument; both bytes are acknowledged
  kbd.write_data(0x07);
  REQUIRE(drain(kbd) == std::vector<uint8_t>{0xfa, 0xfa});
  kbd.write_data(0xf0);  // scancode set 0 = "which set?"
  kbd.write_data(0x00);
  REQUIRE(drain(kbd) == std::vector<uint8_t>{0xfa, 0xfa, 0x02});
}
