#pragma once
// ContainerSpec / ProcessSpec: a CreateContainerRequest or ExecProcessRequest checked and
// turned into plain values (the OCI runtime-spec subset a pod needs). Everything the host
// sends passes through parse_* first; the creation code trusts what comes out (names resolved
// to numbers, options to mount flags, paths absolute).

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/sys/capabilities.hpp"
#include "proto/agent/agent.pb.h"

namespace frakti::agent::container {

struct UserSpec {
  /// Resolved against the container's /etc/passwd when set; uid/gid ignored then.
  std::optional<std::string> username;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
};

struct RlimitSpec {
  int resource = 0;
  uint64_t soft = 0;
  uint64_t hard = 0;
};

struct ProcessSpec {
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  UserSpec user;
  bool terminal = false;
  uint32_t stdin_stream = 0, stdout_stream = 0, stderr_stream = 0;
  unsigned rows = 0, cols = 0;
  sys::CapabilitySets capabilities;
  bool no_new_privileges = false;
  std::vector<RlimitSpec> rlimits;
  std::optional<int> oom_score_adj;
  std::optional<mode_t> umask;
};

struct MountSpec {
  std::string destination;        // absolute, inside the container
  std::string type;               // "bind", "tmpfs", "proc", ...
  std::string source;             // a guest path, or the fs name for pseudo file systems
  std::string drive_serial;       // set instead of source for block volumes
  unsigned long flags = 0;        // MS_* from the options (without propagation flags)
  unsigned long propagation = 0;  // MS_PRIVATE, MS_SLAVE, ... (| MS_REC)
  std::string data;               // options the file system parses itself ("size=64m,mode=755")
  bool bind = false;
  bool recursive = false;  // rbind
  bool device_node = false;  // a bind of a drive's device node (blockdev): kept openable (not nodev)
};

enum class UpperKind { tmpfs, drive };

struct RootfsSpec {
  std::string drive_serial;
  std::string fs_type;
  UpperKind upper = UpperKind::tmpfs;
  std::string upper_drive_serial;
  std::string upper_drive_fs_type;
  uint64_t upper_size_limit = 0;
};

struct ResourcesSpec {
  int64_t memory_limit = 0;
  int64_t memory_reservation = 0;
  int64_t memory_swap_limit = 0;
  int64_t cpu_quota_us = 0;
  uint64_t cpu_period_us = 0;
  uint64_t cpu_weight = 0;  // after converting cpu_shares
  std::string cpuset_cpus, cpuset_mems;
  int64_t pids_limit = 0;
};

/// Which namespaces the container gets of its own (CLONE_NEW* flags for clone3; CLONE_NEWNS is
/// always set) and whether it joins the pod-wide PID namespace.
struct NamespacesSpec {
  uint64_t clone_flags = 0;
  bool pod_pid = false;
  bool own(uint64_t flag) const { return (clone_flags & flag) != 0; }
};

struct ContainerSpec {
  std::string id;
  RootfsSpec rootfs;
  ProcessSpec process;
  std::string hostname;
  std::vector<MountSpec> mounts;
  bool readonly_rootfs = false;
  std::vector<std::string> masked_paths, readonly_paths;
  ResourcesSpec resources;
  std::vector<std::pair<std::string, std::string>> sysctls;
  NamespacesSpec namespaces;
  std::string seccomp_profile_json;
  bool init = false;  ///< a minimal init as PID 1 (see container_init.cpp)
};

/// Checks a CreateContainerRequest; throws AgentError(CODE_INVALID_ARGUMENT) naming the field
/// and the value on the first problem.
ContainerSpec parse_container_spec(const v1::CreateContainerRequest& request);
/// Checks a Process; `field` names it in errors ("process", "exec_process.process").
ProcessSpec parse_process_spec(const v1::Process& process, const std::string& field);
/// Checks cgroup limits; throws AgentError(CODE_INVALID_ARGUMENT) naming the field.
ResourcesSpec parse_resources(const v1::Resources& resources);
/// Checks one mount; index names it in errors.
MountSpec parse_mount_spec(const v1::Mount& mount, int index);

/// Container and exec ids: 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'.
bool valid_id(const std::string& id);
/// virtio-blk serials: 1-20 of [A-Za-z0-9_.-] (the device holds 20 bytes), not "." or "..".
bool valid_serial(const std::string& serial);

}  // namespace frakti::agent::container
