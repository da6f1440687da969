#pragma once
// QuietPorts: I/O ports Linux touches at boot that need no device behind them (POST/delay
// port 0x80, DMA page registers, the other legacy COM ports, the PS/2 and CMOS probes...).
// Writes are dropped, reads return all ones ("nothing here"), and nothing is logged, so the
// log's unknown-port counter only shows ports worth looking at.

#include <cstdint>
#include <utility>
#include <vector>

#include "vmm/bus/bus.hpp"

namespace frakti::vmm::devices {

class QuietPorts : public bus::BusDevice {
 public:
  void read(uint64_t, std::span<uint8_t> data) override;
  void write(uint64_t, std::span<const uint8_t>) override {}
};

/// (base, length) of every quiet range registered by register_quiet_ports().
const std::vector<std::pair<uint16_t, uint16_t>>& quiet_port_ranges();
/// Registers one shared QuietPorts device for every range of quiet_port_ranges().
void register_quiet_ports(bus::Bus& pio);

}  // namespace frakti::vmm::devices
