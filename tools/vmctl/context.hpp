#pragma once
// What every vmctl subcommand gets: the global options, its own arguments, and helpers for
// option parsing and for building the services it needs.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "image/image_service.hpp"

namespace frakti::vmctl {

/// A usage mistake: printed with the command's usage line, exit 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A failure the user must act on: printed as "vmctl: <what>: <why> (<hint>)", exit 1.
class CommandError : public std::runtime_error {
 public:
  CommandError(const std::string& what, const std::string& why, const std::string& hint)
      : std::runtime_error(what + ": " + why + (hint.empty() ? "" : " (" + hint + ")")) {}
};

/// Parses one subcommand's arguments: options (--name VALUE, --flag) before or between
/// positionals; "--" ends options. Single-letter flags combine ("-it" = "-i -t"). Commands that
/// take a command line (run IMAGE CMD..., exec NAME CMD...) pass options_end_after = 1, so
/// everything after the first positional belongs to that command line.
class Args {
 public:
  Args(std::vector<std::string> args, std::vector<std::string> valued, std::vector<std::string> flags,
       size_t options_end_after = SIZE_MAX);
  /// The last value given for name.
  std::optional<std::string> value(const std::string& name) const;
  /// Every value given for a repeatable option (-e A=1 -e B=2), in order.
  std::vector<std::string> values(const std::string& name) const;
  bool flag(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::vector<std::pair<std::string, std::string>> values_;
  std::vector<std::string> flags_set_;
  std::vector<std::string> positional_;
};

struct Context {
  std::filesystem::path root = "/var/lib/frakti";
  /// Containers: records, VM sockets, logs (vmctl run/ps/exec/...).
  std::filesystem::path state = "/run/frakti/vmctl";
  std::string registry_config = "/etc/frakti/registries.json";
  bool registry_config_given = false;
  std::string docker_config;  ///< default: $DOCKER_CONFIG or ~/.docker/config.json
  std::vector<std::string> args;  ///< the subcommand's own arguments
  FILE* out = stdout;
  bool out_is_tty = false;
  /// "pull busybox": names the action in error messages.
  std::string action;

  /// The image service over --root, with registry settings and credentials loaded.
  image::ImageService& images();

 private:
  std::unique_ptr<image::ImageService> images_;
};

/// Formats a byte count for people ("12.3 MB").
std::string human_size(uint64_t bytes);

}  // namespace frakti::vmctl
