#pragma once
// Serial: a 16550A-compatible UART (the guest's ttyS0 console) at 0x3f8, IRQ 4.
//
// Linux needs three things from it (learned the hard way): registers that read back what was
// written (an IER reading 0 makes the 8250 driver decide there is no port), a THR-empty
// interrupt whenever transmit interrupts are enabled (else console output from user space
// stalls), and a receive path raising the data-ready interrupt.
//
// Threads: vCPU threads do register accesses; the event loop feeds input. One mutex.

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include "vmm/bus/bus_device.hpp"
#include "vmm/irq/irq_line.hpp"

namespace frakti::vmm::devices {

class Serial : public bus::BusDevice {
 public:
  /// Receives every byte the guest transmits (outside loopback mode). Called with the UART's
  /// lock held: keep it short (a write(2) to a file or pipe).
  using Output = std::function<void(std::span<const uint8_t>)>;

  /// Most input bytes buffered before further input is dropped (and counted).
  static constexpr size_t kInputCapacity = 4096;

  Serial(irq::IrqLine& irq, Output output);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  /// Queues bytes for the guest to read and raises data-ready if enabled; returns how many
  /// were accepted (the rest would overflow kInputCapacity). Thread-safe.
  size_t enqueue_input(std::span<const uint8_t> bytes);
  /// Bytes dropped because the input buffer was full.
  uint64_t dropped_input() const;

 private:
  uint8_t read_reg(uint64_t offset);
  void write_reg(uint64_t offset, uint8_t value);
  uint8_t interrupt_id() const;
  bool loopback() const;

  irq::IrqLine& irq_;
  Output output_;
  mutable std::mutex mu_;
  std::deque<uint8_t> rx_;
  uint64_t dropped_ = 0;
  bool thr_empty_pending_ = false;
  uint8_t ier_ = 0;
  uint8_t lcr_ = 0x03;  // 8 data bits, no parity, 1 stop bit
  uint8_t mcr_ = 0x08;  // OUT2 (interrupt enable on PCs)
  uint8_t fcr_ = 0;
  uint8_t scr_ = 0;
  uint8_t dll_ = 0x0c;  // 9600 baud
  uint8_t dlm_ = 0;
  uint8_t lsr_extra_ = 0;  // overrun bit, cleared when LSR is read
};

}  // namespace frakti::vmm::devices
