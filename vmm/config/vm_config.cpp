#include "vmm/config/vm_config.hpp"

namespace frakti::vmm::config {

std::string default_cmdline() {
  return "console=ttyS0 reboot=k panic=1 pci=off nomodules quiet i8042.noaux i8042.nomux "
         "i8042.nopnp i8042.dumbkbd tsc=reliable no_timer_check";
}

std::string VmConfig::base_cmdline() const {
  std::string line = cmdline ? *cmdline : default_cmdline();
  for (const auto& a : append) {
    if (!line.empty()) line += ' ';
    line += a;
  }
  return line;
}

}  // namespace frakti::vmm::config
