#pragma once
// ControlError: how a control-socket failure travels. A ControlHandler throws it to choose the
// error code its caller sees; the server turns it into an error reply; the client throws it
// again with the server's code and message. See docs/vmm-control.md for the codes.

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace frakti::vmm::control {

/// The error codes of the control protocol (their wire names are the enumerator names).
enum class ErrorCode {
  invalid_argument,     // the request is malformed: bad JSON, wrong types, bad values
  not_found,            // the named method or drive slot does not exist
  failed_precondition,  // the VM is not in a state that allows this (e.g. resume while running)
  permission_denied,    // the peer's uid may not use this socket (sent once, then closed)
  internal,             // the VMM failed while doing what was asked
};

/// The wire name of code ("invalid_argument", ...).
std::string_view error_code_name(ErrorCode code);
/// Parses a wire name; nullopt for a name this version does not know.
std::optional<ErrorCode> parse_error_code(std::string_view name);

/// An error with a protocol code. Handlers throw it; ControlClient throws it for error replies.
class ControlError : public std::runtime_error {
 public:
  ControlError(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace frakti::vmm::control
