#pragma once
// I8042: just enough of the PC keyboard controller for Linux's boot and reboot paths.
// Port 0x64 reads the status and takes commands, port 0x60 moves data. Command 0xFE (pulse
// the reset line) is how a guest booted with `reboot=k` reboots: it calls on_reset.
// Answering 0xff to everything instead makes the kernel's reboot path spin on status reads.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "vmm/bus/bus_device.hpp"

namespace frakti::vmm::devices {

class I8042 {
 public:
  static constexpr uint16_t kDataPort = 0x60;
  static constexpr uint16_t kCommandPort = 0x64;

  /// on_reset runs on the vCPU thread that wrote the reset command.
  explicit I8042(std::function<void()> on_reset);

  /// The BusDevice to register at kDataPort (1 byte).
  std::shared_ptr<bus::BusDevice> data_port();
  /// The BusDevice to register at kCommandPort (1 byte).
  std::shared_ptr<bus::BusDevice> command_port();

  uint8_t read_data();
  uint8_t read_status();
  void write_data(uint8_t value);
  void write_command(uint8_t command);
  /// The controller configuration byte (command 0x20/0x60).
  uint8_t config_byte() const;

 private:
  void push_output(uint8_t value);

  std::function<void()> on_reset_;
  mutable std::mutex mu_;
  std::deque<uint8_t> out_;
  uint8_t config_ = 0x45;       // keyboard interrupt on, system flag, translation on
  uint8_t pending_command_ = 0; // command waiting for its data byte (0x60, 0xd1...)
  bool last_was_command_ = false;
  uint8_t last_out_ = 0;
};

}  // namespace frakti::vmm::devices
