// libFuzzer target: arbitrary bytes as guest memory and ring state, served by the virtqueue
// and the virtio-blk device (request parser and executor) over a small in-memory disk.
//
// Input: [queue size exponent u8][flags u8] then guest RAM contents. Guest RAM is two regions:
// 64 KiB at gpa 0 (avail ring at 0, descriptor table at 0x210, used ring at 0x1210, so short
// inputs already reach the rings; buffers anywhere) and 4 KiB at gpa 0x20000, so chains that
// straddle regions or point between them are exercised. AddressSanitizer checks that nothing
// is touched outside the two host buffers; the asserts check the queue's own invariants.

#include <sys/mman.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "common/log.hpp"
#include "vmm/virtio/blk/blk_device.hpp"
#include "vmm/virtio/queue.hpp"
#include "vmm/virtio/spec.hpp"

namespace vv = frakti::vmm::virtio;
namespace mem = frakti::vmm::memory;

namespace {

constexpr uint64_t kLowSize = 64 * 1024, kHighGpa = 0x20000, kHighSize = 4096;
constexpr uint64_t kAvail = 0, kDesc = 0x210, kUsed = 0x1210;

#define FUZZ_ASSERT(c)                                                        \
  do {                                                                        \
    if (!(c)) {                                                               \
      std::fprintf(stderr, "invariant failed: %s (line %d)\n", #c, __LINE__); \
      std::abort();                                                           \
    }                                                                         \
  } while (0)

/// A 64 KiB disk in a memfd, opened through /proc like any backing file.
std::shared_ptr<vv::blk::BlkDevice> make_device() {
  int fd = memfd_create("fuzz-disk", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, 128 * 512) != 0) std::abort();
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  // fd stays open for the process lifetime: the device reopens it by path.
  return std::make_shared<vv::blk::BlkDevice>(vv::blk::BlkConfig{path, false, "fuzz", 256});
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  frakti::common::log::set_level(frakti::common::log::Level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto device = make_device();
  static boost::asio::io_context loop;
  if (size < 2) return 0;
  const uint16_t qsize = static_cast<uint16_t>(1u << (data[0] % 9));  // 1..256
  uint64_t features = vv::feature_bit(vv::feature::kVersion1);
  if (data[1] & 1) features |= vv::feature_bit(vv::feature::kRingIndirectDesc);
  if (data[1] & 2) features |= vv::feature_bit(vv::feature::kRingEventIdx);
  const bool use_undo = data[1] & 4;
  data += 2;
  size -= 2;

  // Exactly-sized heap buffers so ASan flags any access past a region.
  std::vector<uint8_t> low(kLowSize), high(kHighSize);
  size_t n = std::min<size_t>(size, kLowSize);
  std::memcpy(low.data(), data, n);
  if (size > n) std::memcpy(high.data(), data + n, std::min<size_t>(size - n, kHighSize));
  auto guest = mem::GuestMemory::from_buffers(
      {mem::Region{0, kLowSize, low.data()}, mem::Region{kHighGpa, kHighSize, high.data()}});

  vv::Queue q(256);
  q.set_size(qsize);
  q.set_desc_table(kDesc);
  q.set_avail_ring(kAvail);
  q.set_used_ring(kUsed);
  FUZZ_ASSERT(q.validate(guest).empty());
  q.set_features(features);
  q.set_ready(true);
  int broken_calls = 0;
  q.set_broken_handler([&] { broken_calls++; });

  // Raw queue first: every chain the queue hands out must lie inside guest RAM.
  vv::Queue raw(256);
  raw.set_size(qsize);
  raw.set_desc_table(kDesc);
  raw.set_avail_ring(kAvail);
  raw.set_used_ring(kUsed);
  raw.set_features(features);
  raw.set_ready(true);
  std::vector<uint8_t> low_copy = low, high_copy = high;  // restore after the raw pass
  int popped = 0;
  while (auto c = raw.pop(guest)) {
    FUZZ_ASSERT(++popped <= qsize);
    FUZZ_ASSERT(c->head < qsize);
    uint64_t total = 0;
    for (auto* list : {&c->readable, &c->writable})
      for (auto& s : *list) {
        total += s.size();
        bool in_low = s.data() >= low.data() && s.data() + s.size() <= low.data() + low.size();
        bool in_high = s.data() >= high.data() && s.data() + s.size() <= high.data() + high.size();
        FUZZ_ASSERT(in_low || in_high);
      }
    FUZZ_ASSERT(total <= vv::Queue::kMaxChainBytes);
    if (use_undo && popped == 1) {
      raw.undo_pop();
      auto again = raw.pop(guest);
      FUZZ_ASSERT(again && again->head == c->head);
    }
    raw.add_used(guest, c->head, c->writable_size());
  }
  raw.should_notify(guest);
  low = low_copy;
  high = high_copy;

  // Then the blk device serves the same memory, as after DRIVER_OK and a notification.
  auto irq = std::make_shared<vv::Interrupt>(nullptr);
  irq->set_live(true);
  {
    std::lock_guard lock(device->mutex());
    device->activate(vv::ActivateContext{guest, {&q}, irq, loop, features});
    device->process_queue(0);
    device->reset();
  }
  FUZZ_ASSERT(broken_calls <= 1);
  FUZZ_ASSERT(q.broken() == (broken_calls == 1));
  return 0;
}
