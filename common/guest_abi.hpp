#pragma once
// Facts shared by the host (frakti-vmm, vmctl, frakti) and the guest (init, frakti-agent).
// Changing any of these changes the host/guest ABI: bump kAgentProtocolVersion as well.

#include <cstdint>

namespace frakti::guest_abi {

/// The guest's init writes kBootTimerMagic (one byte) to this I/O port once it is ready;
/// frakti-vmm timestamps the write (like Firecracker's boot timer device).
inline constexpr uint16_t kBootTimerPort = 0x0440;
inline constexpr uint8_t kBootTimerMagic = 123;

/// x86 without ACPI has no power-off device, so a guest's reboot(RB_POWER_OFF) only halts its
/// CPUs. To end the VM as "powered off" (frakti-vmm exit status 0) the guest's init writes
/// kPowerOffMagic (one byte) to kPowerOffPort; a reset (i8042, `reboot=k`) is a reboot (2).
inline constexpr uint16_t kPowerOffPort = 0x0441;
inline constexpr uint8_t kPowerOffMagic = 0x50;

/// Line printed on the serial console when the guest's init is ready, followed by
/// " uptime=<seconds>".
inline constexpr const char* kReadyLine = "frakti-guest: ready";

/// Kernel command line key: "frakti.poweroff=1" makes the minimal init power off once ready.
inline constexpr const char* kCmdlinePoweroff = "frakti.poweroff";

/// vsock port the agent listens on inside the guest.
inline constexpr uint32_t kAgentVsockPort = 1024;
/// Guest CID used when none is configured (2 is the host; 0-2 are reserved).
inline constexpr uint32_t kDefaultGuestCid = 3;

// Where the agent (default --state-dir) keeps the pod's resolv.conf and hosts written by
// ConfigureNetwork; the host bind-mounts them into each container of the pod.
inline constexpr const char* kGuestPodFilesDir = "/run/frakti/pod";
// Where PutFiles writes copies of host paths: <dir>/<container id>/<index>.
inline constexpr const char* kGuestHostFilesDir = "/run/frakti/files";

}  // namespace frakti::guest_abi
