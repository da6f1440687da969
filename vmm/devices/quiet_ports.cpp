#include "vmm/devices/quiet_ports.hpp"

#include <memory>

namespace frakti::vmm::devices {

void QuietPorts::read(uint64_t, std::span<uint8_t> data) {
  for (auto& b : data) b = 0xff;
}

const std::vector<std::pair<uint16_t, uint16_t>>& quiet_port_ranges() {
  // PIC (0x20, 0xa0), PIT (0x40) and ELCR (0x4d0) are in-kernel and never reach us.
  static const std::vector<std::pair<uint16_t, uint16_t>> ranges = {
      {0x2e, 2},    // Super I/O configuration (index, data), probed by watchdog/hwmon drivers
      {0x4e, 2},    // Super I/O configuration, second address
      {0x70, 2},    // CMOS/RTC index and data (there is no RTC)
      {0x80, 1},    // POST code / io_delay
      {0x81, 3},    // DMA page registers 0x81-0x83
      {0x87, 1},    // DMA page register
      {0x89, 3},    // DMA page registers 0x89-0x8b
      {0x8f, 1},    // DMA page register
      {0x92, 1},    // system control port A (fast A20)
      {0xed, 1},    // alternative io_delay port
      {0x2e8, 8},   // COM4
      {0x2f8, 8},   // COM2
      {0x3e8, 8},   // COM3
      {0xcf8, 8},   // PCI configuration mechanism 1 (pci=off, but probed before parsing)
  };
  return ranges;
}

void register_quiet_ports(bus::Bus& pio) {
  auto dev = std::make_shared<QuietPorts>();
  for (auto [base, len] : quiet_port_ranges()) pio.insert(base, len, dev);
}

}  // namespace frakti::vmm::devices
