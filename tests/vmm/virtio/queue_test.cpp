#include "vmm/virtio/queue.hpp"

#include <catch2/catch.hpp>
#include <cstring>

#include "tests/vmm/virtio/virtio_test_util.hpp"

using namespace frakti::vmm::virtio;
using namespace frakti::vmm::virtio::test;

namespace {
constexpr uint64_t kRingBase = 0x10000;
constexpr uint64_t kBuf = 0x40000;
constexpr uint64_t kIndirect = 0x30000;
constexpr uint16_t kSize = 16;
constexpr uint16_t NEXT = ring::kDescFNext, WRITE = ring::kDescFWrite,
                   INDIRECT = ring::kDescFIndirect;
const uint64_t kIndirectFeature = feature_bit(feature::kRingIndirectDesc);

void set_indirect(FakeRam& ram, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                  uint16_t next) {
  uint8_t* p = ram.at(kIndirect + 16ull * i);
  std::memcpy(p, &addr, 8);
  std::memcpy(p + 8, &len, 4);
  std::memcpy(p + 12, &flags, 2);
  std::memcpy(p + 14, &next, 2);
}
}  // namespace

TEST_CASE("queue pops a valid chain as readable then writable spans", "[virtio][queue]") {
  FakeRam ram;
  DriverRing r(ram, kRingBase, kSize);
  Queue q(256);
  r.configure(q);
  REQUIRE(q.validate(ram.mem).empty());
  std::memcpy(ram.at(kBuf), "hello", 5);
  uint16_t head = r.add_chain(
      {{kBuf, 5}, {kBuf + 0x100, 0}, {kBuf + 0x1000, 64, true}, {kBuf + 0x2000, 32, true}});
  REQUIRE(q.has_available(ram.mem));
  auto c = q.pop(ram.mem);
  REQUIRE(c);
  CHECK(c->head == head);
  REQUIRE(c->readable.size() == 1);  // the empty descriptor is left out
  CHECK(c->readable[0].data() == ram.at(kBuf));
  CHECK(c->readable_size() == 5);
  CHECK(c->writable.size() == 2);
  CHECK(c->writable_size() == 96);
  // Writes spill from one writable buffer into the next.
  std::vector<uint8_t> data(70, 0xaa);
  CHECK(c->write(60, data) == 36);
  CHECK(ram.at(kBuf + 0x1000)[59] == 0);
  CHECK(ram.at(kBuf + 0x1000)[60] == 0xaa);
  CHECK(ram.at(kBuf + 0x2000)[31] == 0xaa);
  uint8_t out[8] = {};
  CHECK(c->read(1, out) == 4);
  CHECK(std::memcmp(out, "ello", 4) == 0);
  auto iov = c->writable_iov(60, 10);
  REQUIRE(iov.size() == 2);
  CHECK(iov[0].iov_len == 4);
  CHECK(iov[1].iov_len == 6);

  CHECK_FALSE(q.pop(ram.mem));
  q.add_used(ram.mem, head, 96);
  CHECK(r.used_idx() == 1);
  CHECK(r.used_elem(0) == std::pair<uint32_t, uint32_t>{head, 96});
  CHECK(q.should_notify(ram.mem));
  CHECK_FALSE(q.should_notify(ram.mem));  // nothing new since
  CHECK(q.malformed_chains() == 0);
}

