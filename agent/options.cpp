#include "agent/options.hpp"

#include <fmt/format.h>

#include <charconv>
#include <stdexcept>

#include "common/guest_abi.hpp"

namespace frakti::agent {

ListenAddress parse_listen_address(const std::string& text) {
  ListenAddress a;
  if (text.rfind("vsock:", 0) == 0) {
    std::string port = text.substr(6);
    uint64_t value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || p != port.data() + port.size() || value == 0 ||
        value > 0xffffffffu) {
      throw std::invalid_argument(
          fmt::format("--listen '{}': the vsock port must be a number 1-4294967295", text));
    }
    a.kind = ListenAddress::Kind::vsock;
    a.port = static_cast<uint32_t>(value);
    return a;
  }
  if (text.rfind("unix:", 0) == 0 && text.size() > 6 && text[5] == '/') {
    if (text.size() - 5 >= 108)
      throw std::invalid_argument(fmt::format("--listen '{}': the socket path is too long", text));
    a.kind = ListenAddress::Kind::unix_socket;
    a.path = text.substr(5);
    return a;
  }
  throw std::invalid_argument(
      fmt::format("--listen '{}': use vsock:PORT or unix:/ABSOLUTE/PATH", text));
}

AgentOptions parse_options(const std::vector<std::string>& args) {
  AgentOptions o;
  o.listen.kind = ListenAddress::Kind::vsock;
  o.listen.port = guest_abi::kAgentVsockPort;
  for (const auto& arg : args) {
    auto eq = arg.find('=');
    std::string key = arg.substr(0, eq);
    if (eq == std::string::npos || eq + 1 == arg.size()) {
      throw std::invalid_argument(fmt::format("'{}': options look like --name=value", arg));
    }
    std::string value = arg.substr(eq + 1);
    if (key == "--listen") {
      o.listen = parse_listen_address(value);
    } else if (key == "--drives") {
      if (value != "sysfs" && !(value.rfind("dir:/", 0) == 0)) {
        throw std::invalid_argument(
            fmt::format("--drives '{}': use sysfs or dir:/ABSOLUTE/PATH", value));
      }
      o.drives = value;
    } else if (key == "--state-dir") {
      if (value[0] != '/')
        throw std::invalid_argument(fmt::format("--state-dir '{}' is not absolute", value));
      o.state_dir = value;
    } else if (key == "--cgroup-root") {
      if (value != "none" && value[0] != '/')
        throw std::invalid_argument(
            fmt::format("--cgroup-root '{}': an absolute path or none", value));
      o.cgroup_root = value;
    } else if (key == "--rerooted") {
      o.rerooted = value == "1";
    } else if (key == "--log-level") {
      o.log_level = value;
    } else {
      throw std::invalid_argument(fmt::format("unknown option '{}'", key));
    }
  }
  return o;
}

const char* usage() {
  return "usage: frakti-agent [--listen=vsock:PORT|unix:PATH] [--drives=sysfs|dir:PATH]\n"
         "                    [--state-dir=DIR] [--cgroup-root=DIR|none] [--log-level=LEVEL]\n"
         "As the guest's PID 1 the defaults apply: vsock:1024, sysfs, /run/frakti, "
         "/sys/fs/cgroup/frakti.\n"
         "Run as any other PID (host test mode) it does no PID-1 duties: no mounts over the "
         "host's,\n"
         "no clock setting, no power-off (Shutdown ends the agent).\n";
}

}  // namespace frakti::agent
