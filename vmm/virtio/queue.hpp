#pragma once
// Queue: one split virtqueue (virtio 1.2 section 2.7) over GuestMemory.
//
// Two sides touch a queue:
//   - the transport configures it (size, ring addresses, ready) on vCPU threads, before the
//     device is activated and after it is reset;
//   - the device pops chains and adds used elements on the event-loop thread while it is
//     active.
// The transport's device lock (VirtioDevice::mutex()) keeps those phases apart, so Queue has no
// lock of its own.
//
// Everything the guest wrote is data: pop() validates each chain completely (indices, loops,
// addresses, lengths, direction order, indirect tables) before a device sees it. A malformed
// chain is consumed here (returned to the guest with used length 0), counted and logged
// (rate-limited); the device never sees it. A queue the guest has broken beyond a single chain
// (the available index ran ahead by more than the queue size) stops serving, and its broken
// handler fires so the transport can report DEVICE_NEEDS_RESET.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "vmm/memory/guest_memory.hpp"
#include "vmm/virtio/descriptor_chain.hpp"

namespace frakti::vmm::virtio {

class Queue {
 public:
  /// Largest total length (readable + writable) of one chain; anything longer is malformed.
  static constexpr uint64_t kMaxChainBytes = 64ull << 20;

  /// max_size must be a power of two in [1, 32768] (a programming error otherwise: throws
  /// std::invalid_argument).
  explicit Queue(uint16_t max_size);

  // ---- configuration (transport, vCPU threads, device not active) ----

  uint16_t max_size() const { return max_size_; }
  /// Queue size the driver chose (QueueNum); starts as max_size().
  uint16_t size() const { return size_; }
  void set_size(uint16_t size) { size_ = size; }
  uint64_t desc_table() const { return desc_table_; }
  uint64_t avail_ring() const { return avail_ring_; }
  uint64_t used_ring() const { return used_ring_; }
  void set_desc_table(uint64_t gpa) { desc_table_ = gpa; }
  void set_avail_ring(uint64_t gpa) { avail_ring_ = gpa; }
  void set_used_ring(uint64_t gpa) { used_ring_ = gpa; }
  bool ready() const { return ready_; }
  void set_ready(bool ready) { ready_ = ready; }
  /// Features the driver accepted that change ring handling (INDIRECT_DESC, EVENT_IDX).
  void set_features(uint64_t driver_features);

  /// Empty when the configuration is usable: size a power of two <= max_size(), rings aligned
  /// as the spec requires and lying wholly inside guest memory. Otherwise says what is wrong.
  std::string validate(const memory::GuestMemory& mem) const;

  /// Back to the power-on state (size = max, addresses 0, not ready, indices 0, not broken).
  void reset();

  /// Called (once per break) when the queue becomes broken. Set by the transport.
  void set_broken_handler(std::function<void()> handler) { on_broken_ = std::move(handler); }

  // ---- data path (device, event-loop thread, device active) ----

  /// The next valid chain, or nullopt when the ring is empty (or the queue is broken).
  /// Malformed chains on the way are returned to the guest with length 0 and skipped.
  /// With EVENT_IDX it also publishes avail_event so the driver notifies on the next buffer.
  std::optional<DescriptorChain> pop(const memory::GuestMemory& mem);
  /// Gives back the last chain pop() returned (for a device that found it cannot use it yet,
  /// for example an rx buffer with no packet to put in it).
  void undo_pop();
  /// True when pop() would find at least one entry (valid or not) without consuming it.
  bool has_available(const memory::GuestMemory& mem) const;

  /// Returns a chain to the driver: len is the number of bytes the device wrote.
  void add_used(const memory::GuestMemory& mem, uint16_t head, uint32_t len);

  /// After a batch of add_used(): true when the driver wants an interrupt now (it did not set
  /// VRING_AVAIL_F_NO_INTERRUPT, or, with EVENT_IDX, used_event was crossed). Resets the
  /// "used since last notification" state, so call it once per batch.
  bool should_notify(const memory::GuestMemory& mem);

  /// Chains consumed as malformed since the last reset.
  uint64_t malformed_chains() const { return malformed_; }
  /// Whether the guest broke the ring; a broken queue serves nothing until reset().
  bool broken() const { return broken_; }

 private:
  enum class Walk;
  Walk walk_chain(const memory::GuestMemory& mem, uint16_t head, DescriptorChain* out) const;
  void mark_broken(const char* why, uint64_t detail);
  std::optional<uint16_t> read_avail_idx(const memory::GuestMemory& mem) const;

  const uint16_t max_size_;
  uint16_t size_;
  uint64_t desc_table_ = 0;
  uint64_t avail_ring_ = 0;
  uint64_t used_ring_ = 0;
  bool ready_ = false;
  bool indirect_ = false;
  bool event_idx_ = false;

  uint16_t next_avail_ = 0;      // next avail ring slot the device reads
  uint16_t next_used_ = 0;       // used idx the device publishes next
  uint16_t signalled_used_ = 0;  // used idx at the last should_notify() that said yes
  bool used_since_notify_ = false;
  bool broken_ = false;
  uint64_t malformed_ = 0;
  std::function<void()> on_broken_;
};

}  // namespace frakti::vmm::virtio
