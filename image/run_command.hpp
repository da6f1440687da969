#pragma once
// Runs a helper program (mkfs.erofs, mkfs.ext4) to completion, capturing its output for the
// error message. Not for anything long-lived: those need an owning, reaping object.

#include <string>
#include <vector>

namespace frakti::image {

/// Runs argv[0] (looked up in PATH) and waits. Throws ImageError(invalid) naming `what` with
/// the exit status and the tail of the program's output when it fails or cannot start.
void run_command(const std::vector<std::string>& argv, const std::string& what);

}  // namespace frakti::image
