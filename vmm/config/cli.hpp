#pragma once
// frakti-vmm's command line: parsing and validation into a VmConfig, plus the usage text.

#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "vmm/config/vm_config.hpp"

namespace frakti::vmm::config {

/// A bad command line; what() is the message for the user ("--memory 12: must be ...").
class UsageError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// --help was given.
struct HelpRequested {};

/// Parses args (without argv[0]) and validates the result: files exist and are readable,
/// numbers are in range. Throws UsageError.
std::variant<VmConfig, HelpRequested> parse_args(const std::vector<std::string>& args);

/// The usage text, including the exit statuses.
std::string usage();

}  // namespace frakti::vmm::config
