#include "vmm/arch/x86_64/boot_params.hpp"

#include <asm/bootparam.h>

#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "vmm/arch/x86_64/layout.hpp"

namespace frakti::vmm::arch::x86_64 {
namespace {

static_assert(sizeof(boot_params) == 4096, "struct boot_params must be one page");

constexpr uint16_t kBootFlag = 0xaa55;
constexpr uint32_t kHeaderMagic = 0x53726448;  // "HdrS"
constexpr uint8_t kLoaderUndefined = 0xff;     // no registered boot loader ID
constexpr uint32_t kKernelAlignment = 0x1000000;

}  // namespace

std::vector<E820Entry> e820_map(const std::vector<std::pair<uint64_t, uint64_t>>& ram) {
  std::vector<E820Entry> map;
  for (auto [gpa, size] : ram) {
    if (gpa == 0) {
      // Base memory stops where the MP table starts; [kMpTableAddr, 1 MiB) is left out of the
      // map (legacy BIOS area), so Linux never reuses the MP table's memory.
      map.push_back({0, kMpTableAddr, kE820Ram});
      if (size > kHighRamStart) map.push_back({kHighRamStart, size - kHighRamStart, kE820Ram});
    } else {
      map.push_back({gpa, size, kE820Ram});
    }
  }
  return map;
}

uint64_t initrd_address(uint64_t size, uint64_t kernel_end, uint64_t low_ram_end) {
  constexpr uint64_t page = 4096;
  if (size == 0 || size > low_ram_end)
    throw std::invalid_argument(fmt::format("initrd of {} bytes does not fit in guest RAM", size));
  uint64_t addr = (low_ram_end - size) & ~(page - 1);
  if (addr < kernel_end)
    throw std::invalid_argument(fmt::format(
        "initrd of {} MiB does not fit between the kernel (ends at {:#x}) and the end of low "
        "RAM ({:#x}); give the VM more --memory", (size + kMiB - 1) / kMiB, kernel_end,
        low_ram_end));
  return addr;
}

std::vector<uint8_t> build_boot_params(const BootParamsInput& in) {
  boot_params bp;
  std::memset(&bp, 0, sizeof bp);
  if (in.e820.size() > E820_MAX_ENTRIES_ZEROPAGE)
    throw std::invalid_argument(fmt::format("{} e820 entries exceed the zero page's {}",
                                            in.e820.size(), E820_MAX_ENTRIES_ZEROPAGE));
  bp.hdr.boot_flag = kBootFlag;
  bp.hdr.header = kHeaderMagic;
  bp.hdr.type_of_loader = kLoaderUndefined;
  bp.hdr.loadflags = LOADED_HIGH;
  bp.hdr.kernel_alignment = kKernelAlignment;
  bp.hdr.cmd_line_ptr = static_cast<uint32_t>(in.cmdline_addr);
  bp.ext_cmd_line_ptr = static_cast<uint32_t>(in.cmdline_addr >> 32);
  bp.hdr.cmdline_size = in.cmdline_size;
  bp.hdr.ramdisk_image = static_cast<uint32_t>(in.initrd_addr);
  bp.ext_ramdisk_image = static_cast<uint32_t>(in.initrd_addr >> 32);
  bp.hdr.ramdisk_size = static_cast<uint32_t>(in.initrd_size);
  bp.ext_ramdisk_size = static_cast<uint32_t>(in.initrd_size >> 32);
  bp.e820_entries = static_cast<uint8_t>(in.e820.size());
  for (size_t i = 0; i < in.e820.size(); i++) {
    bp.e820_table[i].addr = in.e820[i].addr;
    bp.e820_table[i].size = in.e820[i].size;
    bp.e820_table[i].type = in.e820[i].type;
  }
  std::vector<uint8_t> page(sizeof bp);
  std::memcpy(page.data(), &bp, sizeof bp);
  return page;
}

void write_cmdline(const memory::GuestMemory& mem, const std::string& cmdline) {
  if (cmdline.size() + 1 > kCmdlineMax)
    throw std::invalid_argument(fmt::format("kernel command line is {} bytes; the limit is {}",
                                            cmdline.size(), kCmdlineMax - 1));
  if (cmdline.find('\0') != std::string::npos)
    throw std::invalid_argument("kernel command line contains a NUL byte");
  std::vector<uint8_t> bytes(cmdline.begin(), cmdline.end());
  bytes.push_back(0);
  if (!mem.write(kCmdlineAddr, bytes))
    throw std::invalid_argument("guest RAM does not cover the command line area");
}

}  // namespace frakti::vmm::arch::x86_64
