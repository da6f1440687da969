#pragma once
// The agent's listening socket: the other VM/host switch. AF_VSOCK in the guest, a Unix
// socket in host test mode; the protocol Server does not care which.

#include "agent/options.hpp"
#include "common/fd.hpp"

namespace frakti::agent {

/// A listening, CLOEXEC stream socket for address (an old Unix socket file is replaced).
/// Throws std::system_error naming the address.
common::Fd listen_on(const ListenAddress& address);

}  // namespace frakti::agent
