#include "vmm/bus/bus.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace frakti::vmm::bus {

void Bus::insert(uint64_t base, uint64_t len, std::shared_ptr<BusDevice> device) {
  if (len == 0 || base + len < base)
    throw std::invalid_argument(fmt::format("{} bus: bad range {:#x}+{:#x}", name_, base, len));
  auto next = ranges_.lower_bound(base);
  if (next != ranges_.end() && next->first < base + len)
    throw std::invalid_argument(
        fmt::format("{} bus: range {:#x}+{:#x} overlaps {:#x}", name_, base, len, next->first));
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.len > base)
      throw std::invalid_argument(fmt::format("{} bus: range {:#x}+{:#x} overlaps {:#x}", name_,
                                              base, len, prev->first));
  }
  ranges_.emplace(base, Entry{len, std::move(device)});
}

const Bus::Entry* Bus::find(uint64_t addr, uint64_t size, uint64_t* offset) const {
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) return nullptr;
  --it;
  uint64_t off = addr - it->first;
  if (off >= it->second.len || size > it->second.len - off) return nullptr;
  *offset = off;
  return &it->second;
}

bool Bus::read(uint64_t addr, std::span<uint8_t> data) const {
  uint64_t off;
  const Entry* e = find(addr, data.size(), &off);
  if (!e) return false;
  e->device->read(off, data);
  return true;
}

bool Bus::write(uint64_t addr, std::span<const uint8_t> data) const {
  uint64_t off;
  const Entry* e = find(addr, data.size(), &off);
  if (!e) return false;
  e->device->write(off, data);
  return true;
}

}  // namespace frakti::vmm::bus
