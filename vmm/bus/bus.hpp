#pragma once
// Bus: maps guest address ranges (I/O ports or MMIO) to devices. Filled while the VM is built,
// read-only once vCPUs run, so lookups need no lock.

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "vmm/bus/bus_device.hpp"

namespace frakti::vmm::bus {

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  /// Registers device for [base, base+len). Throws std::invalid_argument on overlap or len 0.
  void insert(uint64_t base, uint64_t len, std::shared_ptr<BusDevice> device);

  /// Dispatches a guest read; returns false (data untouched) when no device claims the
  /// whole access. The caller decides what an unclaimed read returns.
  bool read(uint64_t addr, std::span<uint8_t> data) const;
  /// Dispatches a guest write; returns false when no device claims addr.
  bool write(uint64_t addr, std::span<const uint8_t> data) const;

  const std::string& name() const { return name_; }

 private:
  struct Entry {
    uint64_t len;
    std::shared_ptr<BusDevice> device;
  };
  /// The device whose range holds [addr, addr+size), with the offset into it.
  const Entry* find(uint64_t addr, uint64_t size, uint64_t* offset) const;

  std::string name_;
  std::map<uint64_t, Entry> ranges_;  // keyed by base
};

}  // namespace frakti::vmm::bus
