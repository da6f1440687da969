#pragma once
// The host-side pieces of runc pods that are not runc itself: running a helper program with
// its output captured and a deadline, starting conmon detached from the daemon, and the
// mounts of a container's root filesystem (the image's erofs file loop-mounted once per
// image, shared through a reference count on disk, plus a per-container overlay).

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace frakti::cri {

/// How a helper program ended.
struct ProcessResult {
  int status = 0;  ///< exit status, or 128 + signal
  bool timed_out = false;
  std::string out, err;
};

/// Runs argv[0] (a path) with stdin from /dev/null, capturing stdout and stderr (each capped
/// at max_output bytes). When timeout (> 0) passes, on_timeout runs (it may kill what the
/// program started) and the program is killed with SIGKILL.
ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::function<void()>& on_timeout = {},
                          size_t max_output = 16u << 20);

/// Where conmon puts things for one container.
struct ConmonArgs {
  std::string id;
  std::filesystem::path conmon, runc, runc_root;
  std::filesystem::path bundle;    ///< holds config.json; conmon adds ctl, winsz, attach
  std::filesystem::path pid_file;  ///< the container's init pid (written by runc)
  std::filesystem::path conmon_pid_file;
  std::filesystem::path log_path;    ///< CRI log (k8s-file)
  std::filesystem::path exit_dir;    ///< conmon writes <exit_dir>/<id> with the exit code
  std::filesystem::path socket_dir;  ///< attach sockets (short path)
  std::filesystem::path conmon_log;  ///< conmon's own stdout/stderr
  /// The container's process gets a pseudo-terminal (CRI tty): conmon takes its master
  /// from runc's console socket and logs what it reads as stdout.
  bool terminal = false;
};

/// Starts conmon, which daemonizes (its own session, reparented to init, so a killed daemon
/// leaves it running) and runs `runc create`. Returns conmon's pid once runc created the
/// container; throws CriError with runc's message when it did not.
pid_t start_conmon(const ConmonArgs& a, std::chrono::milliseconds timeout);

/// The image filesystem mounts, shared by every container of an image: <dir>/<hex> is the
/// erofs mount, <dir>/<hex>.users/<container id> its users. A restarted daemon finds the
/// counts where it left them.
class ImageMounts {
 public:
  explicit ImageMounts(std::filesystem::path dir) : dir_(std::move(dir)) {}
  /// Mounts the image (first user) and records user; returns the mount point.
  std::filesystem::path acquire(const std::string& image_id, const std::filesystem::path& fs_image,
                                const std::string& user);
  /// Drops user; unmounts the image when it was the last one. Idempotent.
  void release(const std::string& image_id, const std::string& user);

 private:
  std::filesystem::path dir_;
  std::mutex mu_;
};

/// Mounts an overlay of lower (read-only) with upper/work at target.
void mount_overlay(const std::filesystem::path& lower, const std::filesystem::path& upper,
                   const std::filesystem::path& work, const std::filesystem::path& target);
/// Mounts a tmpfs (nosuid, nodev, noexec) with options (mode=, size=) at target.
void mount_tmpfs(const std::filesystem::path& target, const std::string& options);
/// Unmounts target if it is a mount point (lazily when busy); ignores what is not mounted.
void unmount(const std::filesystem::path& target);
/// target is a mount point (its device differs from its parent's).
bool is_mount_point(const std::filesystem::path& target);

}  // namespace frakti::cri
