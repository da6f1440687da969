#pragma once
// GuestMemory: the guest's physical RAM as host mappings, and the one place where a
// guest-physical address becomes a host pointer. Every access driven by guest data (virtqueue
// rings, descriptors, buffers) goes through translate()/read()/write(), which check that the
// whole range [gpa, gpa+len) lies inside a single region and do not overflow.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace frakti::vmm::memory {

/// One contiguous run of guest-physical memory backed by one host mapping.
struct Region {
  uint64_t gpa = 0;        ///< first guest-physical address
  uint64_t size = 0;       ///< length in bytes
  uint8_t* host = nullptr; ///< host address of gpa
};

class GuestMemory {
 public:
  /// Maps anonymous memory for each (gpa, size) pair; regions must not overlap and sizes must
  /// be multiples of the page size. Throws std::system_error naming the failed mmap.
  static GuestMemory allocate(const std::vector<std::pair<uint64_t, uint64_t>>& layout);
  /// Wraps existing host buffers (unit tests); the buffers must outlive this object.
  static GuestMemory from_buffers(std::vector<Region> regions);

  GuestMemory(GuestMemory&&) noexcept;
  GuestMemory& operator=(GuestMemory&&) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;
  ~GuestMemory();

  const std::vector<Region>& regions() const { return regions_; }
  /// Sum of region sizes.
  uint64_t total_size() const;

  /// Host pointer for [gpa, gpa+len) when that range lies wholly inside one region, else
  /// nullopt. len == 0 is valid for any gpa inside a region (or one past its end).
  std::optional<uint8_t*> translate(uint64_t gpa, uint64_t len) const;
  /// Like translate(), returning a span.
  std::optional<std::span<uint8_t>> span(uint64_t gpa, uint64_t len) const;

  /// Copies guest memory into out; false (nothing copied) when the range is not valid.
  bool read(uint64_t gpa, std::span<uint8_t> out) const;
  /// Copies in to guest memory; false (nothing copied) when the range is not valid.
  bool write(uint64_t gpa, std::span<const uint8_t> in) const;

  /// Typed helpers for plain-old-data objects (rings, headers). Unaligned access is fine.
  template <typename T>
  std::optional<T> read_obj(uint64_t gpa) const {
    T v;
    if (!read(gpa, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), sizeof v)))
      return std::nullopt;
    return v;
  }
  template <typename T>
  bool write_obj(uint64_t gpa, const T& v) const {
    return write(gpa, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), sizeof v));
  }

 private:
  GuestMemory() = default;
  std::vector<Region> regions_;  // sorted by gpa
  bool owned_ = false;           // regions_ were mmap()ed by allocate()
};

}  // namespace frakti::vmm::memory
