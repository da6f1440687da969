// vmlinux loader: a valid image loads at its physical addresses; a table of hostile images
// each fail with std::invalid_argument and leave guest memory untouched.
#include <elf.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <functional>

#include "vmm/arch/x86_64/elf_loader.hpp"
#include "vmm/arch/x86_64/layout.hpp"

using namespace frakti::vmm::arch::x86_64;
using frakti::vmm::memory::GuestMemory;

namespace {

constexpr uint64_t kRam = 64 * kMiB;
constexpr uint64_t kLoad = 16 * kMiB;

struct Image {
  Elf64_Ehdr eh{};
  std::vector<Elf64_Phdr> ph;
  std::vector<uint8_t> payload;
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out(sizeof eh + ph.size() * sizeof(Elf64_Phdr));
    std::memcpy(out.data(), &eh, sizeof eh);
    if (!ph.empty()) std::memcpy(out.data() + sizeof eh, ph.data(), ph.size() * sizeof(Elf64_Phdr));
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
  }
};

// A vmlinux-like image: one text segment with file data plus bss, one note, entry = start.
Image valid_image() {
  Image im;
  std::memcpy(im.eh.e_ident, ELFMAG, SELFMAG);
  im.eh.e_ident[EI_CLASS] = ELFCLASS64;
  im.eh.e_ident[EI_DATA] = ELFDATA2LSB;
  im.eh.e_ident[EI_VERSION] = EV_CURRENT;
  im.eh.e_type = ET_EXEC;
  im.eh.e_machine = EM_X86_64;
  im.eh.e_version = EV_CURRENT;
  im.eh.e_entry = kLoad;
  im.eh.e_phoff = sizeof(Elf64_Ehdr);
  im.eh.e_ehsize = sizeof(Elf64_Ehdr);
  im.eh.e_phentsize = sizeof(Elf64_Phdr);
  im.eh.e_phnum = 2;
  uint64_t data_off = sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr);
  im.payload.assign(256, 0);
  for (size_t i = 0; i < im.payload.size(); i++) im.payload[i] = static_cast<uint8_t>(i + 1);
  Elf64_Phdr text{};
  text.p_type = PT_LOAD;
  text.p_offset = data_off;
  text.p_vaddr = 0xffffffff81000000ull;
  text.p_paddr = kLoad;
  text.p_filesz = 256;
  text.p_memsz = 4096;
  Elf64_Phdr note{};
  note.p_type = PT_NOTE;
  note.p_offset = 1ull << 60;  // never looked at: not a PT_LOAD
  note.p_filesz = 16;
  note.p_memsz = 16;
  im.ph = {text, note};
  return im;
}

}  // namespace

TEST_CASE("a valid vmlinux loads at its physical address with bss zeroed", "[arch][elf]") {
  auto mem = GuestMemory::allocate({{0, kRam}});
  // Dirty the bss area first: the loader must zero it.
  std::vector<uint8_t> junk(4096, 0xee);
  REQUIRE(mem.write(kLoad, junk));
  auto k = load_elf_kernel(valid_image().bytes(), mem, kRam);
  REQUIRE(k.entry == kLoad);
  REQUIRE(k.low == kLoad);
  REQUIRE(k.high == kLoad + 4096);
  REQUIRE(mem.read_obj<uint8_t>(kLoad) == 1);
  REQUIRE(mem.read_obj<uint8_t>(kLoad + 255) == 0);  // byte 256 of payload wraps to 0
  REQUIRE(mem.read_obj<uint8_t>(kLoad + 254) == 255);
  REQUIRE(mem.read_obj<uint8_t>(kLoad + 256) == 0);
  REQUIRE(mem.read_obj<uint8_t>(kLoad + 4095) == 0);
}

