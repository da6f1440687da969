#pragma once
// The agent's duties as the guest's PID 1 (skipped in host test mode): base file systems,
// console, loopback, the readiness signal to the VMM, and ending the VM.

#include <string>

namespace frakti::agent::init {

/// The kernel's initramfs root ("rootfs") cannot be pivot_root'ed away, so containers could
/// not pivot_root out of it either. Like switch_root: copies /init onto a fresh tmpfs, moves
/// that tmpfs over /, chroots into it and re-executes /init with `marker` as its argument.
[[noreturn]] void move_off_initramfs(const char* marker);

/// Mounts /dev (devtmpfs), then makes /dev/console fds 0-2, then /proc, /sys, /dev/pts,
/// /dev/shm, /sys/fs/cgroup (cgroup2), /tmp and /run. Already-mounted ones are fine.
void mount_base_filesystems();
/// Brings the loopback interface up.
void bring_up_loopback();
/// Prints guest_abi::kReadyLine with the uptime and writes the boot-timer byte.
void announce_ready(const std::string& detail);
/// Turns the kernel's Ctrl-Alt-Del from an immediate reboot into SIGINT for PID 1
/// (reboot(RB_DISABLE_CAD)): the VMM's graceful stop types Ctrl-Alt-Del and init then shuts
/// down in order. Logs, and otherwise ignores, a failure.
void route_ctrl_alt_del_to_init();
/// Syncs, then powers the VM off (the VMM's power-off port, then reboot(RB_POWER_OFF)) or
/// reboots it. Never returns.
[[noreturn]] void end_vm(bool reboot);

}  // namespace frakti::agent::init
