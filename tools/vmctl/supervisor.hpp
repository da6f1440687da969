#pragma once
// The life of one `vmctl run` container, from VM boot to teardown. In the foreground it runs
// inside vmctl; with -d, vmctl forks it into its own session and it keeps running after
// vmctl returns (the same role as a containerd shim or conmon).
//
//   boot frakti-vmm (image drive ro, serial "image") -> agent over hybrid vsock -> set clock
//   -> CreateContainer (stdio streams) -> StartContainer -> record "running"
//   -> forward signals and window size, pump stdio -> init exits -> drain output
//   -> Shutdown (VM powers off) -> record "exited" with the code (or delete it, --rm)
//
// Any failure tears down what was made (VM, sockets, the record when --rm) and surfaces as a
// SupervisorError naming the step, with the guest console's last lines when the VM died.

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "image/manifest.hpp"
#include "sandbox/container_spec.hpp"
#include "sandbox/vm_process.hpp"
#include "tools/vmctl/state.hpp"

namespace frakti::vmctl {

/// A failure before or instead of the container's own exit; exit_code follows Docker
/// (125 vmctl/VM trouble, 126 command not executable, 127 command not found).
class SupervisorError : public std::runtime_error {
 public:
  SupervisorError(const std::string& what, int exit_code) : std::runtime_error(what), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

struct RunPlan {
  ContainerRecord record;
  sandbox::ContainerOptions container;
  image::ImageConfig image_config;
  std::filesystem::path fs_image;
  unsigned cpus = 1;
  unsigned memory_mib = 256;
  bool interactive = false;
  bool terminal = false;
  bool detached = false;
  std::chrono::milliseconds boot_timeout{120000};
  std::string vmm_log_level;
  /// Detached: written "ok\n" once the container runs, or "error <code> <message>\n".
  int notify_fd = -1;
};

/// Runs the container to its end; returns its exit code (128+N for signal N).
int supervise(const StateDir& state, RunPlan& plan);

/// The last lines of a log file, indented, for error messages.
std::string tail_of(const std::filesystem::path& file, int lines);

}  // namespace frakti::vmctl
