// Needs root (CAP_NET_ADMIN and /dev/net/tun): runs in a private network namespace.
#include "vmm/virtio/net/tap.hpp"

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <cstring>

#include "tests/vmm/virtio/virtio_test_util.hpp"
#include "vmm/virtio/net/net_device.hpp"

using namespace frakti::vmm::virtio;
using namespace frakti::vmm::virtio::net;
using namespace frakti::vmm::virtio::test;

namespace {
void set_up(const char* name) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(s >= 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  REQUIRE(ioctl(s, SIOCGIFFLAGS, &ifr) == 0);
  ifr.ifr_flags |= IFF_UP;
  REQUIRE(ioctl(s, SIOCSIFFLAGS, &ifr) == 0);
  close(s);
}
}  // namespace

TEST_CASE("a real TAP carries guest tx frames", "[virtio][net][root]") {
  REQUIRE(unshare(CLONE_NEWNET) == 0);  // this test process only: the TAP vanishes with it
  auto tap = open_tap("frakti-vt0");
  REQUIRE(tap.valid());
  set_up("frakti-vt0");

  FakeRam ram;
  boost::asio::io_context loop;
  auto irq = std::make_shared<CountingIrq>();
  auto dev = std::make_shared<NetDevice>(std::make_unique<FdNetBackend>(std::move(tap)),
                                         std::array<uint8_t, 6>{2, 0, 0, 0, 0, 1}, 16);
  MmioTransport t(dev, ram.mem, irq, loop);
  MmioDriver drv(t);
  DriverRing rx(ram, 0x10000, 16), tx(ram, 0x20000, 16);
  REQUIRE(drv.negotiate(feature_bit(feature::kVersion1)));
  drv.setup_queue(0, rx);
  drv.setup_queue(1, tx);
  drv.add_status(status::kDriverOk);
  REQUIRE(t.active());

  // A broadcast Ethernet frame (ARP ethertype, zero payload) after a zero vnet header.
  uint8_t* f = ram.at(0x41000);
  std::memset(f, 0xff, 6);
  std::memcpy(f + 6, "\x02\x00\x00\x00\x00\x01", 6);
  f[12] = 0x08;
  f[13] = 0x06;
  tx.add_chain({{0x40000, kVnetHdrSize}, {0x41000, 60}});
  drv.notify(1);
  loop.poll();
  CHECK(tx.used_idx() == 1);
  CHECK(dev->dropped_frames() == 0);  // the kernel accepted the frame with our header
}
