#pragma once
// AgentError: a failure the host should see with a precise code (bad request, unknown id,
// missing drive). Request handlers turn it into Response.error; any other exception becomes
// CODE_INTERNAL (std::system_error keeps its errno in Error.errno_value).

#include <fmt/format.h>

#include <stdexcept>
#include <string>

#include "proto/agent/agent.pb.h"

namespace frakti::agent {

class AgentError : public std::runtime_error {
 public:
  AgentError(v1::Error::Code code, const std::string& message, int errno_value = 0)
      : std::runtime_error(message), code_(code), errno_value_(errno_value) {}
  v1::Error::Code code() const { return code_; }
  int errno_value() const { return errno_value_; }

 private:
  v1::Error::Code code_;
  int errno_value_;
};

/// Throws AgentError(CODE_INVALID_ARGUMENT) with a formatted message.
template <typename... Args>
[[noreturn]] void invalid_argument(fmt::format_string<Args...> f, Args&&... args) {
  throw AgentError(v1::Error::CODE_INVALID_ARGUMENT, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace frakti::agent
