#pragma once
// I8042: the PC keyboard controller, as much of it as Linux's boot, reboot and Ctrl-Alt-Del
// paths use. Port 0x64 reads the status and takes commands, port 0x60 moves data.
//   - Reset: command 0xFE (pulse the reset line), or the output port written with the reset
//     line low, is how a guest booted with `reboot=k` reboots: it calls on_reset.
//   - Keyboard: a minimal PS/2 keyboard answers the driver's commands (ACK, reset passed,
//     keyboard id) and send_ctrl_alt_del() types Ctrl-Alt-Del, the VMM's way to ask the guest
//     to shut down (as Firecracker's SendCtrlAltDel). Bytes from the keyboard raise IRQ 1, one
//     byte at a time, as long as the guest has the keyboard interrupt enabled.
// Answering 0xff to everything instead makes the kernel's reboot path spin on status reads.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "vmm/bus/bus_device.hpp"
#include "vmm/irq/irq_line.hpp"

namespace frakti::vmm::devices {

class I8042 {
 public:
  static constexpr uint16_t kDataPort = 0x60;
  static constexpr uint16_t kCommandPort = 0x64;
  static constexpr uint32_t kKeyboardIrq = 1;

  /// on_reset runs on the vCPU thread that wrote the reset command. keyboard_irq (may be
  /// null: no keyboard interrupts) must outlive this object.
  explicit I8042(std::function<void()> on_reset, irq::IrqLine* keyboard_irq = nullptr);

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

  /// Types Ctrl-Alt-Del (press and release; set 1 codes when the guest has translation on,
  /// set 2 otherwise). Returns false, typing nothing, when the guest has the keyboard or its
  /// interrupt disabled: no driver would see the keys. Any thread.
  bool send_ctrl_alt_del();

 private:
  struct Byte {
    uint8_t value;
    bool from_keyboard;  // raises IRQ 1 when it reaches the front of the buffer
  };
  void push_output(uint8_t value, bool from_keyboard);
  void keyboard_command(uint8_t value);
  /// Raises IRQ 1 if the byte now at the front came from the keyboard. Holds mu_.
  void interrupt_for_front();

  std::function<void()> on_reset_;
  irq::IrqLine* keyboard_irq_;
  mutable std::mutex mu_;
  std::deque<Byte> out_;
  uint8_t config_ = 0x45;        // keyboard interrupt on, system flag, translation on
  uint8_t pending_command_ = 0;  // controller command waiting for its data byte (0x60, 0xd1)
  uint8_t pending_keyboard_ = 0; // keyboard command waiting for its argument (0xed, 0xf3...)
  bool last_was_command_ = false;
  uint8_t last_out_ = 0;
};

}  // namespace frakti::vmm::devices
