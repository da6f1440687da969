#pragma once
// VmProcess: one frakti-vmm child process. Owns the process (killed and reaped on
// destruction unless released) and knows how to read its exit: the VMM's exit codes say
// whether the guest powered off, rebooted or crashed, or the VMM itself failed.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace frakti::sandbox {

/// Where the guest's pieces come from.
struct GuestAssets {
  std::filesystem::path vmm;     ///< frakti-vmm
  std::filesystem::path kernel;  ///< uncompressed vmlinux
  std::filesystem::path initrd;  ///< the pod initrd (frakti-agent as /init)

  /// Next to the running program: <bin>/frakti-vmm, <bin>/../guest/{vmlinux,agent-initrd.img};
  /// FRAKTI_GUEST_DIR overrides the guest directory. Throws naming a missing file and how to
  /// build it.
  static GuestAssets locate();
};

/// One virtio-blk drive.
struct Drive {
  std::filesystem::path path;  ///< empty: a reserved slot with no media yet
  bool read_only = false;
  std::string serial;
};

/// Everything frakti-vmm is started with.
struct VmConfig {
  GuestAssets assets;
  unsigned cpus = 1;
  unsigned memory_mib = 256;
  std::vector<Drive> drives;
  std::filesystem::path vsock_uds;     ///< the hybrid vsock socket (host side)
  unsigned vsock_cid = 3;
  std::filesystem::path control_socket;  ///< empty: none
  std::filesystem::path console_log;     ///< the guest's serial console
  std::filesystem::path vmm_log;         ///< frakti-vmm's own stdout and stderr
  std::string extra_cmdline;
  /// The VMM gets SIGKILL when the thread that started it dies, so a killed vmctl never
  /// leaves a VM behind.
  bool die_with_parent = true;
  std::string log_level;  ///< frakti-vmm --log-level; empty = its default
};

/// How a VMM ended.
struct VmExit {
  enum class Kind { poweroff, reboot, crash, vmm_error, killed };
  Kind kind;
  int code = 0;    ///< exit status (Kind != killed)
  int signal = 0;  ///< Kind == killed
  /// "guest powered off", "frakti-vmm failed (exit 1)", "killed by signal 9", ...
  std::string describe() const;
};

class VmProcess {
 public:
  /// Starts frakti-vmm. Throws std::system_error when it cannot be started.
  static VmProcess spawn(const VmConfig& config);
  /// Takes over a VMM this process did not start (or started earlier): no reaping, only
  /// liveness checks and signals.
  static VmProcess adopt(pid_t pid);

  VmProcess(VmProcess&& other) noexcept;
  VmProcess& operator=(VmProcess&& other) noexcept;
  VmProcess(const VmProcess&) = delete;
  VmProcess& operator=(const VmProcess&) = delete;
  /// Kills and reaps the VMM if it still runs and is ours.
  ~VmProcess();

  pid_t pid() const { return pid_; }
  /// Non-blocking: the exit once it happened.
  std::optional<VmExit> poll();
  /// Waits up to limit for the exit.
  std::optional<VmExit> wait_for(std::chrono::milliseconds limit);
  /// SIGKILL, then reap (our child) or wait until it is gone (adopted).
  VmExit kill();
  /// Leaves the process running and forgets it.
  pid_t release();

 private:
  explicit VmProcess(pid_t pid, bool child) : pid_(pid), child_(child) {}
  pid_t pid_ = -1;
  bool child_ = false;
  std::optional<VmExit> exit_;
};

/// The argument vector spawn() runs (tests and logs show it).
std::vector<std::string> vmm_command_line(const VmConfig& config);

}  // namespace frakti::sandbox
