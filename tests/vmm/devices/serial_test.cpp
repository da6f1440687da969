// 8250 UART register semantics as Linux's 8250 driver relies on them.
#include <catch2/catch.hpp>

#include "vmm/devices/serial.hpp"

using frakti::vmm::devices::Serial;

namespace {
struct CountingIrq : frakti::vmm::irq::IrqLine {
  int count = 0;
  void trigger() override { count++; }
};

struct Uart {
  CountingIrq irq;
  std::string out;
  Serial dev{irq, [this](std::span<const uint8_t> b) { out.append(b.begin(), b.end()); }};
  uint8_t rd(uint64_t off) {
    uint8_t b = 0;
    dev.read(off, std::span<uint8_t>(&b, 1));
    return b;
  }
  void wr(uint64_t off, uint8_t v) { dev.write(off, std::span<const uint8_t>(&v, 1)); }
};

constexpr uint64_t THR = 0, IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;
}  // namespace

TEST_CASE("registers read back what was written", "[devices][serial]") {
  Uart u;
  u.wr(IER, 0x0f);
  REQUIRE(u.rd(IER) == 0x0f);
  u.wr(IER, 0xff);
  REQUIRE(u.rd(IER) == 0x0f);  // upper bits are reserved
  u.wr(LCR, 0x1b);
  REQUIRE(u.rd(LCR) == 0x1b);
  u.wr(MCR, 0x0b);
  REQUIRE(u.rd(MCR) == 0x0b);
  u.wr(SCR, 0x5a);
  REQUIRE(u.rd(SCR) == 0x5a);
  REQUIRE((u.rd(LSR) & 0x60) == 0x60);  // transmitter always empty
}

TEST_CASE("divisor latch is separate from THR and IER", "[devices][serial]") {
  Uart u;
  u.wr(IER, 0x01);
  u.wr(LCR, 0x80);
  u.wr(THR, 0x01);
  u.wr(IER, 0x00);
  REQUIRE(u.rd(THR) == 0x01);
  REQUIRE(u.rd(IER) == 0x00);
  u.wr(LCR, 0x03);
  REQUIRE(u.rd(IER) == 0x01);
  REQUIRE(u.out.empty());  // a divisor write is not a character
}

TEST_CASE("transmit goes to the output and raises THR empty when enabled", "[devices][serial]") {
  Uart u;
  u.wr(THR, 'a');
  REQUIRE(u.out == "a");
  REQUIRE(u.irq.count == 0);
  REQUIRE(u.rd(IIR) == 0x01);  // nothing pending while disabled

  u.wr(IER, 0x02);  // enabling THRI with an empty transmitter raises it at once
  REQUIRE(u.irq.count == 1);
  REQUIRE(u.rd(IIR) == 0x02);
  REQUIRE(u.rd(IIR) == 0x01);  // reading IIR acknowledged it
  u.wr(THR, 'b');
  REQUIRE(u.irq.count == 2);
  REQUIRE(u.out == "ab");
  REQUIRE((u.rd(IIR) & 0x0f) == 0x02);
  u.wr(IER, 0x00);
  u.wr(THR, 'c');
  REQUIRE(u.irq.count == 2);
}

TEST_CASE("FIFO enable shows in IIR and FCR can clear the receive FIFO", "[devices][serial]") {
  Uart u;
  u.wr(IIR, 0x01);
  REQUIRE((u.rd(IIR) & 0xc0) == 0xc0);
  const uint8_t in[] = {'x', 'y'};
  u.dev.enqueue_input(in);
  REQUIRE((u.rd(LSR) & 1) == 1);
  u.wr(IIR, 0x03);
  REQUIRE((u.rd(LSR) & 1) == 0);
}

TEST_CASE("input sets data ready and raises the receive interrupt", "[devices][serial]") {
  Uart u;
  const uint8_t in[] = {'h', 'i'};
  REQUIRE(u.dev.enqueue_input(in) == 2);
  REQUIRE(u.irq.count == 0);  // receive interrupt not enabled yet
  REQUIRE((u.rd(LSR) & 1) == 1);
  u.wr(IER, 0x01);
  REQUIRE(u.irq.count == 1);  // enabling with data waiting raises it
  REQUIRE((u.rd(IIR) & 0x0f) == 0x04);
  REQUIRE(u.rd(THR) == 'h');
  REQUIRE(u.rd(THR) == 'i');
  REQUIRE((u.rd(LSR) & 1) == 0);
  REQUIRE(u.rd(IIR) == 0x01);
  REQUIRE(u.dev.enqueue_input(in) == 2);
  REQUIRE(u.irq.count == 2);
}

TEST_CASE("input beyond capacity is dropped and counted", "[devices][serial]") {
  Uart u;
  std::vector<uint8_t> big(Serial::kInputCapacity + 10, 'z');
  REQUIRE(u.dev.enqueue_input(big) == Serial::kInputCapacity);
  REQUIRE(u.dev.dropped_input() == 10);
  REQUIRE(u.dev.enqueue_input(big) == 0);
  REQUIRE(u.dev.dropped_input() == 10 + big.size());
}

TEST_CASE("loopback mode feeds THR to RBR and mirrors modem lines", "[devices][serial]") {
  Uart u;
  REQUIRE(u.rd(MSR) == 0xb0);
  u.wr(MCR, 0x10 | 0x0f);
  REQUIRE(u.rd(MSR) == 0xf0);
  u.wr(MCR, 0x10 | 0x01);  // DTR only -> DSR
  REQUIRE(u.rd(MSR) == 0x20);
  u.wr(THR, 'L');
  REQUIRE(u.out.empty());
  REQUIRE((u.rd(LSR) & 1) == 1);
  REQUIRE(u.rd(THR) == 'L');
}

TEST_CASE("accesses outside the eight registers are harmless", "[devices][serial]") {
  Uart u;
  u.wr(9, 0x55);
  REQUIRE(u.rd(9) == 0);
  uint8_t none = 0;
  u.dev.read(0, std::span<uint8_t>(&none, 0));
  u.dev.write(0, std::span<const uint8_t>());
  REQUIRE(u.out.empty());
}