TEST_CASE("hostile descriptor chains are consumed with length 0 and counted", "[virtio][queue]") {
  struct Case {
    const char* name;
    uint64_t features;
    // Writes descriptors (and indirect tables); returns the head to publish.
    std::function<uint16_t(DriverRing&, FakeRam&)> build;
  };
  const uint32_t kRamEnd = 1 << 20;
  std::vector<Case> cases = {
      {"loop of two", 0,
       [](DriverRing& r, FakeRam&) {
         r.set_desc(0, kBuf, 8, NEXT, 1);
         r.set_desc(1, kBuf, 8, NEXT, 0);
         return 0;
       }},
      {"self loop", 0,
       [](DriverRing& r, FakeRam&) {
         r.set_desc(3, kBuf, 8, NEXT, 3);
         return 3;
       }},
      {"next index out of range", 0,
       [](DriverRing& r, FakeRam&) {
         r.set_desc(0, kBuf, 8, NEXT, kSize);
         return 0;
       }},
      {"buffer past the end of RAM", 0,
       [&](DriverRing& r, FakeRam&) {
         r.set_desc(0, kRamEnd - 4, 8, 0, 0);
         return 0;
       }},
      {"buffer wholly outside RAM", 0,
       [](DriverRing& r, FakeRam&) {
         r.set_desc(0, 0x7000'0000, 8, 0, 0);
         return 0;
       }},
      {"address overflow", 0,
       [](DriverRing& r, FakeRam&) {
         r.set_desc(0, ~0ull - 3, 0x100, 0, 0);
         return 0;
       }},
      {"huge length", 0,
       [](DriverRing& r, FakeRam&) {
         r.set_desc(0, 0, 0xffffffff, WRITE, 0);
         return 0;
       }},
      {"readable after writable", 0,
       [](DriverRing& r, FakeRam&) {
         r.set_desc(0, kBuf, 8, WRITE | NEXT, 1);
         r.set_desc(1, kBuf + 8, 8, 0, 0);
         return 0;
       }},
      {"indirect not negotiated", 0,
       [](DriverRing& r, FakeRam& ram) {
         set_indirect(ram, 0, kBuf, 8, 0, 0);
         r.set_desc(0, kIndirect, 16, INDIRECT, 0);
         return 0;
       }},
      {"indirect with NEXT", kIndirectFeature,
       [](DriverRing& r, FakeRam& ram) {
         set_indirect(ram, 0, kBuf, 8, 0, 0);
         r.set_desc(0, kIndirect, 16, INDIRECT | NEXT, 1);
         r.set_desc(1, kBuf, 8, 0, 0);
         return 0;
       }},
      {"indirect length not a multiple of 16", kIndirectFeature,
       [](DriverRing& r, FakeRam& ram) {
         set_indirect(ram, 0, kBuf, 8, 0, 0);
         r.set_desc(0, kIndirect, 24, INDIRECT, 0);
         return 0;
       }},
      {"indirect length 0", kIndirectFeature,
       [](DriverRing& r, FakeRam&) {
         r.set_desc(0, kIndirect, 0, INDIRECT, 0);
         return 0;
       }},
      {"indirect table longer than the queue", kIndirectFeature,
       [](DriverRing& r, FakeRam& ram) {
         set_indirect(ram, 0, kBuf, 8, 0, 0);
         r.set_desc(0, kIndirect, 16 * (kSize + 1), INDIRECT, 0);
         return 0;
       }},
      {"nested indirect", kIndirectFeature,
       [](DriverRing& r, FakeRam& ram) {
         set_indirect(ram, 0, kIndirect + 0x100, 16, INDIRECT, 0);
         r.set_desc(0, kIndirect, 16, INDIRECT, 0);
         return 0;
       }},
      {"indirect table outside RAM", kIndirectFeature,
       [](DriverRing& r, FakeRam&) {
         r.set_desc(0, kRamEnd - 16, 32, INDIRECT, 0);
         return 0;
       }},
      {"indirect after a direct descriptor", kIndirectFeature,
       [](DriverRing& r, FakeRam& ram) {
         set_indirect(ram, 0, kBuf, 8, 0, 0);
         r.set_desc(0, kBuf, 8, NEXT, 1);
         r.set_desc(1, kIndirect, 16, INDIRECT, 0);
         return 0;
       }},
      {"loop inside an indirect table", kIndirectFeature,
       [](DriverRing& r, FakeRam& ram) {
         set_indirect(ram, 0, kBuf, 8, NEXT, 1);
         set_indirect(ram, 1, kBuf, 8, NEXT, 0);
         r.set_desc(0, kIndirect, 32, INDIRECT, 0);
         return 0;
       }},
      {"indirect next past the table", kIndirectFeature,
       [](DriverRing& r, FakeRam& ram) {
         set_indirect(ram, 0, kBuf, 8, NEXT, 2);  // table has 2 entries
         r.set_desc(0, kIndirect, 32, INDIRECT, 0);
         return 0;
       }},
      {"indirect entry outside RAM", kIndirectFeature,
       [](DriverRing& r, FakeRam& ram) {
         set_indirect(ram, 0, 0x9000'0000, 8, 0, 0);
         r.set_desc(0, kIndirect, 16, INDIRECT, 0);
         return 0;
       }},
  };
  for (auto& c : cases) {
    SECTION(c.name) {
      FakeRam ram;
      DriverRing r(ram, kRingBase, kSize);
      Queue q(kSize);
      r.configure(q, c.features);
      uint16_t head = c.build(r, ram);
      r.publish(head);
      // A valid chain behind the hostile one is still served.
      r.set_desc(8, kBuf, 4, 0, 0);
      r.publish(8);
      auto chain = q.pop(ram.mem);
      REQUIRE(chain);
      CHECK(chain->head == 8);
      CHECK(q.malformed_chains() == 1);
      CHECK_FALSE(q.broken());
      REQUIRE(r.used_idx() == 1);
      CHECK(r.used_elem(0) == std::pair<uint32_t, uint32_t>{head, 0});
      CHECK(q.should_notify(ram.mem));
    }
  }
}

TEST_CASE("valid indirect chains are walked", "[virtio][queue]") {
  FakeRam ram;
  DriverRing r(ram, kRingBase, kSize);
  Queue q(kSize);
  r.configure(q, kIndirectFeature);
  set_indirect(ram, 0, kBuf, 16, NEXT, 2);  // out of order on purpose
  set_indirect(ram, 2, kBuf + 0x100, 512, NEXT | WRITE, 1);
  set_indirect(ram, 1, kBuf + 0x400, 1, WRITE, 0);
  r.set_desc(5, kIndirect, 48, INDIRECT | WRITE, 0);  // WRITE on the indirect one is ignored
  r.publish(5);
  auto c = q.pop(ram.mem);
  REQUIRE(c);
  CHECK(c->head == 5);
  CHECK(c->readable_size() == 16);
  CHECK(c->writable_size() == 513);
  CHECK(c->writable[1].data() == ram.at(kBuf + 0x400));
}

TEST_CASE("head index out of range is counted but not returned", "[virtio][queue]") {
  FakeRam ram;
  DriverRing r(ram, kRingBase, kSize);
  Queue q(kSize);
  r.configure(q);
  r.publish(kSize + 3);
  CHECK_FALSE(q.pop(ram.mem));
  CHECK(q.malformed_chains() == 1);
  CHECK(r.used_idx() == 0);
}

TEST_CASE("chains longer than the byte cap are malformed", "[virtio][queue]") {
  FakeRam ram(2 << 20);
  DriverRing r(ram, kRingBase, 128);
  Queue q(128);
  r.configure(q);
  // 65 descriptors of 1 MiB each: 65 MiB > 64 MiB.
  for (uint16_t i = 0; i < 65; i++) r.set_desc(i, 0x100000, 1 << 20, i < 64 ? NEXT : 0, i + 1);
  r.publish(0);
  CHECK_FALSE(q.pop(ram.mem));
  CHECK(q.malformed_chains() == 1);
  // 64 of them are exactly at the cap and fine.
  r.set_desc(63, 0x100000, 1 << 20, 0, 0);
  r.publish(0);
  auto c = q.pop(ram.mem);
  REQUIRE(c);
  CHECK(c->readable_size() == 64u << 20);
}

TEST_CASE("avail idx running ahead by more than the queue size breaks the queue",
          "[virtio][queue]") {
  FakeRam ram;
  DriverRing r(ram, kRingBase, kSize);
  Queue q(kSize);
  r.configure(q);
  int broken_calls = 0;
  q.set_broken_handler([&] { broken_calls++; });
  r.set_desc(0, kBuf, 8, 0, 0);
  r.set_avail_idx(kSize + 1);
  CHECK_FALSE(q.pop(ram.mem));
  CHECK(q.broken());
  CHECK(broken_calls == 1);
  CHECK_FALSE(q.pop(ram.mem));
  CHECK(broken_calls == 1);
  q.add_used(ram.mem, 0, 1);  // ignored while broken
  CHECK(r.used_idx() == 0);
  CHECK_FALSE(q.has_available(ram.mem));
  q.reset();
  CHECK_FALSE(q.broken());
  CHECK_FALSE(q.ready());
}

TEST_CASE("a full ring (idx ahead by exactly the size) is fine", "[virtio][queue]") {
  FakeRam ram;
  DriverRing r(ram, kRingBase, kSize);
  Queue q(kSize);
  r.configure(q);
  for (uint16_t i = 0; i < kSize; i++) {
    r.set_desc(i, kBuf + i, 1, 0, 0);
    r.publish(i);
  }
  int n = 0;
  while (auto c = q.pop(ram.mem)) {
    q.add_used(ram.mem, c->head, 0);
    n++;
  }
  CHECK(n == kSize);
  CHECK_FALSE(q.broken());
}

TEST_CASE("indices wrap around 65535", "[virtio][queue]") {
  FakeRam ram;
  DriverRing r(ram, kRingBase, kSize);
  Queue q(kSize);
  r.configure(q);
  r.set_desc(0, kBuf, 1, 0, 0);
  for (int i = 0; i < 70000; i++) {
    r.publish(0);
    auto c = q.pop(ram.mem);
    REQUIRE(c);
    q.add_used(ram.mem, c->head, 1);
  }
  CHECK(r.used_idx() == static_cast<uint16_t>(70000));
  CHECK(q.malformed_chains() == 0);
}

TEST_CASE("undo_pop gives the chain back", "[virtio][queue]") {
  FakeRam ram;
  DriverRing r(ram, kRingBase, kSize);
  Queue q(kSize);
  r.configure(q);
  uint16_t head = r.add_chain({{kBuf, 8, true}});
  auto c = q.pop(ram.mem);
  REQUIRE(c);
  q.undo_pop();
  auto again = q.pop(ram.mem);
  REQUIRE(again);
  CHECK(again->head == head);
}

TEST_CASE("NO_INTERRUPT suppresses notifications", "[virtio][queue]") {
  FakeRam ram;
  DriverRing r(ram, kRingBase, kSize);
  Queue q(kSize);
  r.configure(q);
  r.add_chain({{kBuf, 8, true}});
  q.add_used(ram.mem, q.pop(ram.mem)->head, 0);
  r.set_avail_flags(ring::kAvailFNoInterrupt);
  CHECK_FALSE(q.should_notify(ram.mem));
  r.set_avail_flags(0);
  r.add_chain({{kBuf, 8, true}});
  q.add_used(ram.mem, q.pop(ram.mem)->head, 0);
  CHECK(q.should_notify(ram.mem));
}

TEST_CASE("EVENT_IDX: used_event decides interrupts, avail_event is published", "[virtio][queue]") {
  FakeRam ram;
  DriverRing r(ram, kRingBase, kSize);
  Queue q(kSize);
  r.configure(q, feature_bit(feature::kRingEventIdx));
  // Empty pop asks the driver for a kick on the next buffer.
  CHECK_FALSE(q.pop(ram.mem));
  CHECK(r.avail_event() == 0);
  r.set_used_event(2);  // driver wants an interrupt once used idx passes 2
  for (int i = 0; i < 4; i++) r.add_chain({{kBuf, 8, true}});
  std::vector<bool> notify;
  while (auto c = q.pop(ram.mem)) {
    q.add_used(ram.mem, c->head, 8);
    notify.push_back(q.should_notify(ram.mem));
  }
  // used idx goes 1, 2, 3, 4: only the step from 2 to 3 crosses used_event.
  CHECK(notify == std::vector<bool>{false, false, true, false});
  CHECK(r.avail_event() == 4);
}

TEST_CASE("queue configuration is validated", "[virtio][queue]") {
  FakeRam ram;
  Queue q(256);
  auto cfg = [&](uint16_t size, uint64_t d, uint64_t a, uint64_t u) {
    q.set_size(size);
    q.set_desc_table(d);
    q.set_avail_ring(a);
    q.set_used_ring(u);
    return q.validate(ram.mem);
  };
  CHECK(cfg(256, 0x1000, 0x2000, 0x3000).empty());
  CHECK_FALSE(cfg(0, 0x1000, 0x2000, 0x3000).empty());
  CHECK_FALSE(cfg(100, 0x1000, 0x2000, 0x3000).empty());
  CHECK_FALSE(cfg(512, 0x1000, 0x2000, 0x3000).empty());
  CHECK_FALSE(cfg(256, 0x1008, 0x2000, 0x3000).empty());
  CHECK_FALSE(cfg(256, 0x1000, 0x2001, 0x3000).empty());
  CHECK_FALSE(cfg(256, 0x1000, 0x2000, 0x3002).empty());
  CHECK_FALSE(cfg(256, (1 << 20) - 0x800, 0x2000, 0x3000).empty());
  CHECK_FALSE(cfg(256, 0x1000, (1 << 20) - 2, 0x3000).empty());
  CHECK_FALSE(cfg(256, 0x1000, 0x2000, (1 << 20) - 0x100).empty());
  CHECK_FALSE(cfg(256, 0x1000, 0x2000, ~0ull - 3).empty());
  CHECK_THROWS(Queue(100));
  CHECK_THROWS(Queue(0));
}
