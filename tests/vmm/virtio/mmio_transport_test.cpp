#include "vmm/virtio/mmio_transport.hpp"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <cstring>
#include <random>

#include "tests/vmm/virtio/virtio_test_util.hpp"

using namespace frakti::vmm::virtio;
using namespace frakti::vmm::virtio::test;

namespace {

constexpr uint64_t kOfferedExtra = 1ull << 5;

/// Two queues; answers every chain with its writable size; config space is 8 bytes.
class EchoDevice : public VirtioDevice {
 public:
  uint32_t device_type() const override { return 42; }
  uint64_t device_features() const override {
    return feature_bit(feature::kVersion1) | kOfferedExtra;
  }
  std::vector<uint16_t> queue_max_sizes() const override { return {16, 8}; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override {
    for (size_t i = 0; i < data.size() && offset + i < sizeof config; i++)
      data[i] = config[offset + i];
  }
  void write_config(uint64_t offset, std::span<const uint8_t> data) override {
    for (size_t i = 0; i < data.size() && offset + i < sizeof config; i++)
      config[offset + i] = data[i];
  }
  void activate(const ActivateContext& ctx) override {
    if (fail_activate) throw std::runtime_error("no backend");
    activations++;
    mem = &ctx.memory;
    queues = ctx.queues;
    irq = ctx.interrupt;
    features = ctx.driver_features;
  }
  void reset() override {
    resets++;
    queues.clear();
  }
  void process_queue(uint16_t index) override {
    processed++;
    Queue& q = *queues.at(index);
    while (auto c = q.pop(*mem)) q.add_used(*mem, c->head, c->writable_size());
    if (q.should_notify(*mem)) irq->signal_used_buffer();
  }
  void change_config() { signal_config_change(); }

  uint8_t config[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  bool fail_activate = false;
  int activations = 0, resets = 0, processed = 0;
  uint64_t features = 0;
  const frakti::vmm::memory::GuestMemory* mem = nullptr;
  std::vector<Queue*> queues;
  std::shared_ptr<Interrupt> irq;
};

struct Rig {
  Rig()
      : dev(std::make_shared<EchoDevice>()),
        irq(std::make_shared<CountingIrq>()),
        t(dev, ram.mem, irq, loop),
        drv(t),
        r0(ram, 0x10000, 16),
        r1(ram, 0x20000, 8) {}
  bool bring_up(uint64_t features = feature_bit(feature::kVersion1)) {
    if (!drv.negotiate(features)) return false;
    drv.setup_queue(0, r0);
    drv.setup_queue(1, r1);
    drv.add_status(status::kDriverOk);
    return t.active();
  }
  FakeRam ram;
  boost::asio::io_context loop;
  std::shared_ptr<EchoDevice> dev;
  std::shared_ptr<CountingIrq> irq;
  MmioTransport t;
  MmioDriver drv;
  DriverRing r0, r1;
};

}  // namespace

TEST_CASE("mmio identification registers", "[virtio][mmio]") {
  Rig rig;
  CHECK(rig.drv.read32(mmio_reg::kMagicValue) == 0x74726976);
  CHECK(rig.drv.read32(mmio_reg::kVersion) == 2);
  CHECK(rig.drv.read32(mmio_reg::kDeviceId) == 42);
  CHECK(rig.drv.read32(mmio_reg::kVendorId) == 0x544b5246);  // "FRKT"
  CHECK(rig.drv.device_features() == (feature_bit(feature::kVersion1) | kOfferedExtra));
  rig.drv.write32(mmio_reg::kDeviceFeaturesSel, 7);
  CHECK(rig.drv.read32(mmio_reg::kDeviceFeatures) == 0);
  rig.drv.write32(mmio_reg::kQueueSel, 1);
  CHECK(rig.drv.read32(mmio_reg::kQueueNumMax) == 8);
  rig.drv.write32(mmio_reg::kQueueSel, 2);
  CHECK(rig.drv.read32(mmio_reg::kQueueNumMax) == 0);
  CHECK(rig.drv.read32(mmio_reg::kShmLenLow) == 0xffffffff);
  CHECK(rig.t.num_queues() == 2);
  CHECK(rig.t.queue_eventfd(0) >= 0);
}

TEST_CASE("mmio config space is passed through at 0x100 with any access size", "[virtio][mmio]") {
  Rig rig;
  uint8_t b[2] = {};
  rig.t.read(0x103, b);
  CHECK(b[0] == 4);
  CHECK(b[1] == 5);
  uint8_t w = 0x99;
  rig.t.write(0x100, std::span<const uint8_t>(&w, 1));
  CHECK(rig.dev->config[0] == 0x99);
  uint8_t q[8] = {};
  rig.t.read(0x106, q);
  CHECK(q[0] == 7);
  CHECK(q[2] == 0);  // past the end reads as zero
}

TEST_CASE("mmio ignores unaligned and wrongly sized register accesses", "[virtio][mmio]") {
  Rig rig;
  uint8_t b2[2] = {0xff, 0xff};
  rig.t.read(mmio_reg::kMagicValue, b2);
  CHECK(b2[0] == 0xff);  // untouched: not a 4-byte access
  uint8_t b4[4] = {};
  rig.t.read(mmio_reg::kMagicValue + 1, b4);
  CHECK(b4[0] == 0);
  uint8_t one = 1;
  rig.t.write(mmio_reg::kStatus, std::span<const uint8_t>(&one, 1));
  CHECK(rig.drv.read32(mmio_reg::kStatus) == 0);
}

TEST_CASE("mmio status state machine and feature negotiation", "[virtio][mmio]") {
  Rig rig;
  SECTION("FEATURES_OK needs VERSION_1") {
    CHECK_FALSE(rig.drv.negotiate(kOfferedExtra));
  }
  SECTION("FEATURES_OK refuses features that were not offered") {
    CHECK_FALSE(rig.drv.negotiate(feature_bit(feature::kVersion1) | (1ull << 6)));
  }
  SECTION("offered features are accepted") {
    CHECK(rig.drv.negotiate(feature_bit(feature::kVersion1) | kOfferedExtra));
  }
  SECTION("DRIVER before ACKNOWLEDGE is refused") {
    rig.drv.write32(mmio_reg::kStatus, status::kDriver);
    CHECK(rig.drv.read32(mmio_reg::kStatus) == 0);
  }
  SECTION("DRIVER_OK before FEATURES_OK does not activate") {
    rig.drv.add_status(status::kAcknowledge);
    rig.drv.add_status(status::kDriver);
    rig.drv.add_status(status::kDriverOk);
    CHECK(rig.drv.read32(mmio_reg::kStatus) == (status::kAcknowledge | status::kDriver));
    CHECK(rig.dev->activations == 0);
  }
  SECTION("driver features are frozen after FEATURES_OK") {
    REQUIRE(rig.drv.negotiate(feature_bit(feature::kVersion1)));
    rig.drv.write_features(feature_bit(feature::kVersion1) | kOfferedExtra);
    rig.drv.setup_queue(0, rig.r0);
    rig.drv.setup_queue(1, rig.r1);
    rig.drv.add_status(status::kDriverOk);
    CHECK(rig.dev->features == feature_bit(feature::kVersion1));
  }
  SECTION("clearing bits without a reset is ignored") {
    REQUIRE(rig.drv.negotiate(feature_bit(feature::kVersion1)));
    rig.drv.write32(mmio_reg::kStatus, status::kAcknowledge);
    CHECK(rig.drv.read32(mmio_reg::kStatus) & status::kFeaturesOk);
  }
  SECTION("FAILED is accepted at any time") {
    rig.drv.write32(mmio_reg::kStatus, status::kFailed);
    CHECK(rig.drv.read32(mmio_reg::kStatus) == status::kFailed);
  }
}

TEST_CASE("mmio activation, notification through the eventfd, interrupt and reset",
          "[virtio][mmio]") {
  Rig rig;
  REQUIRE(rig.bring_up(feature_bit(feature::kVersion1) | kOfferedExtra));
  CHECK(rig.dev->activations == 1);
  CHECK(rig.dev->features == (feature_bit(feature::kVersion1) | kOfferedExtra));
  rig.loop.poll();  // activation kicks every queue once
  rig.loop.restart();
  int processed = rig.dev->processed;
  uint16_t head = rig.r0.add_chain({{0x40000, 4}, {0x41000, 100, true}});
  rig.drv.notify(0);
  rig.loop.poll();
  rig.loop.restart();
  CHECK(rig.dev->processed == processed + 1);
  REQUIRE(rig.r0.used_idx() == 1);
  CHECK(rig.r0.used_elem(0) == std::pair<uint32_t, uint32_t>{head, 100});
  CHECK(rig.irq->count == 1);
  CHECK(rig.drv.read32(mmio_reg::kInterruptStatus) == interrupt_bit::kUsedBuffer);
  rig.drv.write32(mmio_reg::kInterruptAck, interrupt_bit::kUsedBuffer);
  CHECK(rig.drv.read32(mmio_reg::kInterruptStatus) == 0);

  // Queue registers are frozen while live.
  rig.drv.write32(mmio_reg::kQueueSel, 0);
  rig.drv.write32(mmio_reg::kQueueNum, 4);
  rig.drv.write32(mmio_reg::kQueueReady, 0);
  CHECK(rig.drv.read32(mmio_reg::kQueueReady) == 1);
  rig.drv.notify(9);  // no such queue: ignored

  rig.drv.write32(mmio_reg::kStatus, 0);
  CHECK(rig.dev->resets == 1);
  CHECK_FALSE(rig.t.active());
  CHECK(rig.drv.read32(mmio_reg::kStatus) == 0);
  CHECK(rig.drv.read32(mmio_reg::kQueueReady) == 0);
  // A notification after reset reaches nobody.
  rig.drv.notify(0);
  processed = rig.dev->processed;
  rig.loop.poll();
  rig.loop.restart();
  CHECK(rig.dev->processed == processed);
  // And the device can come up again.
  CHECK(rig.bring_up());
  CHECK(rig.dev->activations == 2);
}

TEST_CASE("mmio refuses to enable a misconfigured queue", "[virtio][mmio]") {
  Rig rig;
  REQUIRE(rig.drv.negotiate(feature_bit(feature::kVersion1)));
  rig.drv.write32(mmio_reg::kQueueSel, 0);
  rig.drv.write32(mmio_reg::kQueueNum, 12);  // not a power of two
  rig.drv.write32(mmio_reg::kQueueReady, 1);
  CHECK(rig.drv.read32(mmio_reg::kQueueReady) == 0);
  rig.drv.write32(mmio_reg::kQueueNum, 32);  // above the maximum
  rig.drv.write32(mmio_reg::kQueueReady, 1);
  CHECK(rig.drv.read32(mmio_reg::kQueueReady) == 0);
  rig.drv.write32(mmio_reg::kQueueNum, 16);
  rig.drv.write32(mmio_reg::kQueueDescLow, 0xfff00000);  // outside guest RAM
  rig.drv.write32(mmio_reg::kQueueReady, 1);
  CHECK(rig.drv.read32(mmio_reg::kQueueReady) == 0);
  // DRIVER_OK with queues not ready: no activation, DEVICE_NEEDS_RESET shown.
  rig.drv.add_status(status::kDriverOk);
  CHECK(rig.dev->activations == 0);
  CHECK(rig.drv.read32(mmio_reg::kStatus) & status::kDeviceNeedsReset);
  rig.drv.write32(mmio_reg::kStatus, 0);
  CHECK(rig.drv.read32(mmio_reg::kStatus) == 0);
}

TEST_CASE("mmio: activation failure and broken queues report DEVICE_NEEDS_RESET",
          "[virtio][mmio]") {
  Rig rig;
  SECTION("activation throws") {
    rig.dev->fail_activate = true;
    CHECK_FALSE(rig.bring_up());
    CHECK(rig.drv.read32(mmio_reg::kStatus) & status::kDeviceNeedsReset);
    CHECK(rig.drv.read32(mmio_reg::kInterruptStatus) & interrupt_bit::kConfigChange);
  }
  SECTION("avail idx jump") {
    REQUIRE(rig.bring_up());
    rig.r0.set_avail_idx(100);
    rig.drv.notify(0);
    rig.loop.poll();
    CHECK(rig.drv.read32(mmio_reg::kStatus) & status::kDeviceNeedsReset);
    CHECK(rig.drv.read32(mmio_reg::kInterruptStatus) & interrupt_bit::kConfigChange);
    CHECK(rig.irq->count >= 1);
    rig.drv.write32(mmio_reg::kStatus, 0);
    CHECK((rig.drv.read32(mmio_reg::kStatus) & status::kDeviceNeedsReset) == 0);
  }
}

TEST_CASE("mmio config change bumps the generation and interrupts only when live",
          "[virtio][mmio]") {
  Rig rig;
  uint32_t gen = rig.drv.read32(mmio_reg::kConfigGeneration);
  rig.dev->change_config();
  CHECK(rig.drv.read32(mmio_reg::kConfigGeneration) == gen + 1);
  CHECK(rig.irq->count == 0);
  REQUIRE(rig.bring_up());
  rig.dev->change_config();
  CHECK(rig.drv.read32(mmio_reg::kConfigGeneration) == gen + 2);
  CHECK(rig.irq->count == 1);
  CHECK(rig.drv.read32(mmio_reg::kInterruptStatus) == interrupt_bit::kConfigChange);
}

TEST_CASE("mmio survives random register sequences", "[virtio][mmio]") {
  Rig rig;
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 200000; i++) {
    uint64_t off = rng() % 0x140;
    uint32_t v = static_cast<uint32_t>(rng());
    if (rng() % 4 == 0) v &= 0xff;  // small values hit status bits and queue indices
    if (rng() % 2) {
      uint8_t b[4];
      std::memcpy(b, &v, 4);
      rig.t.write(off, std::span<const uint8_t>(b, 1 + rng() % 4));
    } else {
      uint8_t b[8] = {};
      rig.t.read(off, std::span<uint8_t>(b, 1 + rng() % 8));
    }
    if (i % 1000 == 0) {
      rig.loop.poll();
      rig.loop.restart();
    }
  }
  rig.drv.write32(mmio_reg::kStatus, 0);
  CHECK(rig.bring_up());
}

TEST_CASE("kernel command-line fragment", "[virtio][mmio]") {
  CHECK(kernel_cmdline_fragment(0xd0000000, 0x1000, 5) == "virtio_mmio.device=4K@0xd0000000:5");
  CHECK(kernel_cmdline_fragment(0xd0001000, 0x200, 6) == "virtio_mmio.device=512@0xd0001000:6");
}
