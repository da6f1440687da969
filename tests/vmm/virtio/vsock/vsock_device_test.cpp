#include "vmm/virtio/vsock/vsock_device.hpp"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "tests/vmm/virtio/virtio_test_util.hpp"
#include "tests/vmm/virtio/vsock/fake_guest.hpp"
#include "tests/vmm/virtio/vsock/unix_test_util.hpp"
#include "vmm/virtio/mmio_transport.hpp"

using namespace frakti::vmm::virtio;
using namespace frakti::vmm::virtio::vsock;
using namespace frakti::vmm::virtio::vsock::test;
using frakti::common::Fd;
using frakti::vmm::virtio::test::CountingIrq;
using frakti::vmm::virtio::test::D;
using frakti::vmm::virtio::test::DriverRing;
using frakti::vmm::virtio::test::FakeRam;
using frakti::vmm::virtio::test::MmioDriver;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kCid = 7;
constexpr uint64_t kRxBufs = 0x100000;  // rx buffers: 44-byte header + 4 KiB data each
constexpr uint64_t kTxBufs = 0x200000;  // tx slots
constexpr uint32_t kRxData = 4096;
constexpr int kRxCount = 32;
constexpr int kTxSlots = 64;

// The guest side of the device test: a driver on three rings (as Linux's virtio_vsock does:
// rx buffers of header + data descriptors, tx packets as header + payload descriptors) with a
// FakeGuest behind it for the socket logic.
struct DeviceRig {
  DeviceRig()
      : ram(4 << 20),
        irq(std::make_shared<CountingIrq>()),
        dev(std::make_shared<VsockDevice>(loop, VsockConfig{kCid, dir.path + "/v.sock", {}})),
        t(dev, ram.mem, irq, loop),
        drv(t),
        rx(ram, 0x10000, 256),
        tx(ram, 0x20000, 256),
        ev(ram, 0x30000, 16),
        guest(kCid) {}

  bool bring_up() {
    if (!drv.negotiate(feature_bit(feature::kVersion1))) return false;
    drv.setup_queue(kRxQueue, rx);
    drv.setup_queue(kTxQueue, tx);
    drv.setup_queue(kEventQueue, ev);
    drv.add_status(status::kDriverOk);
    for (int i = 0; i < kRxCount; ++i) post_rx(i);
    drv.notify(kRxQueue);
    return t.active();
  }
  void post_rx(int i) {
    uint64_t base = kRxBufs + uint64_t(i) * 0x2000;
    uint16_t head = rx.add_chain({D{base, 44, true}, D{base + 64, kRxData, true}});
    rx_heads[head] = i;
  }
  // Moves used rx buffers into the guest and guest packets onto tx; true if anything moved.
  bool pump() {
    bool moved = false;
    loop.poll();
    while (rx_seen != rx.used_idx()) {
      auto [id, len] = rx.used_elem(rx_seen++);
      int i = rx_heads.at(static_cast<uint16_t>(id));
      uint64_t base = kRxBufs + uint64_t(i) * 0x2000;
      REQUIRE(len >= kHeaderSize);
      std::vector<uint8_t> bytes(len);
      std::memcpy(bytes.data(), ram.at(base), kHeaderSize);
      std::memcpy(bytes.data() + kHeaderSize, ram.at(base + 64), len - kHeaderSize);
      guest.receive(bytes);
      post_rx(i);
      moved = true;
      rx_refilled = true;
    }
    if (rx_refilled) {
      drv.notify(kRxQueue);
      rx_refilled = false;
    }
    bool sent = false;
    while (tx_seen != tx.used_idx()) tx.used_elem(tx_seen++), tx_out--;
    while (tx_out < kTxSlots) {
      auto pkt = guest.next_tx();
      if (!pkt) break;
      uint64_t slot = kTxBufs + uint64_t(tx_next++ % kTxSlots) * 0x1100;
      std::memcpy(ram.at(slot), pkt->data(), pkt->size());
      if (pkt->size() > kHeaderSize) {
        tx.add_chain({D{slot, 44}, D{slot + 44, static_cast<uint32_t>(pkt->size() - 44)}});
      } else {
        tx.add_chain({D{slot, 44}});
      }
      tx_out++;
      sent = true;
    }
    if (sent) drv.notify(kTxQueue);
    loop.poll();
    return moved || sent;
  }
  template <typename Pred>
  bool run_until(Pred done, std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > end) return false;
      if (!pump()) loop.run_one_for(1ms);
    }
    return true;
  }

  TempDir dir;
  FakeRam ram;
  boost::asio::io_context loop;
  std::shared_ptr<CountingIrq> irq;
  std::shared_ptr<VsockDevice> dev;
  MmioTransport t;
  MmioDriver drv;
  DriverRing rx, tx, ev;
  FakeGuest guest;
  std::map<uint16_t, int> rx_heads;
  uint16_t rx_seen = 0, tx_seen = 0;
  int tx_out = 0;
  uint64_t tx_next = 0;
  bool rx_refilled = false;
};

}  // namespace

TEST_CASE("vsock device: identity, config space and features", "[vsock]") {
  DeviceRig rig;
  CHECK(rig.drv.read32(mmio_reg::kDeviceId) == 19);
  CHECK(rig.drv.read32(mmio_reg::kConfig) == kCid);
  CHECK(rig.drv.read32(mmio_reg::kConfig + 4) == 0);
  CHECK((rig.drv.device_features() & feature_bit(feature::kVersion1)) != 0);
  rig.drv.write32(mmio_reg::kQueueSel, kEventQueue);
  CHECK(rig.drv.read32(mmio_reg::kQueueNumMax) == VsockDevice::kEventQueueSize);
  CHECK_THROWS_AS(VsockDevice(rig.loop, VsockConfig{2, rig.dir.path + "/x.sock", {}}),
                  std::invalid_argument);
}

