// Killing and removing a container.

#include <signal.h>
#include <unistd.h>

#include "agent/container/container.hpp"
#include "common/log.hpp"

namespace frakti::agent::container {

void kill_container(const Container& c) noexcept {
  if (c.init && c.init->running()) ::kill(c.init->pid(), SIGKILL);
  // Without a PID namespace of its own, the init's death kills nothing else.
  if (c.cgroup.valid()) c.cgroup.signal_all(SIGKILL);
  for (const auto& [id, p] : c.execs) {
    if (p->running()) ::kill(p->pid(), SIGKILL);
  }
}

bool cleanup_container(Container& c) {
  c.sync.reset();
  c.init_stdio = {};
  bool removed = c.cgroup.remove();
  if (!removed)
    common::log::warn("agent-container", "cgroup of {} still busy; left behind", c.spec.id);
  // The overlay and its tmpfs lived in the container's mount namespace, gone with its last
  // process; only the empty mount-point directories remain here.
  for (const char* sub : {"/rootfs", "/upper", "/work", ""}) ::rmdir((c.scratch_dir + sub).c_str());
  return removed;
}

}  // namespace frakti::agent::container
