#pragma once
// The container a user or kubelet asks for, turned into the agent's CreateContainerRequest
// with the defaults every serious runtime applies (containerd's and Docker's): the image's
// Entrypoint/Cmd/Env/WorkingDir/User under the caller's overrides, the default capability
// set, the standard /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys mounts, masked and
// read-only /proc paths, and cgroup limits. One place, so vmctl and the CRI server agree.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "image/manifest.hpp"
#include "proto/agent/agent.pb.h"

namespace frakti::sandbox {

/// What the caller chose; empty/unset fields take the image's value or the default.
struct ContainerOptions {
  std::string id;
  /// virtio-blk serial of the image drive holding the image's read-only filesystem.
  std::string image_drive_serial = "image";
  std::string image_fs_type = "erofs";
  std::optional<std::vector<std::string>> entrypoint;  ///< replaces the image's (and drops its Cmd)
  std::vector<std::string> cmd;                        ///< replaces the image's Cmd when not empty
  std::vector<std::string> env;                        ///< KEY=VALUE, over the image's
  std::string working_dir;
  std::string user;  ///< "name", "uid", "uid:gid", "name:group"
  std::string hostname;
  bool terminal = false;
  uint32_t terminal_rows = 0, terminal_cols = 0;
  bool read_only_rootfs = false;
  std::vector<std::string> cap_add;   ///< "NET_ADMIN" or "CAP_NET_ADMIN"; "ALL"
  std::vector<std::string> cap_drop;  ///< same; "ALL" drops the defaults
  bool privileged = false;            ///< every capability, no masked paths
  int64_t memory_limit_bytes = 0;
  double cpus = 0;  ///< CPU quota in CPUs (1.5 = 150 ms per 100 ms)
  int64_t pids_limit = 0;
  /// A minimal init as PID 1 that forwards signals and reaps orphans (docker run --init);
  /// on by default so `kill -9 $$` and Ctrl-C behave as on a plain Linux host.
  bool init = true;
  /// Writable layer size in guest memory (0 = the agent's default).
  uint64_t overlay_size_bytes = 0;
};

/// Docker's default capabilities ("CAP_CHOWN", ...).
const std::vector<std::string>& default_capabilities();

/// The process command line: Entrypoint + Cmd after overrides. Throws std::invalid_argument
/// when both are empty (the image names no command and the caller gave none).
std::vector<std::string> resolve_command(const image::ImageConfig& image, const ContainerOptions& opts);

/// Env of the image with the caller's entries replacing same-named ones; PATH defaulted;
/// HOSTNAME and TERM (terminal) added like Docker.
std::vector<std::string> resolve_env(const image::ImageConfig& image, const ContainerOptions& opts);

/// The whole request. stdio stream ids are left 0 for the caller to fill.
agent::v1::CreateContainerRequest make_create_request(const image::ImageConfig& image, const ContainerOptions& opts);

/// Fills a Process's user from "name", "uid", "uid:gid" or "name:group"; throws
/// std::invalid_argument for an unparsable spec.
void set_user(agent::v1::Process& process, const std::string& spec);

}  // namespace frakti::sandbox
