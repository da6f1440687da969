// The container's file system view, built inside its new mount namespace (see child.hpp).

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "agent/agent_error.hpp"
#include "agent/container/child.hpp"
#include "agent/container/safe_path.hpp"
#include "agent/sys/files.hpp"
#include "agent/sys/mount.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"

namespace frakti::agent::container {

namespace {

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A container may open only the device nodes the agent gives it (populate_dev, and the
// drives a spec asks for as raw block devices): every other mount it gets is nodev, whatever
// the spec says, except devpts, whose nodes the kernel makes. In the guest there is no device
// cgroup (cgroup v2 needs an eBPF program for it), so this is what keeps a container holding
// CAP_MKNOD from making and opening a node for another container's drive.
unsigned long container_flags(const MountSpec& m) {
  return m.type == "devpts" || m.device_node ? m.flags : m.flags | MS_NODEV;
}

// The read-only, nosuid, nodev and noexec flags of the mount holding path.
unsigned long restrictions_of(const std::string& path) {
  struct statvfs v {};
  common::check(::statvfs(path.c_str(), &v), "statvfs {}", path);
  unsigned long flags = 0;
  if (v.f_flag & ST_RDONLY) flags |= MS_RDONLY;
  if (v.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (v.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (v.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  return flags;
}

void mount_one(const std::string& rootfs, const MountSpec& m) {
  bool file_target = m.bind && !is_directory(m.source);
  if (m.bind) {
    struct stat st {};
    if (::stat(m.source.c_str(), &st) < 0)
      common::throw_errno(fmt::format("bind mount source {} for {}", m.source, m.destination));
  }
  std::string dest = create_in_root(rootfs, m.destination, file_target);
  if (m.bind) {
    sys::mount(m.source, dest, "", MS_BIND | (m.recursive ? MS_REC : 0));
    // Bind mounts ignore flags on the first call; read-only and friends need a remount, which
    // sets every flag anew: the restrictions the source mount had are kept.
    sys::mount("", dest, "", MS_REMOUNT | MS_BIND | container_flags(m) | restrictions_of(dest));
  } else {
    std::string source = m.source.empty() ? m.type : m.source;
    sys::mount(source, dest, m.type, container_flags(m), m.data);
    if (m.type == "tmpfs" && m.destination == "/dev") populate_dev(dest);
  }
  if (m.propagation) sys::mount("", dest, "", m.propagation);
}

void pivot_into(const std::string& rootfs) {
  // pivot_root(".", ".") stacks the old root on top of the new one; unmounting "." then
  // removes the old root without needing a directory for it inside the image.
  common::check(::chdir(rootfs.c_str()), "chdir {}", rootfs);
  common::check(static_cast<int>(::syscall(SYS_pivot_root, ".", ".")), "pivot_root into {}",
                rootfs);
  sys::umount(".", MNT_DETACH);
  common::check(::chdir("/"), "chdir / after pivot_root");
}

void mask_path(const std::string& path) {
  std::string p = resolve_in_root("/", path);
  struct stat st {};
  if (::stat(p.c_str(), &st) < 0) return;  // nothing to hide
  if (S_ISDIR(st.st_mode)) {
    sys::mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0");
  } else {
    sys::mount("/dev/null", p, "", MS_BIND);
  }
}

void readonly_path(const std::string& path) {
  std::string p = resolve_in_root("/", path);
  struct stat st {};
  if (::stat(p.c_str(), &st) < 0) return;
  sys::mount(p, p, "", MS_BIND | MS_REC);
  sys::mount("", p, "", MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
}

void check_overlay_path(const std::string& path) {
  // overlayfs splits its options at ',' and lowerdir at ':'.
  if (path.find_first_of(",:") != std::string::npos) {
    throw AgentError(v1::Error::CODE_INVALID_ARGUMENT,
                     fmt::format("overlay layer path '{}' contains ',' or ':'", path));
  }
}

}  // namespace

void populate_dev(const std::string& dev) {
  // The container's /dev is a nodev tmpfs: each node is the agent's own, bind-mounted (a bind
  // mount keeps the flags of the devtmpfs it comes from) over an empty file.
  struct Node {
    const char* name;
    unsigned major, minor;
  };
  static const Node kNodes[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
                                {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  for (const auto& n : kNodes) {
    std::string source = std::string("/dev/") + n.name;
    struct stat st {};
    if (::stat(source.c_str(), &st) < 0 || !S_ISCHR(st.st_mode) ||
        st.st_rdev != makedev(n.major, n.minor))
      throw AgentError(v1::Error::CODE_INTERNAL,
                       fmt::format("the agent's {} is not the character device {}:{}, so "
                                   "containers cannot get it: the guest's devtmpfs should make "
                                   "it (check the guest kernel and the agent's /dev mount)",
                                   source, n.major, n.minor));
    std::string path = dev + "/" + n.name;
    common::Fd target(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0666));
    if (!target) common::throw_errno(fmt::format("create {}", path));
    sys::mount(source, path, "", MS_BIND);
  }
  static const std::pair<const char*, const char*> kLinks[] = {{"fd", "/proc/self/fd"},
                                                               {"stdin", "/proc/self/fd/0"},
                                                               {"stdout", "/proc/self/fd/1"},
                                                               {"stderr", "/proc/self/fd/2"},
                                                               {"ptmx", "pts/ptmx"}};
  for (const auto& [name, target] : kLinks) {
    std::string path = dev + "/" + name;
    if (::symlink(target, path.c_str()) < 0 && errno != EEXIST)
      common::throw_errno(fmt::format("symlink {}", path));
  }
  for (const char* d : {"pts", "shm", "mqueue"}) {
    std::string path = dev + "/" + d;
    if (::mkdir(path.c_str(), 0755) < 0 && errno != EEXIST)
      common::throw_errno(fmt::format("mkdir {}", path));
  }
}

void prepare_rootfs(const ContainerSpec& spec, const RootfsPlan& plan) {
  // 1. Nothing mounted from here on may propagate back into the agent's namespace.
  sys::mount("", "/", "", MS_REC | MS_PRIVATE);
  // 2. The writable upper layer: a tmpfs that lives and dies with this mount namespace.
  if (plan.upper_on_tmpfs) {
    std::string data = "mode=0700";
    if (plan.tmpfs_size) data += fmt::format(",size={}", plan.tmpfs_size);
    sys::mount("tmpfs", plan.scratch, "tmpfs", MS_NOSUID | MS_NODEV, data);
  }
  for (const auto& dir : {plan.upper, plan.work, plan.rootfs}) sys::make_dirs(dir);
  // 3. The overlay: read-only image below, writable layer above.
  for (const auto& p : {plan.lower, plan.upper, plan.work}) check_overlay_path(p);
  sys::mount("overlay", plan.rootfs, "overlay", MS_NODEV,
             fmt::format("lowerdir={},upperdir={},workdir={}", plan.lower, plan.upper, plan.work));
  // 4. The spec's mounts, in order (later ones may sit inside earlier ones). Destinations are
  //    resolved inside the rootfs, so an image symlink cannot point a mount outside it.
  for (const auto& m : spec.mounts) mount_one(plan.rootfs, m);
  // 5. Read-only rootfs: after the mount points were created in it.
  if (spec.readonly_rootfs)
    sys::mount("", plan.rootfs, "", MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV);
  // 6. Enter it; the agent's file system is gone from this namespace afterwards.
  pivot_into(plan.rootfs);
  // 7. sysctls, before /proc/sys may become read-only below.
  for (const auto& [key, value] : spec.sysctls) {
    std::string path = "/proc/sys/" + key;
    for (char& c : path) c = c == '.' ? '/' : c;
    sys::write_file(path, value);
  }
  // 8. Masked and read-only paths (often inside /proc and /sys, so after their mounts).
  for (const auto& p : spec.masked_paths) mask_path(p);
  for (const auto& p : spec.readonly_paths) readonly_path(p);
}

}  // namespace frakti::agent::container
