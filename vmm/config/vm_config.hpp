#pragma once
// VmConfig: everything frakti-vmm is told on its command line, validated up front so a bad
// flag is one clear error before any KVM work starts.
//
// Adding a device flag: add its settings to VmConfig, then one entry to the flag table in
// cli.cpp (name, argument, help, parser); the VM recipe (vm/vm.cpp) reads the new field.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/log.hpp"

namespace frakti::vmm::config {

/// Where the guest's serial console goes.
struct ConsoleConfig {
  enum class Kind { stdio, file, unix_socket, none };
  Kind kind = Kind::stdio;  ///< stdio: output to stdout, input from stdin (tty or pipe)
  /// Kind::file: output file (created or truncated). Kind::unix_socket: the socket frakti-vmm
  /// listens on (0600); one client at a time gets the output and types the input.
  std::string path;
};

/// One virtio-blk drive (--drive).
struct DriveConfig {
  std::optional<std::string> path;  ///< backing file; nullopt = an empty reserved slot
  bool read_only = false;
  std::string serial;  ///< GET_ID answer (at most 20 bytes); how the guest finds the drive
};

/// The virtio-vsock device (--vsock), exposed on the host as a Unix socket (hybrid protocol).
struct VsockConfig {
  uint64_t guest_cid = 3;
  std::string uds_path;
};

/// One virtio-net device (--net) backed by a TAP in frakti-vmm's network namespace.
struct NetConfig {
  std::string tap;  ///< TAP device name (attached to, or created when missing)
  /// Guest MAC; the default is locally administered (02:...) and differs per --net.
  std::array<uint8_t, 6> mac{};
};

struct VmConfig {
  std::string kernel;                  ///< uncompressed vmlinux (ELF)
  std::string initrd;                  ///< initramfs image
  std::optional<std::string> cmdline;  ///< replaces default_cmdline() when given
  std::vector<std::string> append;     ///< extra kernel parameters after the base line
  uint32_t cpus = 1;
  uint64_t memory_mib = 256;
  ConsoleConfig console;
  common::log::Level log_level = common::log::Level::info;
  std::vector<DriveConfig> drives;     ///< in slot order
  std::optional<VsockConfig> vsock;
  bool seccomp = true;  ///< per-thread seccomp filters; --no-seccomp (debugging only) turns them off
  std::vector<NetConfig> nets;         ///< in slot order, after the drives and vsock
  /// Control socket path (--control); nullopt = no control socket.
  std::optional<std::string> control_path;

  /// The kernel command line without virtio_mmio.device= entries (the VM adds those).
  std::string base_cmdline() const;
};

/// The command line used when --cmdline is not given: serial console, reset through the
/// i8042 (`reboot=k`), reboot on panic, no PCI or modules, quiet boot, no timer or
/// clocksource-watchdog checks (both cost seconds under nested virtualisation).
std::string default_cmdline();

inline constexpr uint32_t kMaxCpus = 32;
inline constexpr uint64_t kMinMemoryMib = 64;
inline constexpr uint64_t kMaxMemoryMib = 256 * 1024;
/// virtio-mmio slots (GSIs 5..23) shared by all virtio devices.
inline constexpr size_t kMaxVirtioDevices = 19;
inline constexpr size_t kMaxDriveSerial = 20;
/// Linux interface names hold at most 15 bytes (IFNAMSIZ - 1).
inline constexpr size_t kMaxTapName = 15;

}  // namespace frakti::vmm::config
