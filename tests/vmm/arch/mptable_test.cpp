// MP table: checksums, layout and contents, parsed back independently.
#include <catch2/catch.hpp>
#include <cstring>

#include "vmm/arch/x86_64/layout.hpp"
#include "vmm/arch/x86_64/mptable.hpp"

using namespace frakti::vmm::arch::x86_64;

namespace {
uint8_t sum(const uint8_t* p, size_t n) {
  uint8_t s = 0;
  for (size_t i = 0; i < n; i++) s = static_cast<uint8_t>(s + p[i]);
  return s;
}
template <typename T>
T at(const std::vector<uint8_t>& b, size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof v);
  return v;
}
}  // namespace

TEST_CASE("MP table checksums and header for 1..32 vCPUs", "[arch][mptable]") {
  for (uint32_t cpus : {1u, 2u, 4u, 31u, 32u}) {
    auto t = build_mp_table(cpus, kMpTableAddr);
    REQUIRE(t.size() <= kMpTableMaxSize);
    REQUIRE(std::memcmp(t.data(), "_MP_", 4) == 0);
    REQUIRE(at<uint32_t>(t, 4) == kMpTableAddr + 16);
    REQUIRE(t[8] == 1);
    REQUIRE(t[9] == 4);
    REQUIRE(sum(t.data(), 16) == 0);
    REQUIRE(t[11] == 0);  // feature byte 1: config table present
    const size_t h = 16;
    REQUIRE(std::memcmp(t.data() + h, "PCMP", 4) == 0);
    uint16_t len = at<uint16_t>(t, h + 4);
    REQUIRE(h + len == t.size());
    REQUIRE(sum(t.data() + h, len) == 0);
    REQUIRE(at<uint16_t>(t, h + 34) == cpus + 1 + 1 + kIoapicPins + 2);
    REQUIRE(at<uint32_t>(t, h + 36) == kLapicAddr);
  }
}

TEST_CASE("MP table entries: CPUs, ISA bus, IOAPIC, IRQ routes, LINTs", "[arch][mptable]") {
  const uint32_t cpus = 4;
  auto t = build_mp_table(cpus, kMpTableAddr);
  size_t off = 16 + 44;
  for (uint32_t i = 0; i < cpus; i++) {
    REQUIRE(t[off] == 0);
    REQUIRE(t[off + 1] == i);                        // APIC id
    REQUIRE((t[off + 3] & 1) == 1);                  // enabled
    REQUIRE(((t[off + 3] & 2) != 0) == (i == 0));    // only vCPU 0 is the BSP
    off += 20;
  }
  REQUIRE(t[off] == 1);
  REQUIRE(std::memcmp(t.data() + off + 2, "ISA   ", 6) == 0);
  uint8_t bus = t[off + 1];
  off += 8;
  REQUIRE(t[off] == 2);
  uint8_t ioapic = t[off + 1];
  REQUIRE(ioapic == mp_ioapic_id(cpus));
  REQUIRE(ioapic >= cpus);  // distinct from every LAPIC id
  REQUIRE((t[off + 3] & 1) == 1);
  REQUIRE(at<uint32_t>(t, off + 4) == kIoapicAddr);
  off += 8;
  for (uint32_t pin = 0; pin < kIoapicPins; pin++) {
    REQUIRE(t[off] == 3);
    REQUIRE(t[off + 1] == 0);  // INT
    REQUIRE(t[off + 4] == bus);
    REQUIRE(t[off + 5] == pin);
    REQUIRE(t[off + 6] == ioapic);
    REQUIRE(t[off + 7] == pin);
    off += 8;
  }
  REQUIRE(t[off] == 4);
  REQUIRE(t[off + 1] == 3);  // ExtINT
  REQUIRE(t[off + 7] == 0);  // LINT0
  off += 8;
  REQUIRE(t[off] == 4);
  REQUIRE(t[off + 1] == 1);  // NMI
  REQUIRE(t[off + 7] == 1);  // LINT1
  REQUIRE(off + 8 == t.size());
}

TEST_CASE("MP table rejects vCPU counts outside 1..32", "[arch][mptable]") {
  REQUIRE_THROWS_AS(build_mp_table(0, kMpTableAddr), std::invalid_argument);
  REQUIRE_THROWS_AS(build_mp_table(kMaxVcpus + 1, kMpTableAddr), std::invalid_argument);
}

TEST_CASE("MP table is written where Linux scans for it", "[arch][mptable]") {
  auto mem = frakti::vmm::memory::GuestMemory::allocate({{0, kHighRamStart}});
  write_mp_table(mem, 2);
  auto sig = mem.read_obj<uint32_t>(kMpTableAddr);
  REQUIRE(sig);
  REQUIRE(std::memcmp(&*sig, "_MP_", 4) == 0);
  // Linux searches the last KiB of base memory (639 KiB) on 16-byte boundaries.
  REQUIRE(kMpTableAddr == 639 * 1024);
}
