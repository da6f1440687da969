#pragma once
// What the minimal guest init takes from outside: its kernel command line and the lines typed
// on its console. Both are untrusted text, so parsing never throws and bounds every buffer.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace frakti::initrd {

/// Kernel command line keys the minimal init obeys ("<key>=1" turns one on).
inline constexpr std::string_view kCmdlinePoweroff = "frakti.poweroff";
inline constexpr std::string_view kCmdlineReboot = "frakti.reboot";

/// What to do once ready, from the kernel command line.
struct BootOptions {
  bool poweroff = false;
  bool reboot = false;
};

/// Parses /proc/cmdline text. Parameters are split on whitespace, double quotes group spaces
/// (as the kernel does), parsing stops at "--" (the rest belongs to init's argv), and the
/// last occurrence of a key wins. Only the exact value "1" turns an option on.
BootOptions parse_boot_options(std::string_view cmdline);

/// A command read from the console.
enum class ConsoleCommand { none, poweroff, reboot, unknown };

/// Parses one console line (without its newline); surrounding blanks and a CR are ignored.
ConsoleCommand parse_console_command(std::string_view line);

/// Splits a byte stream into lines of at most kMaxLine bytes. A longer line is dropped whole
/// and returned as kOverlong once its newline arrives, so a flood cannot grow memory.
class LineReader {
 public:
  static constexpr size_t kMaxLine = 256;
  /// Marker returned in place of a line that exceeded kMaxLine.
  static constexpr std::string_view kOverlong = "\x01overlong";

  /// Consumes bytes and returns the lines they complete.
  std::vector<std::string> feed(std::string_view bytes);

 private:
  std::string partial_;
  bool discarding_ = false;
};

}  // namespace frakti::initrd
