#pragma once
// Why a VM stopped, and the frakti-vmm exit status each reason maps to.

namespace frakti::vmm::vcpu {

enum class StopReason {
  poweroff,   ///< guest powered off (power-off port, SYSTEM_EVENT shutdown, HLT without LAPIC)
  host_stop,  ///< the host asked (SIGTERM/SIGINT, control socket)
  vmm_error,  ///< the VMM failed (setup, a KVM ioctl, a device)
  reboot,     ///< guest reset (i8042 0xFE, SYSTEM_EVENT reset)
  crash,      ///< triple fault, internal error, failed entry, SYSTEM_EVENT crash
};

/// Process exit status: 0 powered off (or stopped by the host), 1 VMM error, 2 guest reboot,
/// 3 guest crash.
inline int exit_status(StopReason r) {
  switch (r) {
    case StopReason::poweroff:
    case StopReason::host_stop: return 0;
    case StopReason::vmm_error: return 1;
    case StopReason::reboot: return 2;
    case StopReason::crash: return 3;
  }
  return 1;
}

inline const char* to_string(StopReason r) {
  switch (r) {
    case StopReason::poweroff: return "guest powered off";
    case StopReason::host_stop: return "stopped by the host";
    case StopReason::vmm_error: return "VMM error";
    case StopReason::reboot: return "guest rebooted";
    case StopReason::crash: return "guest crashed";
  }
  return "?";
}

}  // namespace frakti::vmm::vcpu