TEST_CASE("hostile kernel images are rejected cleanly", "[arch][elf]") {
  struct Case {
    const char* name;
    std::function<void(Image&)> mutate;
    const char* message;  // a fragment the error must contain
  };
  const std::vector<Case> cases = {
      {"bad magic", [](Image& im) { im.eh.e_ident[1] = 'X'; }, "not an ELF"},
      {"32-bit class", [](Image& im) { im.eh.e_ident[EI_CLASS] = ELFCLASS32; }, "64-bit"},
      {"big endian", [](Image& im) { im.eh.e_ident[EI_DATA] = ELFDATA2MSB; }, "little-endian"},
      {"wrong machine", [](Image& im) { im.eh.e_machine = EM_AARCH64; }, "machine"},
      {"shared object", [](Image& im) { im.eh.e_type = ET_DYN; }, "ET_EXEC"},
      {"odd phentsize", [](Image& im) { im.eh.e_phentsize = 40; }, "program header size"},
      {"no phdrs", [](Image& im) { im.eh.e_phnum = 0; }, "no program headers"},
      {"PN_XNUM", [](Image& im) { im.eh.e_phnum = PN_XNUM; }, "no program headers"},
      {"phoff past end", [](Image& im) { im.eh.e_phoff = 1 << 20; }, "outside the file"},
      {"phoff overflow", [](Image& im) { im.eh.e_phoff = ~0ull - 8; }, "outside the file"},
      {"too many phdrs", [](Image& im) { im.eh.e_phnum = 60000; }, "outside the file"},
      {"filesz > memsz", [](Image& im) { im.ph[0].p_filesz = 8192; }, "exceeds memory size"},
      {"data past end", [](Image& im) { im.ph[0].p_offset = 1 << 20; }, "outside the file"},
      {"data offset overflow", [](Image& im) { im.ph[0].p_offset = ~0ull - 4; }, "outside the file"},
      {"below 1 MiB", [](Image& im) { im.ph[0].p_paddr = 0x7000; im.eh.e_entry = 0x7000; },
       "outside guest RAM"},
      {"beyond RAM", [](Image& im) { im.ph[0].p_paddr = kRam - 1024; }, "outside guest RAM"},
      {"huge memsz", [](Image& im) { im.ph[0].p_memsz = ~0ull; }, "outside guest RAM"},
      {"paddr overflow", [](Image& im) { im.ph[0].p_paddr = ~0ull - 100; }, "outside guest RAM"},
      {"entry outside", [](Image& im) { im.eh.e_entry = kLoad + 8192; }, "entry point"},
      {"no PT_LOAD", [](Image& im) { im.ph[0].p_type = PT_NOTE; }, "no loadable segment"},
      {"overlapping segments",
       [](Image& im) {
         Elf64_Phdr copy = im.ph[0];
         copy.p_paddr = kLoad + 2048;
         im.ph[1] = copy;
       },
       "overlaps"},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      auto mem = GuestMemory::allocate({{0, kRam}});
      Image im = valid_image();
      c.mutate(im);
      auto bytes = im.bytes();
      try {
        load_elf_kernel(bytes, mem, kRam);
        FAIL("accepted: " << c.name);
      } catch (const std::invalid_argument& e) {
        INFO(c.name << ": " << e.what());
        REQUIRE(std::string(e.what()).find(c.message) != std::string::npos);
      }
      REQUIRE(mem.read_obj<uint8_t>(kLoad) == 0);  // nothing copied
    }
  }
}

TEST_CASE("truncated files and bzImages get a helpful message", "[arch][elf]") {
  auto mem = GuestMemory::allocate({{0, kRam}});
  auto full = valid_image().bytes();
  for (size_t n : {size_t{0}, size_t{4}, sizeof(Elf64_Ehdr) - 1, sizeof(Elf64_Ehdr) + 10}) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    REQUIRE_THROWS_AS(load_elf_kernel(cut, mem, kRam), std::invalid_argument);
  }
  std::vector<uint8_t> bz(0x400, 0);
  std::memcpy(bz.data() + 0x202, "HdrS", 4);
  REQUIRE_THROWS_WITH(load_elf_kernel(bz, mem, kRam), Catch::Contains("bzImage"));
  REQUIRE_THROWS_WITH(load_elf_kernel_file("/nonexistent/vmlinux", mem, kRam),
                      Catch::Contains("/nonexistent/vmlinux"));
}
