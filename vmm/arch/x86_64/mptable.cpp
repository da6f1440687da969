#include "vmm/arch/x86_64/mptable.hpp"

#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "vmm/arch/x86_64/layout.hpp"

namespace frakti::vmm::arch::x86_64 {
namespace {

// Entry types and field values from the MP specification 1.4, chapter 4.
constexpr uint8_t kEntryProcessor = 0;
constexpr uint8_t kEntryBus = 1;
constexpr uint8_t kEntryIoapic = 2;
constexpr uint8_t kEntryIoInterrupt = 3;
constexpr uint8_t kEntryLocalInterrupt = 4;
constexpr uint8_t kIntTypeInt = 0;
constexpr uint8_t kIntTypeNmi = 1;
constexpr uint8_t kIntTypeExtInt = 3;
constexpr uint8_t kCpuEnabled = 1;
constexpr uint8_t kCpuBsp = 2;
constexpr uint8_t kSpecRevision = 4;  // 1.4
constexpr uint8_t kLapicVersion = 0x14;
constexpr uint8_t kIoapicVersion = 0x11;
constexpr uint32_t kCpuSignature = 0x600;            // family 6
constexpr uint32_t kCpuFeatures = (1u << 9) | 1u;   // APIC, FPU
constexpr uint8_t kIsaBusId = 0;
constexpr size_t kFloatingSize = 16;
constexpr size_t kHeaderSize = 44;

class Writer {
 public:
  void u8(uint8_t v) { buf.push_back(v); }
  void u16(uint16_t v) { raw(&v, 2); }
  void u32(uint32_t v) { raw(&v, 4); }
  void str(const char* s, size_t n) {  // fixed-width, space padded
    size_t len = std::strlen(s);
    for (size_t i = 0; i < n; i++) u8(i < len ? static_cast<uint8_t>(s[i]) : ' ');
  }
  void zeros(size_t n) { buf.insert(buf.end(), n, 0); }
  void raw(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    buf.insert(buf.end(), b, b + n);
  }
  void put16(size_t off, uint16_t v) { std::memcpy(buf.data() + off, &v, 2); }
  void put32(size_t off, uint32_t v) { std::memcpy(buf.data() + off, &v, 4); }
  std::vector<uint8_t> buf;
};

uint8_t checksum(const std::vector<uint8_t>& b, size_t off, size_t len) {
  uint8_t sum = 0;
  for (size_t i = off; i < off + len; i++) sum = static_cast<uint8_t>(sum + b[i]);
  return static_cast<uint8_t>(-sum);
}

}  // namespace

uint8_t mp_ioapic_id(uint32_t cpu_count) { return static_cast<uint8_t>(cpu_count + 1); }

std::vector<uint8_t> build_mp_table(uint32_t cpu_count, uint64_t base_addr) {
  if (cpu_count < 1 || cpu_count > kMaxVcpus)
    throw std::invalid_argument(
        fmt::format("{} vCPUs: the MP table supports 1 to {}", cpu_count, kMaxVcpus));
  Writer w;
  // Floating pointer structure: points at the configuration table right behind it.
  w.str("_MP_", 4);
  w.u32(static_cast<uint32_t>(base_addr + kFloatingSize));
  w.u8(1);  // length in 16-byte units
  w.u8(kSpecRevision);
  w.u8(0);  // checksum, below
  w.zeros(5);  // feature bytes: 0 = a configuration table is present, no IMCR
  // Configuration table header; length, entry count and checksum are filled in at the end.
  const size_t hdr = w.buf.size();
  w.str("PCMP", 4);
  w.u16(0);
  w.u8(kSpecRevision);
  w.u8(0);
  w.str("FRAKTI", 8);
  w.str("FRAKTI-VMM", 12);
  w.u32(0);  // OEM table
  w.u16(0);
  w.u16(0);  // entry count
  w.u32(static_cast<uint32_t>(kLapicAddr));
  w.u16(0);  // extended table length
  w.u8(0);
  w.u8(0);
  if (w.buf.size() - hdr != kHeaderSize) throw std::logic_error("MP table header size");
  uint16_t entries = 0;
  for (uint32_t cpu = 0; cpu < cpu_count; cpu++, entries++) {
    w.u8(kEntryProcessor);
    w.u8(static_cast<uint8_t>(cpu));
    w.u8(kLapicVersion);
    w.u8(cpu == 0 ? kCpuEnabled | kCpuBsp : kCpuEnabled);
    w.u32(kCpuSignature);
    w.u32(kCpuFeatures);
    w.zeros(8);
  }
  w.u8(kEntryBus);
  w.u8(kIsaBusId);
  w.str("ISA", 6);
  entries++;
  const uint8_t ioapic = mp_ioapic_id(cpu_count);
  w.u8(kEntryIoapic);
  w.u8(ioapic);
  w.u8(kIoapicVersion);
  w.u8(1);  // enabled
  w.u32(static_cast<uint32_t>(kIoapicAddr));
  entries++;
  for (uint32_t pin = 0; pin < kIoapicPins; pin++, entries++) {
    w.u8(kEntryIoInterrupt);
    w.u8(kIntTypeInt);
    w.u16(0);  // polarity/trigger: conforming to the bus (ISA: edge, active high)
    w.u8(kIsaBusId);
    w.u8(static_cast<uint8_t>(pin));  // source bus IRQ
    w.u8(ioapic);
    w.u8(static_cast<uint8_t>(pin));  // destination IOAPIC pin
  }
  // LINT0 carries the PIC (ExtINT), LINT1 NMIs; 0xff = every local APIC.
  for (auto [type, lint] : {std::pair<uint8_t, uint8_t>{kIntTypeExtInt, 0}, {kIntTypeNmi, 1}}) {
    w.u8(kEntryLocalInterrupt);
    w.u8(type);
    w.u16(0);
    w.u8(kIsaBusId);
    w.u8(0);
    w.u8(0xff);
    w.u8(lint);
    entries++;
  }
  const size_t table_len = w.buf.size() - hdr;
  w.put16(hdr + 4, static_cast<uint16_t>(table_len));
  w.put16(hdr + 34, entries);
  w.buf[hdr + 7] = checksum(w.buf, hdr, table_len);
  w.buf[10] = checksum(w.buf, 0, kFloatingSize);
  if (w.buf.size() > kMpTableMaxSize)
    throw std::logic_error(fmt::format("MP table of {} bytes exceeds its {} byte area",
                                       w.buf.size(), kMpTableMaxSize));
  return w.buf;
}

void write_mp_table(const memory::GuestMemory& mem, uint32_t cpu_count) {
  auto table = build_mp_table(cpu_count, kMpTableAddr);
  if (!mem.write(kMpTableAddr, table))
    throw std::invalid_argument("guest RAM does not cover the MP table area");
}

}  // namespace frakti::vmm::arch::x86_64
