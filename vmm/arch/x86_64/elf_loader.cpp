#include "vmm/arch/x86_64/elf_loader.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "vmm/arch/x86_64/layout.hpp"

namespace frakti::vmm::arch::x86_64 {
namespace {

[[noreturn]] void bad(const std::string& why) { throw std::invalid_argument(why); }

/// True when [off, off+len) fits inside a buffer of size total (no overflow).
bool fits(uint64_t off, uint64_t len, uint64_t total) { return off <= total && len <= total - off; }

/// A bzImage has the setup header magic "HdrS" at 0x202; say so, it is a common mistake.
bool looks_like_bzimage(std::span<const uint8_t> image) {
  return image.size() > 0x206 && std::memcmp(image.data() + 0x202, "HdrS", 4) == 0;
}

}  // namespace

LoadedKernel load_elf_kernel(std::span<const uint8_t> image, const memory::GuestMemory& mem,
                             uint64_t ram_end) {
  Elf64_Ehdr eh;
  if (image.size() < sizeof eh || std::memcmp(image.data(), ELFMAG, SELFMAG) != 0) {
    if (looks_like_bzimage(image))
      bad("kernel is a bzImage; frakti-vmm boots the uncompressed ELF vmlinux");
    bad("kernel is not an ELF file (frakti-vmm boots an uncompressed x86-64 vmlinux)");
  }
  std::memcpy(&eh, image.data(), sizeof eh);
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) bad("kernel ELF is not 64-bit (ELFCLASS64)");
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB) bad("kernel ELF is not little-endian");
  if (eh.e_machine != EM_X86_64) bad(fmt::format("kernel ELF machine is {}, not x86-64", eh.e_machine));
  if (eh.e_type != ET_EXEC) bad("kernel ELF is not an executable (ET_EXEC)");
  if (eh.e_phentsize != sizeof(Elf64_Phdr))
    bad(fmt::format("kernel ELF program header size {} (expected {})", eh.e_phentsize,
                    sizeof(Elf64_Phdr)));
  if (eh.e_phnum == 0 || eh.e_phnum == PN_XNUM) bad("kernel ELF has no program headers");
  if (!fits(eh.e_phoff, uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr), image.size()))
    bad("kernel ELF program headers lie outside the file");

  std::vector<Elf64_Phdr> loads;
  for (uint32_t i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    std::memcpy(&ph, image.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    if (ph.p_filesz > ph.p_memsz)
      bad(fmt::format("kernel ELF segment {}: file size {:#x} exceeds memory size {:#x}", i,
                      ph.p_filesz, ph.p_memsz));
    if (!fits(ph.p_offset, ph.p_filesz, image.size()))
      bad(fmt::format("kernel ELF segment {}: data {:#x}+{:#x} lies outside the file", i,
                      ph.p_offset, ph.p_filesz));
    if (ph.p_paddr < kHighRamStart || !fits(ph.p_paddr, ph.p_memsz, ram_end))
      bad(fmt::format("kernel ELF segment {}: {:#x}+{:#x} is outside guest RAM [{:#x}, {:#x}) "
                      "(too little --memory?)", i, ph.p_paddr, ph.p_memsz, kHighRamStart, ram_end));
    if (!mem.translate(ph.p_paddr, ph.p_memsz))
      bad(fmt::format("kernel ELF segment {}: {:#x}+{:#x} is not in one RAM region", i,
                      ph.p_paddr, ph.p_memsz));
    for (const auto& other : loads)
      if (ph.p_paddr < other.p_paddr + other.p_memsz && other.p_paddr < ph.p_paddr + ph.p_memsz)
        bad(fmt::format("kernel ELF segment {} overlaps another segment", i));
    loads.push_back(ph);
  }
  if (loads.empty()) bad("kernel ELF has no loadable segment");
  bool entry_ok = false;
  for (const auto& ph : loads)
    if (eh.e_entry >= ph.p_paddr && eh.e_entry - ph.p_paddr < ph.p_memsz) entry_ok = true;
  if (!entry_ok)
    bad(fmt::format("kernel ELF entry point {:#x} is not inside a loaded segment (not a "
                    "vmlinux linked for physical-address entry?)", eh.e_entry));

  // Everything checked: only now is guest memory touched.
  LoadedKernel k;
  k.entry = eh.e_entry;
  k.low = UINT64_MAX;
  for (const auto& ph : loads) {
    uint8_t* dst = *mem.translate(ph.p_paddr, ph.p_memsz);
    std::memcpy(dst, image.data() + ph.p_offset, ph.p_filesz);
    std::memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
    k.low = std::min(k.low, ph.p_paddr);
    k.high = std::max(k.high, ph.p_paddr + ph.p_memsz);
  }
  return k;
}

LoadedKernel load_elf_kernel_file(const std::string& path, const memory::GuestMemory& mem,
                                  uint64_t ram_end) {
  common::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) common::throw_errno(fmt::format("open kernel {}", path));
  struct stat st;
  common::check(::fstat(fd.get(), &st), "stat kernel {}", path);
  if (!S_ISREG(st.st_mode)) throw std::invalid_argument(fmt::format("kernel {}: not a regular file", path));
  std::vector<uint8_t> image(static_cast<size_t>(st.st_size));
  if (!image.empty() && !common::read_exact(fd.get(), image.data(), image.size(), path.c_str()))
    throw std::invalid_argument(fmt::format("kernel {}: file is empty", path));
  try {
    return load_elf_kernel(image, mem, ram_end);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(fmt::format("kernel {}: {}", path, e.what()));
  }
}

}  // namespace frakti::vmm::arch::x86_64
