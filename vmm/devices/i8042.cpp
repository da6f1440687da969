#include "vmm/devices/i8042.hpp"

#include <utility>

namespace frakti::vmm::devices {
namespace {

constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystemFlag = 0x04;
constexpr uint8_t kStatusLastWasCommand = 0x08;
constexpr uint8_t kStatusNotInhibited = 0x10;  // keyboard lock switch off ("Keylock active" else)

constexpr uint8_t kCmdReadConfig = 0x20;
constexpr uint8_t kCmdWriteConfig = 0x60;
constexpr uint8_t kCmdDisableAux = 0xa7;
constexpr uint8_t kCmdEnableAux = 0xa8;
constexpr uint8_t kCmdTestAux = 0xa9;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdTestKbd = 0xab;
constexpr uint8_t kCmdDisableKbd = 0xad;
constexpr uint8_t kCmdEnableKbd = 0xae;
constexpr uint8_t kCmdReadOutputPort = 0xd0;
constexpr uint8_t kCmdWriteOutputPort = 0xd1;
constexpr uint8_t kCmdPulseReset = 0xfe;

constexpr uint8_t kConfigKbdInterrupt = 0x01;
constexpr uint8_t kConfigKbdDisabled = 0x10;
constexpr uint8_t kConfigTranslate = 0x40;
constexpr uint8_t kConfigAuxDisabled = 0x20;
constexpr uint8_t kSelfTestOk = 0x55;
constexpr uint8_t kAck = 0xfa;
constexpr size_t kOutputCapacity = 32;

// Commands a PS/2 keyboard takes on the data port.
constexpr uint8_t kKbdSetLeds = 0xed;
constexpr uint8_t kKbdEcho = 0xee;
constexpr uint8_t kKbdScancodeSet = 0xf0;
constexpr uint8_t kKbdGetId = 0xf2;
constexpr uint8_t kKbdTypematic = 0xf3;
constexpr uint8_t kKbdReset = 0xff;
constexpr uint8_t kKbdResetPassed = 0xaa;

// Ctrl down, Alt down, Delete down, Delete up, Alt up, Ctrl up.
constexpr uint8_t kCtrlAltDelSet1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
constexpr uint8_t kCtrlAltDelSet2[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
                                       0x71, 0xf0, 0x11, 0xf0, 0x14};
constexpr uint8_t kOutputPortResetLine = 0x01;  // 0 = CPU held in reset

/// One port of the controller as a bus device.
class Port : public bus::BusDevice {
 public:
  Port(I8042& dev, bool command) : dev_(dev), command_(command) {}
  void read(uint64_t, std::span<uint8_t> data) override {
    if (!data.empty()) data[0] = command_ ? dev_.read_status() : dev_.read_data();
  }
  void write(uint64_t, std::span<const uint8_t> data) override {
    if (data.empty()) return;
    if (command_) dev_.write_command(data[0]);
    else dev_.write_data(data[0]);
  }