TEST_CASE("vsock device: host connection echoed through the rings", "[vsock]") {
  DeviceRig rig;
  REQUIRE(rig.bring_up());
  rig.guest.listen(1024, /*echo=*/true);

  std::atomic<bool> done{false};
  std::string ok, error;
  uint64_t sent_sum = 0, got_sum = 0;
  size_t got = 0;
  const size_t total = 256 * 1024;
  std::thread client([&] {
    try {
      Fd c = connect_unix(rig.dev->muxer().path());
      send_str(c.get(), "CONNECT 1024\n");
      ok = read_line(c.get());
      std::vector<uint8_t> out(total);
      std::mt19937 rng(7);
      for (auto& b : out) b = static_cast<uint8_t>(rng());
      sent_sum = fnv1a(out.data(), out.size());
      std::thread w([&] { frakti::common::write_all(c.get(), out.data(), out.size(), "c"); });
      std::vector<uint8_t> in(total);
      while (got < total) {
        ssize_t n = ::read(c.get(), in.data() + got, total - got);
        if (n <= 0) break;
        got += static_cast<size_t>(n);
      }
      w.join();
      got_sum = fnv1a(in.data(), got);
      // Keep the socket until the driver resets: then the VMM must close it.
      char b;
      ssize_t n = ::read(c.get(), &b, 1);
      if (n != 0) error = "expected EOF after driver reset";
    } catch (const std::exception& e) {
      error = e.what();
    }
    done = true;
  });
  bool echoed = rig.run_until([&] { return got_sum != 0 || done.load(); }, 60s);
  // The driver resets the device (module unload, reboot): host sockets are closed.
  rig.drv.write32(mmio_reg::kStatus, 0);
  bool closed = rig.run_until([&] { return done.load(); }, 10s);
  client.join();
  REQUIRE(echoed);
  REQUIRE(closed);
  CHECK(error.empty());
  CHECK(ok.rfind("OK ", 0) == 0);
  CHECK(got == total);
  CHECK(got_sum == sent_sum);
  CHECK(rig.irq->count > 0);
  CHECK(rig.dev->muxer().connection_count() == 0);
}

TEST_CASE("vsock device: malformed chains are returned, not fatal", "[vsock]") {
  DeviceRig rig;
  REQUIRE(rig.bring_up());
  // A 10-byte tx packet and a packet claiming more payload than its chain holds.
  uint64_t slot = kTxBufs;
  std::memset(rig.ram.at(slot), 0xee, 10);
  rig.tx.add_chain({D{slot, 10}});
  Header h;
  h.src_cid = kCid;
  h.dst_cid = kHostCid;
  h.src_port = 5;
  h.dst_port = 6;
  h.type = kTypeStream;
  h.op = static_cast<uint16_t>(Op::rw);
  h.len = 4000;
  encode_header(h, std::span<uint8_t, kHeaderSize>(rig.ram.at(slot + 0x100), kHeaderSize));
  rig.tx.add_chain({D{slot + 0x100, 44}, D{slot + 0x200, 100}});
  rig.drv.notify(kTxQueue);
  rig.loop.poll();
  CHECK(rig.tx.used_idx() == 2);
  CHECK(rig.dev->muxer().stats().rejected_packets == 2);
  // The truncated RW was addressable: the guest gets an RST in its first rx buffer.
  REQUIRE(rig.rx.used_idx() == 1);
  auto [id, len] = rig.rx.used_elem(0);
  CHECK(len == kHeaderSize);
  Header rst = decode_header(std::span<const uint8_t, kHeaderSize>(
      rig.ram.at(kRxBufs + uint64_t(rig.rx_heads.at(static_cast<uint16_t>(id))) * 0x2000),
      kHeaderSize));
  CHECK(rst == rst_reply(h));
}

TEST_CASE("vsock device: an rx buffer too small for a packet is returned empty", "[vsock]") {
  DeviceRig rig;
  REQUIRE(rig.drv.negotiate(feature_bit(feature::kVersion1)));
  rig.drv.setup_queue(kRxQueue, rig.rx);
  rig.drv.setup_queue(kTxQueue, rig.tx);
  rig.drv.setup_queue(kEventQueue, rig.ev);
  rig.drv.add_status(status::kDriverOk);
  // Something for the guest: an RST for a stray packet.
  Header h;
  h.src_cid = kCid;
  h.dst_cid = kHostCid;
  h.type = kTypeStream;
  h.op = static_cast<uint16_t>(Op::credit_update);
  encode_header(h, std::span<uint8_t, kHeaderSize>(rig.ram.at(kTxBufs), kHeaderSize));
  rig.tx.add_chain({D{kTxBufs, 44}});
  rig.rx.add_chain({D{kRxBufs, 44, true}});  // header only: rejected
  rig.rx.add_chain({D{kRxBufs + 0x100, 200, true}});
  rig.drv.notify(kTxQueue);
  rig.loop.poll();
  REQUIRE(rig.rx.used_idx() == 2);
  CHECK(rig.rx.used_elem(0).second == 0);
  CHECK(rig.rx.used_elem(1).second == kHeaderSize);
  CHECK(rig.dev->short_rx_buffers() == 1);
}
