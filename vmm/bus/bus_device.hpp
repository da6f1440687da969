#pragma once
// BusDevice: anything the guest reaches through port I/O or MMIO exits. Offsets are relative
// to the start of the range the device was registered at. Called on vCPU threads: a device
// that shares state with the event loop locks it itself.

#include <cstdint>
#include <span>

namespace frakti::vmm::bus {

class BusDevice {
 public:
  virtual ~BusDevice() = default;
  /// Guest read of data.size() bytes (1, 2, 4 or 8) at offset; fill data (it arrives zeroed).
  virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
  /// Guest write of data.size() bytes at offset.
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

}  // namespace frakti::vmm::bus
