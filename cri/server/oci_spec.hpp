#pragma once
// The OCI runtime specs (config.json) of runc pods: the infra container that holds a pod's
// namespaces, and each container of the pod joining them. Built from the CRI configs and the
// image's config with the defaults CRI-O and containerd apply (Docker's capabilities, the
// standard /proc, /dev, /sys mounts, masked and read-only /proc paths). Pure functions over
// their inputs plus reads of the container's rootfs (/etc/passwd) and the host (/proc/self/
// status, /dev for privileged containers), so they are unit-testable without runc.
//
// Every CRI value that runc would reject or that would reach outside the pod is refused here
// as a CriError with INVALID_ARGUMENT (or UNIMPLEMENTED for what frakti does not do yet).

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "image/manifest.hpp"
#include "proto/cri/api.pb.h"

namespace frakti::cri {

namespace rt = ::runtime::v1;

/// Where the pod's shared files and namespaces are.
struct PodPaths {
  pid_t infra_pid = 0;                ///< the infra process, for /proc/<pid>/ns/<type>
  std::filesystem::path resolv_conf;  ///< bind-mounted at /etc/resolv.conf
  std::filesystem::path hostname;     ///< bind-mounted at /etc/hostname
  /// The pod's /dev/shm (a tmpfs shared by its containers, as they share the IPC namespace);
  /// empty: each container gets its own (or the host's with host IPC).
  std::filesystem::path shm;
  /// PID namespace mode TARGET: the target container's process, whose PID namespace the
  /// container joins (the backend checked it runs in the same pod); 0 otherwise.
  pid_t target_pid = 0;
};

/// The pod's sysctls, checked: namespaced ones only (net.*, IPC ones, kernel.hostname/
/// domainname), and none for a namespace the pod shares with the host.
std::map<std::string, std::string> pod_sysctls(const rt::PodSandboxConfig& pod);

/// runc's cgroupsPath (cgroupfs syntax) for the infra or a container: under the pod's
/// cgroup_parent, or /frakti when kubelet gave none.
std::string cgroups_path(const rt::PodSandboxConfig& pod, const std::string& id);

/// The infra container's spec: frakti-pause from rootfs, new namespaces for what the pod does
/// not share with the host, the pod's hostname, sysctls and seccomp profile (as containerd
/// applies it to its sandbox container). Throws INVALID_ARGUMENT before anything is made.
nlohmann::json infra_spec(const rt::PodSandboxConfig& pod, const std::filesystem::path& rootfs,
                          const std::string& cgroups_path);

/// A container's spec. rootfs is the mounted (merged) root filesystem; the image's
/// /etc/passwd and /etc/group are read from it, confined to it, to resolve user names.
nlohmann::json container_spec(const rt::PodSandboxConfig& pod, const rt::ContainerConfig& c,
                              const image::ImageConfig& image, const std::filesystem::path& rootfs,
                              const PodPaths& paths, const std::string& cgroups_path);

/// A container's linux.seccomp (null: no filter) from its security context, its deprecated
/// seccomp_profile_path, or else the pod's (containerd's and CRI-O's order). Unset and
/// Unconfined mean no filter, as does privileged; RuntimeDefault is seccomp_default.hpp's
/// profile for caps; Localhost reads the host file localhost_ref. (runc_seccomp.cpp)
nlohmann::json container_seccomp(const rt::PodSandboxConfig& pod, const rt::ContainerConfig& c,
                                 const std::vector<std::string>& caps);

/// The infra container's linux.seccomp (null: no filter): the profile of the pod's
/// LinuxSandboxSecurityContext or its deprecated seccomp_profile_path, by the same rules as
/// containers, for no capabilities (frakti-pause has none); none for a privileged pod.
/// (runc_seccomp.cpp)
nlohmann::json sandbox_seccomp(const rt::PodSandboxConfig& pod);

/// A Localhost seccomp profile: the host file path (absolute, at most 1 MiB), a JSON object
/// with an SCMP_ACT_* defaultAction, in OCI or Docker format (Docker's archMap and
/// includes/excludes are resolved for x86_64 and caps). INVALID_ARGUMENT naming the path
/// when missing or malformed. (runc_seccomp.cpp)
nlohmann::json load_seccomp_profile(const std::string& path, const std::vector<std::string>& caps);

/// The profile a deprecated seccomp_profile_path names: "unconfined", "runtime/default",
/// "docker/default" or "localhost/<absolute path>"; anything else is INVALID_ARGUMENT.
/// (runc_seccomp.cpp)
rt::SecurityProfile legacy_seccomp_profile(const std::string& value);

/// uid, gid and the supplementary groups of a user spec ("name", "uid", "uid:gid",
/// "name:group", "" = root) from passwd/group file contents (empty when the image has none).
struct ResolvedUser {
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> groups;
};
/// (runc_identity.cpp)
ResolvedUser resolve_user(const std::string& spec, const std::string& passwd,
                          const std::string& group);

/// The regular file rel inside rootfs, resolved as if rootfs were / (an image's symlinks
/// cannot lead to the host's files); empty when missing, capped at 4 MiB. (runc_identity.cpp)
std::string read_in_root(const std::filesystem::path& rootfs, const char* rel);

/// Every capability in this process's bounding set ("CAP_CHOWN", ...): a privileged
/// container gets these, since the host may lack some (CAP_SYS_RESOURCE here).
std::vector<std::string> bounding_capabilities();

/// A container's capability list: Docker's defaults, then the CRI drops and adds ("ALL",
/// names with or without "CAP_"). Unknown names are INVALID_ARGUMENT.
std::vector<std::string> container_capabilities(const rt::Capability& caps);

}  // namespace frakti::cri
