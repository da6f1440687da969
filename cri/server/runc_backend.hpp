#pragma once
// RuncBackend: privileged and host-namespace pods (DESIGN decision 2) as plain runc
// containers on the host, the way CRI-O runs them:
//   pod        an infra container running frakti-pause that holds the pod's network, IPC,
//              UTS and (shared) PID namespaces; containers join them by /proc/<pid>/ns path
//   container  the image's erofs file loop-mounted once per image + a per-container overlay,
//              an OCI spec from oci_spec.cpp, and a conmon monitor that runs `runc create`
//              and then keeps stdio, the CRI log and the exit code (exit file) alive
//              whether or not frakti runs
// Layout: <state>/runc/state (runc --root), <state>/runc/images (erofs mounts),
// <state>/runc/<id>/ (bundle of a pod's infra or of a container; rootfs inside; a pod's
// bundle also holds resolv.conf, hostname, members/<container id> and the shm tmpfs),
// <state>/runc/exits/<id> (conmon's exit files), <root>/containers/<id>/overlay (upper, work).
// Networking: a fresh network namespace with loopback only (CNI is not wired yet).

#include <filesystem>

#include "cri/server/backend.hpp"
#include "cri/server/options.hpp"
#include "cri/server/runc_host.hpp"

namespace frakti::cri {

class RuncBackend : public Backend {
 public:
  explicit RuncBackend(const Options& opts);

  void run_pod(st::SandboxRecord& pod) override;
  void stop_pod(st::SandboxRecord& pod) override;
  void remove_pod(const st::SandboxRecord& pod) override;
  bool pod_alive(const st::SandboxRecord& pod) override;
  void create_container(const st::SandboxRecord& pod, st::ContainerRecord& c,
                        const ImageUse& image) override;
  void start_container(const st::SandboxRecord& pod, st::ContainerRecord& c) override;
  void stop_container(const st::SandboxRecord& pod, st::ContainerRecord& c,
                      std::chrono::seconds timeout, int stop_signal) override;
  void remove_container(const st::SandboxRecord& pod, const st::ContainerRecord& c) override;
  bool refresh(const st::SandboxRecord& pod, st::ContainerRecord& c) override;
  ExecResult exec_sync(const st::SandboxRecord& pod, const st::ContainerRecord& c,
                       const std::vector<std::string>& cmd, std::chrono::seconds timeout) override;
  rt::ContainerStats stats(const st::SandboxRecord& pod, const st::ContainerRecord& c) override;
  void reopen_log(const st::SandboxRecord& pod, const st::ContainerRecord& c) override;
  void update_resources(const st::SandboxRecord& pod, const st::ContainerRecord& c,
                        const rt::LinuxContainerResources& resources) override;
  void sweep(const std::set<std::string>& pod_ids, const std::set<std::string>& container_ids) override;

 private:
  /// runc <args> with --root; returns the result (no throw on a non-zero status).
  ProcessResult runc(std::vector<std::string> args,
                     std::chrono::milliseconds timeout = std::chrono::seconds(60));
  /// Starts conmon + `runc create` for the bundle <state>/runc/<id>.
  /// terminal: the process gets a pseudo-terminal (CRI tty).
  pid_t create(const std::string& id, const std::filesystem::path& log_path, bool terminal = false);
  /// Waits until conmon wrote id's exit file; false when limit passed first.
  bool wait_exit(const std::string& id, std::chrono::milliseconds limit);
  /// Sends sig to id (every process of it with all); ignores "not running".
  void kill(const std::string& id, int sig, bool all);
  /// runc delete --force id; ignores "does not exist".
  void remove_runc(const std::string& id);
  /// The running process whose PID namespace c joins (mode TARGET), 0 for other modes:
  /// NOT_FOUND for an unknown target, FAILED_PRECONDITION when it is in another pod or
  /// not running.
  pid_t target_pid(const st::SandboxRecord& pod, const rt::ContainerConfig& c);
  std::filesystem::path bundle(const std::string& id) const { return dir_ / id; }
  std::filesystem::path exit_file(const std::string& id) const { return dir_ / "exits" / id; }
  std::filesystem::path overlay_dir(const std::string& id) const {
    return opts_.root_directory / "containers" / id / "overlay";
  }
  std::filesystem::path members(const std::string& pod_id) const {
    return bundle(pod_id) / "members";
  }

  Options opts_;
  std::filesystem::path dir_;  ///< <state>/runc
  std::filesystem::path runc_bin_, conmon_bin_, pause_bin_;
  ImageMounts images_;
};

}  // namespace frakti::cri
