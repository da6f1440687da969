#include "vmm/devices/serial.hpp"

namespace frakti::vmm::devices {
namespace {

// Register offsets from the base port.
constexpr uint64_t kData = 0;  // RBR (read) / THR (write); DLL when LCR.DLAB
constexpr uint64_t kIer = 1;   // DLM when LCR.DLAB
constexpr uint64_t kIir = 2;   // IIR (read) / FCR (write)
constexpr uint64_t kLcr = 3;
constexpr uint64_t kMcr = 4;
constexpr uint64_t kLsr = 5;
constexpr uint64_t kMsr = 6;
constexpr uint64_t kScr = 7;

constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kIerRxData = 0x01;
constexpr uint8_t kIerThrEmpty = 0x02;
constexpr uint8_t kIerMask = 0x0f;
constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirThrEmpty = 0x02;
constexpr uint8_t kIirRxData = 0x04;
constexpr uint8_t kIirFifoEnabled = 0xc0;
constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearRx = 0x02;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;
constexpr uint8_t kLsrThrEmpty = 0x20;
constexpr uint8_t kLsrIdle = 0x40;
// Modem status outside loopback: CTS, DSR and DCD asserted (a cable with a peer).
constexpr uint8_t kMsrDefault = 0xb0;

}  // namespace

Serial::Serial(irq::IrqLine& irq, Output output) : irq_(irq), output_(std::move(output)) {}

void Serial::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard lock(mu_);
  data[0] = read_reg(offset);
}

void Serial::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  bool raise;
  {
    std::lock_guard lock(mu_);
    write_reg(offset, data[0]);
    raise = interrupt_id() != kIirNone;
  }
  // Raised after every register write that leaves an interrupt pending: edge-triggered
  // (irqfd) delivery needs a fresh edge, and the driver loops on IIR until it reads "none".
  if (raise) irq_.trigger();
}

bool Serial::loopback() const { return mcr_ & kMcrLoop; }

uint8_t Serial::interrupt_id() const {
  if ((ier_ & kIerRxData) && !rx_.empty()) return kIirRxData;
  if ((ier_ & kIerThrEmpty) && thr_empty_pending_) return kIirThrEmpty;
  return kIirNone;
}

uint8_t Serial::read_reg(uint64_t offset) {
  switch (offset) {
    case kData: {
      if (lcr_ & kLcrDlab) return dll_;
      if (rx_.empty()) return 0;
      uint8_t b = rx_.front();
      rx_.pop_front();
      return b;
    }
    case kIer: return (lcr_ & kLcrDlab) ? dlm_ : ier_;
    case kIir: {
      uint8_t id = interrupt_id();
      // Reading IIR while it reports THR empty acknowledges that interrupt.
      if (id == kIirThrEmpty) thr_empty_pending_ = false;
      return id | ((fcr_ & kFcrEnable) ? kIirFifoEnabled : 0);
    }
    case kLcr: return lcr_;
    case kMcr: return mcr_;
    case kLsr: {
      uint8_t v = kLsrThrEmpty | kLsrIdle | lsr_extra_ | (rx_.empty() ? 0 : kLsrDataReady);
      lsr_extra_ = 0;
      return v;
    }
    case kMsr:
      if (loopback()) {
        // Loopback wires DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
        return static_cast<uint8_t>(((mcr_ & 0x01) << 5) | ((mcr_ & 0x02) << 3) |
                                    ((mcr_ & 0x04) << 4) | ((mcr_ & 0x08) << 4));
      }
      return kMsrDefault;
    case kScr: return scr_;
    default: return 0;
  }
}

void Serial::write_reg(uint64_t offset, uint8_t v) {
  switch (offset) {
    case kData:
      if (lcr_ & kLcrDlab) {
        dll_ = v;
        return;
      }
      if (loopback()) {
        if (rx_.size() < kInputCapacity) rx_.push_back(v);
        else lsr_extra_ |= kLsrOverrun;
      } else if (output_) {
        output_(std::span<const uint8_t>(&v, 1));
      }
      // The byte left at once, so the transmitter is empty again.
      thr_empty_pending_ = true;
      return;
    case kIer:
      if (lcr_ & kLcrDlab) {
        dlm_ = v;
        return;
      }
      // Enabling the THR-empty interrupt while the transmitter is empty raises it at once,
      // as on a real 16550; the 8250 driver's start_tx depends on it.
      if ((v & kIerThrEmpty) && !(ier_ & kIerThrEmpty)) thr_empty_pending_ = true;
      ier_ = v & kIerMask;
      return;
    case kIir:
      fcr_ = v & 0xc9;  // enable, DMA mode and trigger level are kept; clear bits self-reset
      if (v & kFcrClearRx) rx_.clear();
      return;
    case kLcr: lcr_ = v; return;
    case kMcr: mcr_ = v & 0x1f; return;
    case kScr: scr_ = v; return;
    default: return;  // LSR and MSR are read-only
  }
}

size_t Serial::enqueue_input(std::span<const uint8_t> bytes) {
  size_t taken;
  bool raise;
  {
    std::lock_guard lock(mu_);
    taken = std::min(bytes.size(), kInputCapacity - rx_.size());
    rx_.insert(rx_.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(taken));
    dropped_ += bytes.size() - taken;
    raise = taken > 0 && interrupt_id() != kIirNone;
  }
  if (raise) irq_.trigger();
  return taken;
}

uint64_t Serial::dropped_input() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

}  // namespace frakti::vmm::devices
