// Memory map, e820, zero page, initrd placement and command line.
#include <asm/bootparam.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "vmm/arch/x86_64/boot_params.hpp"
#include "vmm/arch/x86_64/layout.hpp"
#include "vmm/arch/x86_64/memory_map.hpp"

using namespace frakti::vmm::arch::x86_64;
using frakti::vmm::memory::GuestMemory;

namespace {
template <typename T>
T at(const std::vector<uint8_t>& page, size_t off) {
  T v;
  std::memcpy(&v, page.data() + off, sizeof v);
  return v;
}
}  // namespace

TEST_CASE("RAM below the MMIO hole, the rest above 4 GiB", "[arch]") {
  auto small = guest_ram_layout(256 * kMiB);
  REQUIRE(small.size() == 1);
  REQUIRE(small[0] == std::pair<uint64_t, uint64_t>{0, 256 * kMiB});
  auto big = guest_ram_layout(4 * kGiB);
  REQUIRE(big.size() == 2);
  REQUIRE(big[0] == std::pair<uint64_t, uint64_t>{0, kLowRamEnd});
  REQUIRE(big[1] == std::pair<uint64_t, uint64_t>{kHighRamBase, 4 * kGiB - kLowRamEnd});
  REQUIRE(low_ram_end(4 * kGiB) == kLowRamEnd);
  REQUIRE_THROWS_AS(guest_ram_layout(12 * kMiB), std::invalid_argument);
  REQUIRE_THROWS_AS(guest_ram_layout(64 * kMiB + 4096), std::invalid_argument);
}

TEST_CASE("the layout's fixed areas do not overlap and stay out of RAM's way", "[arch]") {
  REQUIRE(kGdtAddr + 4 * 8 <= kIdtAddr);
  REQUIRE(kIdtAddr + 8 <= kZeroPageAddr);
  REQUIRE(kZeroPageAddr + 4096 <= kBootStackPointer);
  REQUIRE(kBootStackPointer < kPml4Addr);
  REQUIRE(kPdAddr + kIdentityMappedGiB * 4096 <= kCmdlineAddr);
  REQUIRE(kCmdlineAddr + kCmdlineMax <= kMpTableAddr);
  REQUIRE(kMpTableAddr + kMpTableMaxSize <= kHighRamStart);
  REQUIRE(kVirtioMmioBase >= kLowRamEnd);
  REQUIRE(kVirtioMmioBase + kVirtioMaxDevices * kVirtioMmioSize <= kIoapicAddr);
  REQUIRE(kVirtioFirstGsi + kVirtioMaxDevices <= kIoapicPins);
  REQUIRE(kVirtioFirstGsi > kSerialGsi);
  REQUIRE(kKvmIdentityMapAddr + 4096 == kKvmTssAddr);
  REQUIRE(kKvmTssAddr + 3 * 4096 <= 0xfffff000ull);
}

TEST_CASE("e820 map leaves the MP table and legacy area out of RAM", "[arch]") {
  auto map = e820_map(guest_ram_layout(4 * kGiB));
  REQUIRE(map.size() == 3);
  REQUIRE(map[0] == E820Entry{0, kMpTableAddr, kE820Ram});
  REQUIRE(map[1] == E820Entry{kHighRamStart, kLowRamEnd - kHighRamStart, kE820Ram});
  REQUIRE(map[2] == E820Entry{kHighRamBase, 4 * kGiB - kLowRamEnd, kE820Ram});
}

TEST_CASE("zero page fields sit at the boot protocol's offsets", "[arch]") {
  BootParamsInput in;
  in.e820 = e820_map(guest_ram_layout(128 * kMiB));
  in.cmdline_addr = kCmdlineAddr;
  in.cmdline_size = 42;
  in.initrd_addr = 0x7000000;
  in.initrd_size = 0x123456;
  auto page = build_boot_params(in);
  REQUIRE(page.size() == 4096);
  // Offsets from Documentation/x86/boot.rst / zero-page.rst, checked independently of the
  // struct the implementation uses.
  REQUIRE(at<uint16_t>(page, 0x1fe) == 0xaa55);
  REQUIRE(at<uint32_t>(page, 0x202) == 0x53726448);
  REQUIRE(at<uint8_t>(page, 0x210) == 0xff);
  REQUIRE((at<uint8_t>(page, 0x211) & 1) == 1);
  REQUIRE(at<uint32_t>(page, 0x218) == 0x7000000);
  REQUIRE(at<uint32_t>(page, 0x21c) == 0x123456);
  REQUIRE(at<uint32_t>(page, 0x228) == kCmdlineAddr);
  REQUIRE(at<uint32_t>(page, 0x238) == 42);
  REQUIRE(at<uint32_t>(page, 0x0c0) == 0);  // ext_ramdisk_image
  REQUIRE(at<uint8_t>(page, 0x1e8) == 2);   // e820_entries
  REQUIRE(at<uint64_t>(page, 0x2d0) == 0);
  REQUIRE(at<uint64_t>(page, 0x2d0 + 8) == kMpTableAddr);
  REQUIRE(at<uint32_t>(page, 0x2d0 + 16) == 1);
  REQUIRE(at<uint64_t>(page, 0x2d0 + 20) == kHighRamStart);
  REQUIRE(at<uint64_t>(page, 0x2d0 + 28) == 128 * kMiB - kHighRamStart);
}

TEST_CASE("zero page splits 64-bit initrd addresses and rejects oversized e820 maps", "[arch]") {
  BootParamsInput in;
  in.initrd_addr = 0x1'2000'0000;
  in.initrd_size = 0x1000;
  auto page = build_boot_params(in);
  REQUIRE(at<uint32_t>(page, 0x218) == 0x2000'0000);
  REQUIRE(at<uint32_t>(page, 0x0c0) == 1);
  in.e820.assign(E820_MAX_ENTRIES_ZEROPAGE + 1, E820Entry{0, 4096, kE820Ram});
  REQUIRE_THROWS_AS(build_boot_params(in), std::invalid_argument);
}

TEST_CASE("initrd goes high, page-aligned, above the kernel", "[arch]") {
  uint64_t end = 256 * kMiB;
  uint64_t a = initrd_address(10'000, 32 * kMiB, end);
  REQUIRE(a % 4096 == 0);
  REQUIRE(a + 10'000 <= end);
  REQUIRE(end - a < 10'000 + 4096);
  REQUIRE_THROWS_AS(initrd_address(250 * kMiB, 32 * kMiB, end), std::invalid_argument);
  REQUIRE_THROWS_AS(initrd_address(end + 1, 0, end), std::invalid_argument);
  REQUIRE_THROWS_AS(initrd_address(0, 0, end), std::invalid_argument);
}

TEST_CASE("command line is written NUL-terminated and bounded", "[arch]") {
  auto mem = GuestMemory::allocate({{0, 1 * kMiB}});
  write_cmdline(mem, "console=ttyS0 quiet");
  std::vector<uint8_t> got(20);
  REQUIRE(mem.read(kCmdlineAddr, got));
  REQUIRE(std::string(got.begin(), got.end() - 1) == "console=ttyS0 quiet");
  REQUIRE(got.back() == 0);
  write_cmdline(mem, std::string(kCmdlineMax - 1, 'x'));
  REQUIRE_THROWS_AS(write_cmdline(mem, std::string(kCmdlineMax, 'x')), std::invalid_argument);
  REQUIRE_THROWS_AS(write_cmdline(mem, std::string("a\0b", 3)), std::invalid_argument);
}
