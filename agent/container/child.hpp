#pragma once
// The code that runs in a freshly cloned child, before execve: turning the agent's copy into
// the container's process. Nothing here returns to the agent's event loop; failures are
// reported through the sync channel (sync.hpp) and end the child.

#include <sys/types.h>

#include <string>
#include <vector>

#include "agent/container/passwd.hpp"
#include "agent/container/spec.hpp"
#include "agent/process/stdio.hpp"

namespace frakti::agent::container {

/// Where the overlay's parts are (decided by the parent, mounted by the child).
struct RootfsPlan {
  std::string lower;        // the image drive's mount (or a directory in host test mode)
  std::string scratch;      // tmpfs mount point for the upper layer (tmpfs kind)
  std::string upper, work;  // overlay upper and work dirs
  std::string rootfs;       // the overlay's mount point
  bool upper_on_tmpfs = true;
  uint64_t tmpfs_size = 0;
};

/// rootfs.cpp: mounts the overlay and the spec's mounts, pivots into the rootfs, writes the
/// sysctls, masks and write-protects paths. Runs in the child's new mount namespace.
void prepare_rootfs(const ContainerSpec& spec, const RootfsPlan& plan);
/// rootfs.cpp: creates the standard device nodes and links in a fresh /dev tmpfs.
void populate_dev(const std::string& dev);

/// process_setup.cpp: reads the container's /etc/passwd and /etc/group (the current root).
ResolvedUser resolve_container_user(const UserSpec& user);
/// process_setup.cpp: stdio, session, rlimits, OOM score, umask, user, capabilities,
/// no_new_privs, cwd, in that order. Without no_new_privileges a seccomp profile is loaded
/// here, before the user switch (loading one later would need CAP_SYS_ADMIN), as runc does.
void apply_process_settings(const ProcessSpec& spec, const ResolvedUser& user,
                            process::ChildStdio& stdio, const std::string& seccomp_json);
/// process_setup.cpp: the environment the process gets (HOME and PATH added when missing).
std::vector<std::string> process_environment(const ProcessSpec& spec, const ResolvedUser& user);
/// process_setup.cpp: seccomp (when a profile is given and no_new_privileges is set), then
/// execve. Throws on failure.
/// Container init (CreateContainerRequest.init): forks with every signal blocked; returns the
/// child's pid in the parent (which must then call run_container_init) and 0 in the child.
pid_t fork_behind_init(bool terminal);
/// PID 1's loop: forwards signals to child, reaps every exit, and leaves with child's status.
[[noreturn]] void run_container_init(pid_t child, bool terminal);

[[noreturn]] void exec_process(const ProcessSpec& spec, const ResolvedUser& user,
                               const std::string& seccomp_json);

}  // namespace frakti::agent::container
