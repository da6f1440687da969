#include "vmm/arch/x86_64/boot_tables.hpp"

#include <stdexcept>

#include "vmm/arch/x86_64/layout.hpp"

namespace frakti::vmm::arch::x86_64 {
namespace {

constexpr uint64_t kPresent = 1ull << 0;
constexpr uint64_t kWritable = 1ull << 1;
constexpr uint64_t kPageSize = 1ull << 7;  // PS: a 2 MiB page in a page directory

void put(const memory::GuestMemory& mem, uint64_t gpa, uint64_t value, const char* what) {
  if (!mem.write_obj(gpa, value))
    throw std::invalid_argument(std::string("guest RAM does not cover the ") + what);
}

}  // namespace

uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((uint64_t{base} & 0xff000000u) << 32) | ((uint64_t{base} & 0x00ffffffu) << 16) |
         (uint64_t{limit} & 0x0000ffffu) | ((uint64_t{limit} & 0x000f0000u) << 32) |
         ((uint64_t{flags} & 0xf0ffu) << 40);
}

std::array<uint64_t, 4> boot_gdt() {
  return {
      0,
      gdt_entry(0xa09b, 0, 0xfffff),  // code: present, DPL 0, exec/read, L=1, G=1
      gdt_entry(0xc093, 0, 0xfffff),  // data: present, DPL 0, read/write, D/B=1, G=1
      gdt_entry(0x808b, 0, 0xfffff),  // TSS: present, busy 64-bit TSS, G=1
  };
}

kvm::Segment segment_from_gdt(uint64_t e, uint16_t index) {
  kvm::Segment s{};
  s.base = ((e >> 16) & 0xffffff) | (((e >> 56) & 0xff) << 24);
  uint32_t limit = static_cast<uint32_t>((e & 0xffff) | (((e >> 48) & 0xf) << 16));
  s.g = (e >> 55) & 1;
  s.limit = s.g ? (limit << 12) | 0xfff : limit;
  s.selector = static_cast<uint16_t>(index * 8);
  s.type = (e >> 40) & 0xf;
  s.s = (e >> 44) & 1;
  s.dpl = (e >> 45) & 3;
  s.present = (e >> 47) & 1;
  s.avl = (e >> 52) & 1;
  s.l = (e >> 53) & 1;
  s.db = (e >> 54) & 1;
  s.unusable = s.present ? 0 : 1;
  return s;
}

void write_gdt(const memory::GuestMemory& mem) {
  auto gdt = boot_gdt();
  for (size_t i = 0; i < gdt.size(); i++) put(mem, kGdtAddr + i * 8, gdt[i], "GDT");
  put(mem, kIdtAddr, uint64_t{0}, "IDT");
}

void write_identity_page_tables(const memory::GuestMemory& mem) {
  put(mem, kPml4Addr, kPdptAddr | kPresent | kWritable, "page tables");
  for (uint64_t gib = 0; gib < kIdentityMappedGiB; gib++) {
    uint64_t pd = kPdAddr + gib * 0x1000;
    put(mem, kPdptAddr + gib * 8, pd | kPresent | kWritable, "page tables");
    for (uint64_t i = 0; i < 512; i++) {
      uint64_t phys = gib * kGiB + i * 2 * kMiB;
      put(mem, pd + i * 8, phys | kPresent | kWritable | kPageSize, "page tables");
    }
  }
}

}  // namespace frakti::vmm::arch::x86_64
