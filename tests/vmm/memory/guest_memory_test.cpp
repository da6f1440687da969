#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "vmm/memory/guest_memory.hpp"

using frakti::vmm::memory::GuestMemory;
using frakti::vmm::memory::Region;

TEST_CASE("translate accepts ranges inside one region only", "[vmm][memory]") {
  std::vector<uint8_t> a(0x1000), b(0x1000);
  auto mem = GuestMemory::from_buffers({Region{0x0, 0x1000, a.data()}, Region{0x10000, 0x1000, b.data()}});
  REQUIRE(mem.translate(0x0, 0x1000) == a.data());
  REQUIRE(mem.translate(0x10ff0, 0x10) == b.data() + 0xff0);
  REQUIRE(mem.translate(0x1000, 0) == a.data() + 0x1000);
  REQUIRE_FALSE(mem.translate(0xff0, 0x20));               // runs off the end
  REQUIRE_FALSE(mem.translate(0x2000, 1));                 // hole
  REQUIRE_FALSE(mem.translate(0x10000, UINT64_MAX));       // huge length
  REQUIRE_FALSE(mem.translate(UINT64_MAX - 4, 8));         // wraps
  REQUIRE_FALSE(mem.translate(0x11000, 1));                // one past the end
}

TEST_CASE("read and write copy only valid ranges", "[vmm][memory]") {
  std::vector<uint8_t> a(0x1000);
  auto mem = GuestMemory::from_buffers({Region{0x1000, 0x1000, a.data()}});
  REQUIRE(mem.write_obj<uint32_t>(0x1ffc, 0xdeadbeef));
  REQUIRE(mem.read_obj<uint32_t>(0x1ffc) == 0xdeadbeefu);
  REQUIRE_FALSE(mem.write_obj<uint64_t>(0x1ffc, 1));
  REQUIRE_FALSE(mem.read_obj<uint64_t>(0x1ffc));
}

TEST_CASE("allocate maps zeroed page-aligned regions", "[vmm][memory]") {
  auto mem = GuestMemory::allocate({{0, 1 << 20}, {4ull << 30, 1 << 20}});
  REQUIRE(mem.total_size() == 2u << 20);
  REQUIRE(mem.read_obj<uint64_t>((4ull << 30) + 8) == 0u);
  REQUIRE_THROWS(GuestMemory::allocate({{0, 100}}));
  REQUIRE_THROWS(GuestMemory::allocate({{0, 1 << 20}, {0x80000, 1 << 20}}));
}
