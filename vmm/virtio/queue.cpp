#include "vmm/virtio/queue.hpp"

#include <atomic>
#include <stdexcept>

#include "common/log.hpp"
#include "vmm/virtio/spec.hpp"

namespace frakti::vmm::virtio {
namespace {

// struct virtq_desc, little-endian like the host (x86-64 only).
struct Desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(Desc) == ring::kDescSize);

struct UsedElem {
  uint32_t id;
  uint32_t len;
};
static_assert(sizeof(UsedElem) == ring::kUsedElemSize);

constexpr bool is_pow2(uint32_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

// Ring sizes, including the trailing used_event / avail_event word (present with EVENT_IDX;
// always reserved so that turning EVENT_IDX on never moves the ring out of memory).
uint64_t avail_bytes(uint16_t n) {
  return 6 + 2ull * n;
}
uint64_t used_bytes(uint16_t n) {
  return 6 + ring::kUsedElemSize * n;
}

common::log::RateLimiter g_chain_log(10, std::chrono::seconds(5));

}  // namespace

enum class Queue::Walk { ok, bad_index, loop, bad_address, too_long, bad_order, bad_indirect };

namespace {
const char* walk_name(int w) {
  static const char* names[] = {"ok",
                                "descriptor index out of range",
                                "descriptor loop",
                                "buffer outside guest memory",
                                "chain too long",
                                "readable descriptor after a writable one",
                                "bad indirect descriptor"};
  return names[w];
}
}  // namespace

Queue::Queue(uint16_t max_size) : max_size_(max_size), size_(max_size) {
  if (!is_pow2(max_size) || max_size > ring::kMaxQueueSize)
    throw std::invalid_argument("virtqueue max size must be a power of two <= 32768");
}

void Queue::set_features(uint64_t driver_features) {
  indirect_ = driver_features & feature_bit(feature::kRingIndirectDesc);
  event_idx_ = driver_features & feature_bit(feature::kRingEventIdx);
}

std::string Queue::validate(const memory::GuestMemory& mem) const {
  if (!is_pow2(size_) || size_ > max_size_)
    return fmt::format("queue size {} is not a power of two <= {}", size_, max_size_);
  if (desc_table_ % ring::kDescAlign || avail_ring_ % ring::kAvailAlign ||
      used_ring_ % ring::kUsedAlign)
    return fmt::format("misaligned rings (desc {:#x}, avail {:#x}, used {:#x})", desc_table_,
                       avail_ring_, used_ring_);
  if (!mem.translate(desc_table_, ring::kDescSize * size_))
    return fmt::format("descriptor table {:#x} outside guest memory", desc_table_);
  if (!mem.translate(avail_ring_, avail_bytes(size_)))
    return fmt::format("available ring {:#x} outside guest memory", avail_ring_);
  if (!mem.translate(used_ring_, used_bytes(size_)))
    return fmt::format("used ring {:#x} outside guest memory", used_ring_);
  return {};
}

void Queue::reset() {
  size_ = max_size_;
  desc_table_ = avail_ring_ = used_ring_ = 0;
  ready_ = indirect_ = event_idx_ = false;
  next_avail_ = next_used_ = signalled_used_ = 0;
  used_since_notify_ = false;
  broken_ = false;
  malformed_ = 0;
}

void Queue::mark_broken(const char* why, uint64_t detail) {
  if (broken_) return;
  broken_ = true;
  uint64_t dropped = 0;
  if (g_chain_log.allow(&dropped))
    common::log::warn("virtio", "virtqueue broken by the guest: {} ({}); device needs reset", why,
                      detail);
  if (on_broken_) on_broken_();
}

std::optional<uint16_t> Queue::read_avail_idx(const memory::GuestMemory& mem) const {
  auto idx = mem.read_obj<uint16_t>(avail_ring_ + 2);
  // Pairs with the driver's write barrier before it publishes idx: ring entries and
  // descriptors read after this see what the driver wrote before the idx.
  std::atomic_thread_fence(std::memory_order_acquire);
  return idx;
}

bool Queue::has_available(const memory::GuestMemory& mem) const {
  if (broken_ || !ready_) return false;
  auto idx = read_avail_idx(mem);
  return idx && *idx != next_avail_;
}

std::optional<DescriptorChain> Queue::pop(const memory::GuestMemory& mem) {
  while (!broken_ && ready_) {
    auto idx = read_avail_idx(mem);
    if (!idx) {
      mark_broken("available ring unreadable", avail_ring_);
      return std::nullopt;
    }
    if (*idx == next_avail_ && event_idx_) {
      // Ask for a notification on the next buffer, then look again: a buffer added before
      // the driver saw our avail_event would otherwise be missed until the next kick.
      mem.write_obj<uint16_t>(used_ring_ + 4 + ring::kUsedElemSize * size_, next_avail_);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      idx = read_avail_idx(mem);
      if (!idx) return std::nullopt;
    }
    uint16_t pending = static_cast<uint16_t>(*idx - next_avail_);
    if (pending == 0) return std::nullopt;
    if (pending > size_) {
      mark_broken("available index ran ahead by more than the queue size", pending);
      return std::nullopt;
    }
    uint64_t slot_gpa = avail_ring_ + 4 + 2ull * (next_avail_ % size_);
    auto head = mem.read_obj<uint16_t>(slot_gpa);
    next_avail_++;
    DescriptorChain chain;
    Walk w = head ? walk_chain(mem, *head, &chain) : Walk::bad_index;
    if (w == Walk::ok) {
      chain.head = *head;
      return chain;
    }
    malformed_++;
    uint64_t dropped = 0;
    if (g_chain_log.allow(&dropped))
      common::log::warn("virtio", "malformed descriptor chain (head {}): {}; returned empty{}",
                        head.value_or(0xffff), walk_name(static_cast<int>(w)),
                        dropped ? fmt::format(" ({} similar messages suppressed)", dropped) : "");
    // A head the driver could not have meant cannot be returned: its id would be
    // meaningless to the driver. Anything else goes back with length 0.
    if (head && *head < size_) add_used(mem, *head, 0);
  }
  return std::nullopt;
}

void Queue::undo_pop() {
  next_avail_--;
}

Queue::Walk Queue::walk_chain(const memory::GuestMemory& mem, uint16_t head,
                              DescriptorChain* out) const {
  if (head >= size_) return Walk::bad_index;
  uint64_t table = desc_table_;
  uint32_t table_len = size_;
  bool in_indirect = false;
  bool seen_writable = false;
  uint64_t total = 0;
  uint32_t count = 0;
  uint16_t index = head;
  for (;;) {
    // A well-formed chain visits each descriptor of its table at most once.
    if (++count > table_len) return Walk::loop;
    auto d = mem.read_obj<Desc>(table + ring::kDescSize * index);
    if (!d) return Walk::bad_address;
    if (d->flags & ring::kDescFIndirect) {
      // Only as the single head descriptor of a chain, never nested, never chained on.
      if (!indirect_ || in_indirect || count != 1 || (d->flags & ring::kDescFNext))
        return Walk::bad_indirect;
      if (d->len == 0 || d->len % ring::kDescSize || d->len / ring::kDescSize > size_)
        return Walk::bad_indirect;
      if (!mem.translate(d->addr, d->len)) return Walk::bad_address;
      table = d->addr;
      table_len = d->len / ring::kDescSize;
      in_indirect = true;
      index = 0;
      count = 0;
      continue;
    }
    total += d->len;
    if (total > kMaxChainBytes) return Walk::too_long;
    auto buf = mem.span(d->addr, d->len);
    if (!buf) return Walk::bad_address;
    if (d->flags & ring::kDescFWrite) {
      seen_writable = true;
      if (d->len) out->writable.push_back(*buf);
    } else {
      if (seen_writable) return Walk::bad_order;
      if (d->len) out->readable.push_back(*buf);
    }
    if (!(d->flags & ring::kDescFNext)) return Walk::ok;
    if (d->next >= table_len) return Walk::bad_index;
    index = d->next;
  }
}

void Queue::add_used(const memory::GuestMemory& mem, uint16_t head, uint32_t len) {
  if (broken_ || !ready_) return;
  uint64_t elem = used_ring_ + 4 + ring::kUsedElemSize * (next_used_ % size_);
  if (!mem.write_obj(elem, UsedElem{head, len})) {
    mark_broken("used ring unwritable", used_ring_);
    return;
  }
  next_used_++;
  // The element must be visible before the index that publishes it.
  std::atomic_thread_fence(std::memory_order_release);
  mem.write_obj<uint16_t>(used_ring_ + 2, next_used_);
  used_since_notify_ = true;
}

bool Queue::should_notify(const memory::GuestMemory& mem) {
  if (broken_ || !ready_ || !used_since_notify_) return false;
  used_since_notify_ = false;
  // Our used idx store must be visible before we read the driver's suppression state, or
  // both sides can decide the other one will act.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (event_idx_) {
    auto used_event = mem.read_obj<uint16_t>(avail_ring_ + 4 + 2ull * size_);
    uint16_t old_idx = signalled_used_;
    signalled_used_ = next_used_;
    if (!used_event) return true;
    return static_cast<uint16_t>(next_used_ - *used_event - 1) <
           static_cast<uint16_t>(next_used_ - old_idx);
  }
  auto flags = mem.read_obj<uint16_t>(avail_ring_);
  return !flags || !(*flags & ring::kAvailFNoInterrupt);
}

}  // namespace frakti::vmm::virtio
