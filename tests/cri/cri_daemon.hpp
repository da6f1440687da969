#pragma once
// CriDaemon: the real frakti daemon, started for a test with its own root, state directory and
// socket, and the gRPC stubs a CRI client (kubelet, crictl, critest) would use on it.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "proto/cri/api.grpc.pb.h"

namespace frakti::test {

namespace rt = ::runtime::v1;

class CriDaemon {
 public:
  /// Makes the directories and loads the busybox image into the root (no daemon yet).
  CriDaemon();
  /// Removes every pod through the API, stops the daemon, kills any shim left, deletes dirs.
  ~CriDaemon();

  /// Starts build/bin/frakti with the test's directories plus extra flags; waits for the
  /// socket. Throws with the daemon's log when it does not come up.
  void start(const std::vector<std::string>& extra = {});
  /// SIGKILL, as a crash would.
  void kill9();
  /// SIGTERM and wait.
  void stop();

  rt::RuntimeService::Stub& runtime() { return *runtime_; }
  rt::ImageService::Stub& images() { return *images_; }

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path root() const { return dir_ / "root"; }
  const std::filesystem::path& state() const { return state_; }
  std::filesystem::path socket() const { return dir_ / "frakti.sock"; }
  std::filesystem::path log_dir() const { return dir_ / "logs"; }
  /// What pods left in the state directory, one path per line: any file, and any directory
  /// but the runc backend's empty skeleton (runc/ and its direct subdirectories).
  std::string leftovers() const;
  /// The daemon's own output so far.
  std::string daemon_log() const;
  /// The image name tests use ("busybox").
  static constexpr const char* kImage = "busybox";

 private:
  std::filesystem::path dir_, state_;
  pid_t pid_ = -1;
  std::unique_ptr<rt::RuntimeService::Stub> runtime_;
  std::unique_ptr<rt::ImageService::Stub> images_;
};

/// A context with a deadline (every test call has one).
std::unique_ptr<grpc::ClientContext> deadline(std::chrono::seconds s = std::chrono::seconds(120));

/// A minimal valid pod config: name, namespace "test", a fresh uid, log directory, hostname.
rt::PodSandboxConfig pod_config(const std::string& name, const std::filesystem::path& log_dir);
/// A busybox container running cmd, logging to <name>.log.
rt::ContainerConfig container_config(const std::string& name, const std::vector<std::string>& cmd);

/// Every process whose command line contains needle (pids).
std::vector<pid_t> processes_matching(const std::string& needle);

}  // namespace frakti::test
