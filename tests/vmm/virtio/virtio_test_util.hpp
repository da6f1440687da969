#pragma once
// Test helpers that play the guest driver: a fake guest RAM, a split ring laid out in it the
// way a driver lays it out, and a register-level driver for MmioTransport.

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "vmm/irq/irq_line.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/virtio/mmio_transport.hpp"
#include "vmm/virtio/queue.hpp"
#include "vmm/virtio/spec.hpp"

namespace frakti::vmm::virtio::test {

/// Guest RAM at gpa 0 backed by a host vector (8-byte aligned).
struct FakeRam {
  explicit FakeRam(size_t size = 1 << 20)
      : words(size / 8),
        mem(memory::GuestMemory::from_buffers(
            {memory::Region{0, size, reinterpret_cast<uint8_t*>(words.data())}})) {}
  uint8_t* at(uint64_t gpa) { return reinterpret_cast<uint8_t*>(words.data()) + gpa; }
  std::vector<uint64_t> words;
  memory::GuestMemory mem;
};

/// Counts triggers instead of injecting an interrupt.
struct CountingIrq : irq::IrqLine {
  void trigger() override { count++; }
  int count = 0;
};

/// One descriptor as a test writes it.
struct D {
  uint64_t addr;
  uint32_t len;
  bool write = false;
};

/// A split ring in FakeRam, driven from the driver's side.
class DriverRing {
 public:
  /// Rings at base (desc), base+0x4000 (avail), base+0x8000 (used); buffers are the caller's.
  DriverRing(FakeRam& ram, uint64_t base, uint16_t size)
      : ram_(ram), desc(base), avail(base + 0x4000), used(base + 0x8000), size(size) {}

  void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    uint8_t* p = ram_.at(desc + 16ull * i);
    std::memcpy(p, &addr, 8);
    std::memcpy(p + 8, &len, 4);
    std::memcpy(p + 12, &flags, 2);
    std::memcpy(p + 14, &next, 2);
  }
  /// Writes a chain into descriptors starting at next_free_ and publishes it; returns the head.
  uint16_t add_chain(std::initializer_list<D> ds) {
    uint16_t head = next_free_;
    size_t k = 0;
    for (auto& d : ds) {
      uint16_t i = next_free_++ % size;
      bool last = ++k == ds.size();
      set_desc(i, d.addr, d.len, (d.write ? ring::kDescFWrite : 0) | (last ? 0 : ring::kDescFNext),
               static_cast<uint16_t>(next_free_ % size));
    }
    publish(head);
    return head;
  }
  /// Puts head into the next avail slot and bumps avail idx.
  void publish(uint16_t head) {
    put16(avail + 4 + 2ull * (avail_idx_ % size), head);
    avail_idx_++;
    put16(avail + 2, avail_idx_);
  }
  void set_avail_idx(uint16_t v) {
    avail_idx_ = v;
    put16(avail + 2, v);
  }
  void set_avail_flags(uint16_t f) { put16(avail, f); }
  void set_used_event(uint16_t v) { put16(avail + 4 + 2ull * size, v); }
  uint16_t avail_event() { return get16(used + 4 + 8ull * size); }
  uint16_t used_idx() { return get16(used + 2); }
  /// Used element i (ring slot i % size): {id, len}.
  std::pair<uint32_t, uint32_t> used_elem(uint16_t i) {
    uint32_t id, len;
    std::memcpy(&id, ram_.at(used + 4 + 8ull * (i % size)), 4);
    std::memcpy(&len, ram_.at(used + 8 + 8ull * (i % size)), 4);
    return {id, len};
  }
  /// Configures q as the transport would after the driver wrote these addresses.
  void configure(Queue& q, uint64_t features = 0) {
    q.set_size(size);
    q.set_desc_table(desc);
    q.set_avail_ring(avail);
    q.set_used_ring(used);
    q.set_features(features);
    q.set_ready(true);
  }

  FakeRam& ram_;
  const uint64_t desc, avail, used;
  const uint16_t size;

 private:
  void put16(uint64_t gpa, uint16_t v) { std::memcpy(ram_.at(gpa), &v, 2); }
  uint16_t get16(uint64_t gpa) {
    uint16_t v;
    std::memcpy(&v, ram_.at(gpa), 2);
    return v;
  }
  uint16_t next_free_ = 0;
  uint16_t avail_idx_ = 0;
};

/// Register-level access to a transport, as the Linux virtio_mmio driver does it.
struct MmioDriver {
  explicit MmioDriver(MmioTransport& t) : t(t) {}
  uint32_t read32(uint64_t off) {
    uint8_t b[4] = {};
    t.read(off, b);
    uint32_t v;
    std::memcpy(&v, b, 4);
    return v;
  }
  void write32(uint64_t off, uint32_t v) {
    uint8_t b[4];
    std::memcpy(b, &v, 4);
    t.write(off, b);
  }
  uint64_t device_features() {
    write32(mmio_reg::kDeviceFeaturesSel, 0);
    uint64_t lo = read32(mmio_reg::kDeviceFeatures);
    write32(mmio_reg::kDeviceFeaturesSel, 1);
    return lo | (uint64_t{read32(mmio_reg::kDeviceFeatures)} << 32);
  }
  void write_features(uint64_t f) {
    write32(mmio_reg::kDriverFeaturesSel, 0);
    write32(mmio_reg::kDriverFeatures, static_cast<uint32_t>(f));
    write32(mmio_reg::kDriverFeaturesSel, 1);
    write32(mmio_reg::kDriverFeatures, static_cast<uint32_t>(f >> 32));
  }
  void add_status(uint32_t bit) { write32(mmio_reg::kStatus, read32(mmio_reg::kStatus) | bit); }
  /// ACKNOWLEDGE, DRIVER, features, FEATURES_OK; true when the device kept FEATURES_OK.
  bool negotiate(uint64_t features) {
    write32(mmio_reg::kStatus, 0);
    add_status(status::kAcknowledge);
    add_status(status::kDriver);
    write_features(features);
    add_status(status::kFeaturesOk);
    return read32(mmio_reg::kStatus) & status::kFeaturesOk;
  }
  void setup_queue(uint16_t index, const DriverRing& r) {
    write32(mmio_reg::kQueueSel, index);
    write32(mmio_reg::kQueueNum, r.size);
    write32(mmio_reg::kQueueDescLow, static_cast<uint32_t>(r.desc));
    write32(mmio_reg::kQueueDescHigh, static_cast<uint32_t>(r.desc >> 32));
    write32(mmio_reg::kQueueDriverLow, static_cast<uint32_t>(r.avail));
    write32(mmio_reg::kQueueDriverHigh, static_cast<uint32_t>(r.avail >> 32));
    write32(mmio_reg::kQueueDeviceLow, static_cast<uint32_t>(r.used));
    write32(mmio_reg::kQueueDeviceHigh, static_cast<uint32_t>(r.used >> 32));
    write32(mmio_reg::kQueueReady, 1);
  }
  void notify(uint16_t index) { write32(mmio_reg::kQueueNotify, index); }
  MmioTransport& t;
};

}  // namespace frakti::vmm::virtio::test
