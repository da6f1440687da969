#include <catch2/catch.hpp>
#include <memory>

#include "vmm/bus/bus.hpp"

using namespace frakti::vmm::bus;

namespace {
struct Recorder : BusDevice {
  uint64_t last_offset = ~0ull;
  void read(uint64_t offset, std::span<uint8_t> data) override {
    last_offset = offset;
    for (auto& b : data) b = 0xab;
  }
  void write(uint64_t offset, std::span<const uint8_t>) override { last_offset = offset; }
};
}  // namespace

TEST_CASE("bus dispatches by range with relative offsets", "[vmm][bus]") {
  Bus bus("pio");
  auto dev = std::make_shared<Recorder>();
  bus.insert(0x3f8, 8, dev);
  uint8_t b[2] = {};
  REQUIRE(bus.read(0x3fd, std::span<uint8_t>(b, 1)));
  REQUIRE(dev->last_offset == 5);
  REQUIRE(b[0] == 0xab);
  REQUIRE_FALSE(bus.read(0x3ff, std::span<uint8_t>(b, 2)));  // straddles the end
  REQUIRE_FALSE(bus.write(0x3f7, std::span<const uint8_t>(b, 1)));
}

TEST_CASE("bus rejects overlapping and empty ranges", "[vmm][bus]") {
  Bus bus("mmio");
  bus.insert(0x1000, 0x200, std::make_shared<Recorder>());
  REQUIRE_THROWS(bus.insert(0x1100, 0x10, std::make_shared<Recorder>()));
  REQUIRE_THROWS(bus.insert(0xff0, 0x20, std::make_shared<Recorder>()));
  REQUIRE_THROWS(bus.insert(0x5000, 0, std::make_shared<Recorder>()));
  bus.insert(0x1200, 0x200, std::make_shared<Recorder>());
}