 private:
  I8042& dev_;
  bool command_;
};

}  // namespace

I8042::I8042(std::function<void()> on_reset, irq::IrqLine* keyboard_irq)
    : on_reset_(std::move(on_reset)), keyboard_irq_(keyboard_irq) {}

std::shared_ptr<bus::BusDevice> I8042::data_port() { return std::make_shared<Port>(*this, false); }
std::shared_ptr<bus::BusDevice> I8042::command_port() { return std::make_shared<Port>(*this, true); }

void I8042::push_output(uint8_t v, bool from_keyboard) {
  if (out_.size() >= kOutputCapacity) return;
  out_.push_back({v, from_keyboard});
  if (out_.size() == 1) interrupt_for_front();
}

void I8042::interrupt_for_front() {
  if (out_.empty() || !out_.front().from_keyboard || !keyboard_irq_) return;
  if ((config_ & kConfigKbdInterrupt) && !(config_ & kConfigKbdDisabled)) keyboard_irq_->trigger();
}

uint8_t I8042::read_status() {
  std::lock_guard lock(mu_);
  return static_cast<uint8_t>(kStatusSystemFlag | kStatusNotInhibited |
                              (out_.empty() ? 0 : kStatusOutputFull) |
                              (last_was_command_ ? kStatusLastWasCommand : 0));
}

uint8_t I8042::read_data() {
  std::lock_guard lock(mu_);
  // An empty output buffer reads back its last byte, as the hardware latch does.
  if (!out_.empty()) {
    last_out_ = out_.front().value;
    out_.pop_front();
    // Linux's handler takes one byte per interrupt: the next keyboard byte needs its own.
    interrupt_for_front();
  }
  return last_out_;
}

uint8_t I8042::config_byte() const {
  std::lock_guard lock(mu_);
  return config_;
}

bool I8042::send_ctrl_alt_del() {
  std::lock_guard lock(mu_);
  if (!(config_ & kConfigKbdInterrupt) || (config_ & kConfigKbdDisabled)) return false;
  if (config_ & kConfigTranslate) {
    for (uint8_t b : kCtrlAltDelSet1) push_output(b, true);
  } else {
    for (uint8_t b : kCtrlAltDelSet2) push_output(b, true);
  }
  return true;
}

void I8042::keyboard_command(uint8_t v) {
  if (uint8_t cmd = std::exchange(pending_keyboard_, 0)) {
    // The argument of a two-byte command.
    push_output(kAck, true);
    if (cmd == kKbdScancodeSet && v == 0) push_output(0x02, true);  // "which set": set 2
    return;
  }
  switch (v) {
    case kKbdSetLeds:
    case kKbdScancodeSet:
    case kKbdTypematic:
      pending_keyboard_ = v;
      push_output(kAck, true);
      break;
    case kKbdEcho: push_output(kKbdEcho, true); break;
    case kKbdGetId:
      // An MF2 keyboard; the controller translates the second byte when translation is on.
      push_output(kAck, true);
      push_output(0xab, true);
      push_output((config_ & kConfigTranslate) ? 0x41 : 0x83, true);
      break;
    case kKbdReset:
      push_output(kAck, true);
      push_output(kKbdResetPassed, true);
      break;
    default: push_output(kAck, true); break;  // enable/disable scanning, defaults...
  }
}

void I8042::write_data(uint8_t v) {
  bool reset = false;
  {
    std::lock_guard lock(mu_);
    last_was_command_ = false;
    uint8_t cmd = std::exchange(pending_command_, 0);
    if (cmd == kCmdWriteConfig) {
      config_ = v;
      interrupt_for_front();  // keyboard bytes held while its interrupt was off
    } else if (cmd == kCmdWriteOutputPort) {
      reset = !(v & kOutputPortResetLine);
    } else {
      keyboard_command(v);
    }
  }
  if (reset && on_reset_) on_reset_();
}

void I8042::write_command(uint8_t c) {
  bool reset = false;
  {
    std::lock_guard lock(mu_);
    last_was_command_ = true;
    pending_command_ = 0;
    switch (c) {
      case kCmdReadConfig: push_output(config_, false); break;
      case kCmdWriteConfig:
      case kCmdWriteOutputPort: pending_command_ = c; break;
      case kCmdDisableAux: config_ |= kConfigAuxDisabled; break;
      case kCmdEnableAux: config_ &= static_cast<uint8_t>(~kConfigAuxDisabled); break;
      case kCmdDisableKbd: config_ |= kConfigKbdDisabled; break;
      case kCmdEnableKbd:
        config_ &= static_cast<uint8_t>(~kConfigKbdDisabled);
        interrupt_for_front();
        break;
      case kCmdSelfTest: push_output(kSelfTestOk, false); break;
      case kCmdTestKbd:
      case kCmdTestAux: push_output(0x00, false); break;
      case kCmdReadOutputPort: push_output(kOutputPortResetLine, false); break;
      case kCmdPulseReset: reset = true; break;
      default: break;  // other commands (LEDs, A20, pulses of unused lines) change nothing here
    }
  }
  if (reset && on_reset_) on_reset_();
}

}  // namespace frakti::vmm::devices
