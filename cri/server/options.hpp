#pragma once
// frakti's command line and config file (the original Frakti's flags, docs/cri.md).
//
// Every flag may also be set in a JSON config file (--config FILE) under its own name
// ("root-directory": "/var/lib/frakti"); a flag given on the command line wins.

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace frakti::cri {

struct Options {
  std::string listen = "/var/run/frakti.sock";
  int verbosity = 0;  ///< --v
  std::filesystem::path log_dir;
  bool log_to_stderr = true;
  std::string cgroup_driver = "cgroupfs";
  std::string streaming_server_addr = "127.0.0.1";
  int streaming_server_port = 22521;
  std::filesystem::path root_directory = "/var/lib/frakti";
  /// Sockets and VM run files (short paths: Unix socket paths are limited).
  std::filesystem::path state_directory = "/run/frakti";
  unsigned cpu = 1;          ///< default vCPUs of a pod VM
  unsigned memory_mib = 256;  ///< default memory of a pod VM (MiB)
  bool enable_alternative_runtime = true;  ///< privileged/host-namespace pods run with runc
  std::filesystem::path cni_net_dir = "/etc/cni/net.d";
  std::filesystem::path cni_plugin_dir = "/usr/lib/cni";
  std::filesystem::path config_file;
  /// Registry mirrors, TLS and credentials (image/registry_config.hpp); a missing default
  /// file means "no settings".
  std::filesystem::path registry_config = "/etc/frakti/registries.json";
  bool registry_config_given = false;
  std::chrono::seconds boot_timeout{60};
};

/// A bad flag or config value: what was wrong and what is accepted.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses argv (after the program name). Throws UsageError.
Options parse_options(const std::vector<std::string>& args);

/// Checks what can only be checked on this host (systemd present for --cgroup-driver=systemd,
/// socket path length). Throws UsageError naming the fix.
void validate_options(const Options& opts);

/// The --help text.
std::string usage();

}  // namespace frakti::cri
