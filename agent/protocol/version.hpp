#pragma once
// The agent protocol version both sides announce in the handshake. Bump it for any change to
// proto/agent/agent.proto or docs/agent-protocol.md that an older peer would misread; a
// mismatch fails the handshake with an error naming both versions.

#include <cstdint>

namespace frakti::agent::protocol {

inline constexpr uint32_t kProtocolVersion = 1;

}  // namespace frakti::agent::protocol
