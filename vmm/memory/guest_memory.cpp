#include "vmm/memory/guest_memory.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "common/error.hpp"

namespace frakti::vmm::memory {

GuestMemory GuestMemory::allocate(const std::vector<std::pair<uint64_t, uint64_t>>& layout) {
  GuestMemory mem;
  mem.owned_ = true;
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  for (auto [gpa, size] : layout) {
    if (size == 0 || size % page != 0 || gpa % page != 0)
      throw std::invalid_argument(
          fmt::format("guest memory region {:#x}+{:#x} is not page-aligned", gpa, size));
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
      common::throw_errno(fmt::format("mmap {} MiB of guest memory", size >> 20));
    // Guest RAM never goes into core dumps of the VMM, and never into fork()ed children.
    madvise(p, size, MADV_DONTDUMP);
    madvise(p, size, MADV_DONTFORK);
    mem.regions_.push_back(Region{gpa, size, static_cast<uint8_t*>(p)});
  }
  std::sort(mem.regions_.begin(), mem.regions_.end(),
            [](const Region& a, const Region& b) { return a.gpa < b.gpa; });
  for (size_t i = 1; i < mem.regions_.size(); i++) {
    const auto& prev = mem.regions_[i - 1];
    if (prev.gpa + prev.size > mem.regions_[i].gpa)
      throw std::invalid_argument("guest memory regions overlap");
  }
  return mem;
}

GuestMemory GuestMemory::from_buffers(std::vector<Region> regions) {
  GuestMemory mem;
  mem.regions_ = std::move(regions);
  std::sort(mem.regions_.begin(), mem.regions_.end(),
            [](const Region& a, const Region& b) { return a.gpa < b.gpa; });
  return mem;
}

GuestMemory::GuestMemory(GuestMemory&& o) noexcept
    : regions_(std::move(o.regions_)), owned_(std::exchange(o.owned_, false)) {
  o.regions_.clear();
}

GuestMemory& GuestMemory::operator=(GuestMemory&& o) noexcept {
  GuestMemory tmp(std::move(o));
  std::swap(regions_, tmp.regions_);
  std::swap(owned_, tmp.owned_);
  return *this;  // tmp unmaps what this held before
}

GuestMemory::~GuestMemory() {
  if (!owned_) return;
  for (auto& r : regions_) munmap(r.host, r.size);
}

uint64_t GuestMemory::total_size() const {
  uint64_t t = 0;
  for (auto& r : regions_) t += r.size;
  return t;
}

std::optional<uint8_t*> GuestMemory::translate(uint64_t gpa, uint64_t len) const {
  for (const auto& r : regions_) {
    if (gpa < r.gpa) break;  // sorted: no later region can contain gpa
    uint64_t off = gpa - r.gpa;
    // off <= size and len <= size - off: no overflow possible in either comparison.
    if (off <= r.size && len <= r.size - off) {
      if (off == r.size && len != 0) continue;
      return r.host + off;
    }
  }
  return std::nullopt;
}

std::optional<std::span<uint8_t>> GuestMemory::span(uint64_t gpa, uint64_t len) const {
  auto p = translate(gpa, len);
  if (!p) return std::nullopt;
  return std::span<uint8_t>(*p, len);
}

bool GuestMemory::read(uint64_t gpa, std::span<uint8_t> out) const {
  auto p = translate(gpa, out.size());
  if (!p) return false;
  if (!out.empty()) std::memcpy(out.data(), *p, out.size());
  return true;
}

bool GuestMemory::write(uint64_t gpa, std::span<const uint8_t> in) const {
  auto p = translate(gpa, in.size());
  if (!p) return false;
  if (!in.empty()) std::memcpy(*p, in.data(), in.size());
  return true;
}

}  // namespace frakti::vmm::memory
