#include "vmm/virtio/blk/blk_device.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <cstring>

#include "tests/vmm/virtio/virtio_test_util.hpp"

using namespace frakti::vmm::virtio;
using namespace frakti::vmm::virtio::blk;
using namespace frakti::vmm::virtio::test;

namespace {

/// A temporary file of `size` bytes, each byte = its offset / 512 (the sector number, mod 256).
struct TempDisk {
  explicit TempDisk(size_t size) {
    char tmpl[] = "/tmp/frakti-blk-test-XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    path = tmpl;
    std::vector<uint8_t> data(size);
    for (size_t i = 0; i < size; i++) data[i] = static_cast<uint8_t>(i / 512);
    REQUIRE(write(fd, data.data(), size) == static_cast<ssize_t>(size));
    close(fd);
  }
  ~TempDisk() { unlink(path.c_str()); }
  std::vector<uint8_t> read_back(off_t off, size_t n) {
    std::vector<uint8_t> out(n);
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(pread(fd, out.data(), n, off) == static_cast<ssize_t>(n));
    close(fd);
    return out;
  }
  std::string path;
};

constexpr uint64_t kHdr = 0x40000, kData = 0x50000, kStatus = 0x48000;

struct BlkRig {
  explicit BlkRig(BlkConfig cfg)
      : dev(std::make_shared<BlkDevice>(std::move(cfg))),
        irq(std::make_shared<CountingIrq>()),
        t(dev, ram.mem, irq, loop),
        drv(t),
        ring(ram, 0x10000, 64) {}

  bool bring_up() {
    if (!drv.negotiate(dev->device_features())) return false;
    drv.setup_queue(0, ring);
    drv.add_status(status::kDriverOk);
    loop.poll();
    loop.restart();
    return t.active();
  }

  /// Sends one request as the Linux driver lays it out; returns {status, used len}.
  std::pair<uint8_t, uint32_t> request(uint32_t type, uint64_t sector, uint32_t data_len,
                                       bool data_writable) {
    std::memcpy(ram.at(kHdr), &type, 4);
    std::memset(ram.at(kHdr + 4), 0, 4);
    std::memcpy(ram.at(kHdr + 8), &sector, 8);
    *ram.at(kStatus) = 0xff;
    if (data_len)
      ring.add_chain({{kHdr, 16}, {kData, data_len, data_writable}, {kStatus, 1, true}});
    else
      ring.add_chain({{kHdr, 16}, {kStatus, 1, true}});
    uint16_t before = ring.used_idx();
    drv.notify(0);
    loop.poll();
    loop.restart();
    REQUIRE(ring.used_idx() == static_cast<uint16_t>(before + 1));
    return {*ram.at(kStatus), ring.used_elem(before).second};
  }
  uint64_t config_capacity() {
    return drv.read32(mmio_reg::kConfig) | (uint64_t{drv.read32(mmio_reg::kConfig + 4)} << 32);
  }

  FakeRam ram{2 << 20};
  boost::asio::io_context loop;
  std::shared_ptr<BlkDevice> dev;
  std::shared_ptr<CountingIrq> irq;
  MmioTransport t;
  MmioDriver drv;
  DriverRing ring;
};

}  // namespace

TEST_CASE("blk round trip: write, read back, flush, id, errors", "[virtio][blk]") {
  TempDisk disk(64 * 512);
  BlkRig rig(BlkConfig{disk.path, false, "frakti-serial-1", 64});
  REQUIRE(rig.bring_up());
  CHECK(rig.config_capacity() == 64);
  CHECK_FALSE(rig.dev->device_features() & feature_bit(blk_feature::kRo));

  // Read sectors 3..4: the pattern says each byte is its sector number.
  auto [st, len] = rig.request(request_type::kIn, 3, 1024, true);
  CHECK(st == blk_status::kOk);
  CHECK(len == 1025);
  CHECK(rig.ram.at(kData)[0] == 3);
  CHECK(rig.ram.at(kData)[1023] == 4);
  CHECK(rig.irq->count >= 1);

  // Write sector 10, then read it back through the device and from the file.
  for (int i = 0; i < 512; i++) rig.ram.at(kData)[i] = static_cast<uint8_t>(0xa0 + i % 7);
  std::tie(st, len) = rig.request(request_type::kOut, 10, 512, false);
  CHECK(st == blk_status::kOk);
  CHECK(len == 1);
  auto back = disk.read_back(10 * 512, 512);
  CHECK(back[0] == 0xa0);
  CHECK(back[8] == 0xa1);
  std::memset(rig.ram.at(kData), 0, 512);
  std::tie(st, len) = rig.request(request_type::kIn, 10, 512, true);
  CHECK(st == blk_status::kOk);
  CHECK(rig.ram.at(kData)[8] == 0xa1);

  CHECK(rig.request(request_type::kFlush, 0, 0, false).first == blk_status::kOk);

  std::tie(st, len) = rig.request(request_type::kGetId, 0, 20, true);
  CHECK(st == blk_status::kOk);
  CHECK(len == 21);
  CHECK(std::string(reinterpret_cast<char*>(rig.ram.at(kData)), 15) == "frakti-serial-1");
  CHECK(rig.ram.at(kData)[15] == 0);

  // Out of range: past the end, straddling the end, and a wrapping sector number.
  CHECK(rig.request(request_type::kIn, 64, 512, true).first == blk_status::kIoErr);
  CHECK(rig.request(request_type::kOut, 63, 1024, false).first == blk_status::kIoErr);
  CHECK(rig.request(request_type::kIn, ~0ull, 512, true).first == blk_status::kIoErr);
  CHECK(rig.request(request_type::kIn, 63, 512, true).first == blk_status::kOk);
  // Unsupported and malformed requests.
  CHECK(rig.request(42, 0, 0, false).first == blk_status::kUnsupp);
  CHECK(rig.request(request_type::kIn, 0, 100, true).first == blk_status::kIoErr);
  CHECK(rig.request(request_type::kOut, 0, 512, true).first == blk_status::kIoErr);
  CHECK(rig.dev->failed_requests() == 6);
}

