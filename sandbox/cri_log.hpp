#pragma once
// Container logs in the CRI format kubelet reads (`kubectl logs`):
//   <RFC3339Nano time> <stdout|stderr> <P|F> <content>\n
// F marks the end of a line, P a piece of a longer one (a line over kMaxLine bytes, or output
// that ended without a newline). vmctl and the CRI server write container output this way so
// `vmctl logs` and kubelet read the same files.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.hpp"

namespace frakti::sandbox {

enum class LogStream { stdout_, stderr_ };

class CriLogWriter {
 public:
  /// Longest content of one record; longer lines are split into P records.
  static constexpr size_t kMaxLine = 16 * 1024;

  /// Opens (appending, creating 0640) path. Throws std::system_error.
  explicit CriLogWriter(const std::filesystem::path& path);
  /// Adds output; complete lines are written at once, the rest waits for its newline.
  void write(LogStream stream, std::string_view data);
  /// Writes what is pending for stream as a P record (the stream ended mid-line).
  void finish(LogStream stream);
  /// Reopens the file (after rotation).
  void reopen();

 private:
  void emit(LogStream stream, std::string_view content, bool partial);
  std::filesystem::path path_;
  common::Fd fd_;
  std::string pending_[2];
};

struct LogRecord {
  std::string time;
  LogStream stream;
  bool partial;
  std::string content;
};

/// Parses a CRI log file; malformed lines are skipped.
std::vector<LogRecord> read_cri_log(const std::filesystem::path& path);

/// The current time as RFC 3339 with nanoseconds, UTC ("2026-11-27T15:04:05.123456789Z").
std::string rfc3339_nano_now();

}  // namespace frakti::sandbox
