#include "vmm/virtio/net/net_device.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <cstring>

#include "tests/vmm/virtio/virtio_test_util.hpp"
#include "vmm/virtio/net/tap.hpp"

using namespace frakti::vmm::virtio;
using namespace frakti::vmm::virtio::net;
using namespace frakti::vmm::virtio::test;
using frakti::common::Fd;

namespace {

constexpr std::array<uint8_t, 6> kMac = {0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc};

struct NetRig {
  NetRig() : irq(std::make_shared<CountingIrq>()), rx(ram, 0x10000, 16), tx(ram, 0x20000, 16) {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    peer.reset(sv[1]);
    device_fd = sv[0];
    dev = std::make_shared<NetDevice>(std::make_unique<FdNetBackend>(Fd(sv[0])), kMac, 16);
    t.emplace(dev, ram.mem, irq, loop);
    drv.emplace(*t);
  }
  ~NetRig() { t.reset(); }
  bool bring_up() {
    if (!drv->negotiate(feature_bit(feature::kVersion1) | feature_bit(net_feature::kMac)))
      return false;
    drv->setup_queue(NetDevice::kRxQueue, rx);
    drv->setup_queue(NetDevice::kTxQueue, tx);
    drv->add_status(status::kDriverOk);
    run();
    return t->active();
  }
  /// Runs the loop until idle; poll() returning at all shows the device is not spinning.
  void run() {
    loop.poll();
    loop.restart();
  }
  /// The host side sends one frame: a 12-byte header then payload bytes of `fill`.
  void host_send(size_t payload, uint8_t fill) {
    std::vector<uint8_t> f(kVnetHdrSize + payload, fill);
    std::memset(f.data(), 0, kVnetHdrSize);
    REQUIRE(send(peer.get(), f.data(), f.size(), 0) == static_cast<ssize_t>(f.size()));
  }
  /// Frames still waiting on the device's side of the socketpair.
  bool device_side_pending() {
    uint8_t b;
    return recv(device_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0;
  }

  FakeRam ram;
  boost::asio::io_context loop;
  std::shared_ptr<CountingIrq> irq;
  Fd peer;
  int device_fd = -1;
  std::shared_ptr<NetDevice> dev;
  std::optional<MmioTransport> t;
  std::optional<MmioDriver> drv;
  DriverRing rx, tx;
};

}  // namespace

TEST_CASE("net config space carries the MAC and link up", "[virtio][net]") {
  NetRig rig;
  CHECK(rig.dev->device_type() == 1);
  CHECK(rig.dev->device_features() & feature_bit(net_feature::kMac));
  uint8_t cfg[8] = {};
  rig.t->read(mmio_reg::kConfig, std::span<uint8_t>(cfg, 4));
  rig.t->read(mmio_reg::kConfig + 4, std::span<uint8_t>(cfg + 4, 4));
  CHECK(std::equal(kMac.begin(), kMac.end(), cfg));
  CHECK(cfg[6] == 1);
}

TEST_CASE("net tx writes each frame with a clean header", "[virtio][net]") {
  NetRig rig;
  REQUIRE(rig.bring_up());
  // The guest's header has GSO junk in it; the frame is 60 bytes of 0x5a.
  std::memset(rig.ram.at(0x40000), 0xff, kVnetHdrSize);
  std::memset(rig.ram.at(0x41000), 0x5a, 60);
  uint16_t head = rig.tx.add_chain({{0x40000, kVnetHdrSize}, {0x41000, 60}});
  rig.tx.add_chain({{0x42000, 4}});  // too short for a header: dropped
  rig.drv->notify(NetDevice::kTxQueue);
  rig.run();
  uint8_t buf[256];
  ssize_t n = recv(rig.peer.get(), buf, sizeof buf, MSG_DONTWAIT);
  REQUIRE(n == static_cast<ssize_t>(kVnetHdrSize + 60));
  for (size_t i = 0; i < kVnetHdrSize; i++) CHECK(buf[i] == 0);
  CHECK(buf[kVnetHdrSize] == 0x5a);
  CHECK(buf[n - 1] == 0x5a);
  CHECK(recv(rig.peer.get(), buf, sizeof buf, MSG_DONTWAIT) < 0);  // nothing for the runt
  REQUIRE(rig.tx.used_idx() == 2);
  CHECK(rig.tx.used_elem(0) == std::pair<uint32_t, uint32_t>{head, 0});
  CHECK(rig.dev->dropped_frames() == 1);
  CHECK(rig.irq->count >= 1);
}

TEST_CASE("net rx delivers frames into guest buffers with backpressure", "[virtio][net]") {
  NetRig rig;
  REQUIRE(rig.bring_up());
  // No rx buffers yet: the frames must stay with the backend.
  rig.host_send(64, 0x11);
  rig.host_send(100, 0x22);
  rig.host_send(30, 0x33);
  rig.run();
  CHECK(rig.device_side_pending());
  CHECK(rig.rx.used_idx() == 0);
  CHECK_FALSE(rig.dev->rx_watching());

  // One buffer: exactly one frame moves, the rest keep waiting, and the loop goes idle.
  std::memset(rig.ram.at(0x50000), 0xee, 2048);
  uint16_t head = rig.rx.add_chain({{0x50000, 2048, true}});
  rig.drv->notify(NetDevice::kRxQueue);
  int irqs = rig.irq->count;
  rig.run();
  REQUIRE(rig.rx.used_idx() == 1);
  CHECK(rig.rx.used_elem(0) == std::pair<uint32_t, uint32_t>{head, kVnetHdrSize + 64});
  CHECK(rig.ram.at(0x50000)[10] == 1);  // num_buffers
  CHECK(rig.ram.at(0x50000)[11] == 0);
  CHECK(rig.ram.at(0x50000)[kVnetHdrSize] == 0x11);
  CHECK(rig.ram.at(0x50000)[kVnetHdrSize + 64] == 0xee);  // untouched after the frame
  CHECK(rig.irq->count == irqs + 1);
  CHECK(rig.device_side_pending());

  // Two buffers (split in two descriptors each): both remaining frames arrive.
  rig.rx.add_chain({{0x60000, 8, true}, {0x60100, 1024, true}});
  rig.rx.add_chain({{0x61000, 8, true}, {0x61100, 1024, true}});
  rig.drv->notify(NetDevice::kRxQueue);
  rig.run();
  REQUIRE(rig.rx.used_idx() == 3);
  CHECK(rig.rx.used_elem(1).second == kVnetHdrSize + 100);
  CHECK(rig.rx.used_elem(2).second == kVnetHdrSize + 30);
  CHECK(rig.ram.at(0x60100)[4] == 0x22);  // header spans 8 + 4 bytes, frame starts at 4
  CHECK(rig.ram.at(0x61100)[4] == 0x33);
  CHECK_FALSE(rig.device_side_pending());

  // Buffers but no frames: the device watches the backend and delivers on arrival.
  rig.rx.add_chain({{0x62000, 2048, true}});
  rig.drv->notify(NetDevice::kRxQueue);
  rig.run();
  CHECK(rig.dev->rx_watching());
  CHECK(rig.rx.used_idx() == 3);
  rig.host_send(50, 0x44);
  rig.run();
  REQUIRE(rig.rx.used_idx() == 4);
  CHECK(rig.ram.at(0x62000)[kVnetHdrSize] == 0x44);
}

TEST_CASE("net rx: buffers too small for a header are returned empty", "[virtio][net]") {
  NetRig rig;
  REQUIRE(rig.bring_up());
  rig.host_send(20, 0x55);
  uint16_t bad = rig.rx.add_chain({{0x50000, 4, true}});
  rig.rx.add_chain({{0x51000, 2048, true}});
  rig.drv->notify(NetDevice::kRxQueue);
  rig.run();
  REQUIRE(rig.rx.used_idx() == 2);
  CHECK(rig.rx.used_elem(0) == std::pair<uint32_t, uint32_t>{bad, 0});
  CHECK(rig.rx.used_elem(1).second == kVnetHdrSize + 20);
  CHECK(rig.dev->dropped_frames() == 1);
}

TEST_CASE("net: reset stops rx and a new activation resumes it", "[virtio][net]") {
  NetRig rig;
  REQUIRE(rig.bring_up());
  rig.rx.add_chain({{0x50000, 2048, true}});
  rig.drv->notify(NetDevice::kRxQueue);
  rig.run();
  CHECK(rig.dev->rx_watching());
  rig.drv->write32(mmio_reg::kStatus, 0);
  rig.host_send(20, 0x66);
  rig.run();  // the watch fires, sees the reset, and stops
  CHECK(rig.rx.used_idx() == 0);
  CHECK(rig.device_side_pending());
  CHECK_FALSE(rig.dev->rx_watching());

  FakeRam& ram = rig.ram;
  std::memset(ram.at(0x10000), 0, 0x20000);  // fresh rings, as a rebooted driver would have
  DriverRing rx2(ram, 0x10000, 16), tx2(ram, 0x20000, 16);
  REQUIRE(rig.drv->negotiate(feature_bit(feature::kVersion1)));
  rig.drv->setup_queue(NetDevice::kRxQueue, rx2);
  rig.drv->setup_queue(NetDevice::kTxQueue, tx2);
  rx2.add_chain({{0x50000, 2048, true}});
  rig.drv->add_status(status::kDriverOk);
  rig.run();
  REQUIRE(rx2.used_idx() == 1);
  CHECK(ram.at(0x50000)[kVnetHdrSize] == 0x66);
}

TEST_CASE("open_tap rejects bad names before touching the system", "[virtio][net]") {
  CHECK_THROWS_AS(open_tap(""), std::system_error);
  CHECK_THROWS_AS(open_tap("a-name-that-is-far-too-long"), std::system_error);
}
