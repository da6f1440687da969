#pragma once
// Small whole-file reads and writes (procfs, sysfs, cgroupfs, /etc/passwd). Every failure
// names the file.

#include <optional>
#include <string>
#include <string_view>

namespace frakti::agent::sys {

/// Reads a whole file (up to limit bytes); throws std::system_error naming the path.
std::string read_file(const std::string& path, size_t limit = 1 << 20);
/// Like read_file, but nullopt when the file cannot be opened (missing, no permission).
std::optional<std::string> try_read_file(const std::string& path, size_t limit = 1 << 20);
/// Writes text to an existing file in one write(2) (what cgroupfs and procfs want); throws
/// std::system_error naming the path and the value.
void write_file(const std::string& path, std::string_view text);
/// Replaces path with a new file holding text (temp file + rename: readers never see half
/// of it); throws std::system_error naming the path.
void replace_file(const std::string& path, std::string_view text, unsigned mode = 0644);
/// Creates path and its missing parents with mode (like mkdir -p); throws naming the path.
void make_dirs(const std::string& path, unsigned mode = 0755);
/// Strips trailing whitespace and NUL bytes (sysfs attributes end in "\n").
std::string_view trim_right(std::string_view text);

}  // namespace frakti::agent::sys
