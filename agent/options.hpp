#pragma once
// The agent's command line. In the guest the kernel starts /init with no arguments, so the
// defaults are the VM's; host test mode passes every switch:
//   frakti-agent --listen=unix:/tmp/a.sock --drives=dir:/tmp/drives --state-dir=/tmp/state
//                --cgroup-root=/sys/fs/cgroup/unified/test   (or none)

#include <cstdint>
#include <string>
#include <vector>

namespace frakti::agent {

struct ListenAddress {
  enum class Kind { vsock, unix_socket };
  Kind kind = Kind::vsock;
  uint32_t port = 0;  // vsock
  std::string path;   // unix
};

struct AgentOptions {
  ListenAddress listen;          // --listen=vsock:PORT | unix:PATH
  std::string drives = "sysfs";  // --drives=sysfs | dir:PATH
  std::string state_dir = "/run/frakti";
  std::string cgroup_root = "/sys/fs/cgroup/frakti";  // or "none"
  std::string log_level = "info";
  /// Set by the agent itself when it re-executes off the initramfs (init/pid1.hpp).
  bool rerooted = false;
};

/// Parses "vsock:1024" or "unix:/abs/path"; throws std::invalid_argument.
ListenAddress parse_listen_address(const std::string& text);
/// Parses argv (without argv[0]); throws std::invalid_argument with a message for the user.
AgentOptions parse_options(const std::vector<std::string>& args);
/// The usage text.
const char* usage();

}  // namespace frakti::agent
