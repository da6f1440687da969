#pragma once
// Copies of host paths for a VM container's host-path mounts (CRI Mount.host_path), until a
// shared file system lands: the host file or directory tree is read at CreateContainer and
// sent to the agent in PutFiles requests. Changes on either side are not seen by the other.

#include <cstdint>
#include <filesystem>
#include <vector>

#include "proto/agent/agent.pb.h"

namespace frakti::cri::shim {

/// What one mount may copy in; past either limit the container is refused.
struct HostFileLimits {
  uint64_t max_bytes = 32ull << 20;
  uint32_t max_entries = 10000;
  /// Data per PutFiles request (the agent protocol's frames hold 4 MiB).
  uint64_t batch_bytes = 2ull << 20;
};

/// The PutFiles batches (entries only: container id and index unset) that rebuild host_path
/// in the guest. A top-level symlink is followed; symlinks inside a directory are copied as
/// symlinks; sockets, FIFOs and devices are skipped. Throws std::runtime_error naming the
/// path and the limit when it is missing, unreadable or too large.
std::vector<agent::v1::PutFilesRequest> snapshot_host_path(const std::filesystem::path& host_path,
                                                           const HostFileLimits& limits = {});

}  // namespace frakti::cri::shim