TEST_CASE("blk read-only slot offers F_RO and rejects writes", "[virtio][blk]") {
  TempDisk disk(16 * 512);
  BlkRig rig(BlkConfig{disk.path, true, "ro", 64});
  CHECK(rig.dev->device_features() & feature_bit(blk_feature::kRo));
  REQUIRE(rig.bring_up());
  std::memset(rig.ram.at(kData), 0x55, 512);
  CHECK(rig.request(request_type::kOut, 1, 512, false).first == blk_status::kIoErr);
  CHECK(disk.read_back(512, 1)[0] == 1);  // unchanged
  CHECK(rig.request(request_type::kIn, 1, 512, true).first == blk_status::kOk);
  CHECK(rig.request(request_type::kFlush, 0, 0, false).first == blk_status::kOk);
}

TEST_CASE("blk media swap changes capacity and serial and raises a config interrupt",
          "[virtio][blk]") {
  TempDisk small(8 * 512), big(32 * 512);
  BlkRig rig(BlkConfig{std::nullopt, true, "", 64});
  REQUIRE(rig.bring_up());
  CHECK(rig.config_capacity() == 0);
  CHECK(rig.request(request_type::kIn, 0, 512, true).first == blk_status::kIoErr);

  uint32_t gen = rig.drv.read32(mmio_reg::kConfigGeneration);
  int irqs = rig.irq->count;
  rig.dev->set_backing(small.path, true, "image-a");
  CHECK(rig.drv.read32(mmio_reg::kConfigGeneration) == gen + 1);
  CHECK(rig.irq->count == irqs + 1);
  CHECK(rig.drv.read32(mmio_reg::kInterruptStatus) & interrupt_bit::kConfigChange);
  rig.drv.write32(mmio_reg::kInterruptAck, interrupt_bit::kConfigChange);
  CHECK(rig.config_capacity() == 8);
  CHECK(rig.dev->capacity_sectors() == 8);
  CHECK(rig.request(request_type::kIn, 7, 512, true).first == blk_status::kOk);
  CHECK(rig.ram.at(kData)[0] == 7);
  rig.request(request_type::kGetId, 0, 20, true);
  CHECK(std::string(reinterpret_cast<char*>(rig.ram.at(kData))) == "image-a");

  // A file that cannot be opened leaves the old backing in place.
  CHECK_THROWS_AS(rig.dev->set_backing("/nonexistent/frakti.img", true, "x"), std::system_error);
  CHECK(rig.config_capacity() == 8);

  rig.dev->set_backing(big.path, true, "image-b");
  CHECK(rig.config_capacity() == 32);
  CHECK(rig.request(request_type::kIn, 31, 512, true).first == blk_status::kOk);

  rig.dev->set_backing(std::nullopt, true, "");
  CHECK(rig.config_capacity() == 0);
  CHECK(rig.drv.read32(mmio_reg::kConfigGeneration) == gen + 3);
}

TEST_CASE("blk read-write slot given a read-only file fails writes", "[virtio][blk]") {
  TempDisk disk(8 * 512);
  BlkRig rig(BlkConfig{std::nullopt, false, "", 64});
  REQUIRE(rig.bring_up());
  rig.dev->set_backing(disk.path, true, "ro-image");
  CHECK(rig.request(request_type::kOut, 0, 512, false).first == blk_status::kIoErr);
  CHECK(rig.request(request_type::kIn, 0, 512, true).first == blk_status::kOk);
}

TEST_CASE("blk with a missing backing file fails at creation", "[virtio][blk]") {
  CHECK_THROWS_AS(BlkDevice(BlkConfig{"/nonexistent/disk.img", false, "", 64}), std::system_error);
}
