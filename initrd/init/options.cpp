#include "initrd/init/options.hpp"

namespace frakti::initrd {
namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Returns the next parameter of a kernel command line, advancing pos. Quotes group blanks and
// are dropped from the result, like the kernel's next_arg(); an unterminated quote runs to
// the end.
std::string next_param(std::string_view text, size_t& pos) {
  while (pos < text.size() && is_blank(text[pos])) ++pos;
  std::string param;
  bool quoted = false;
  for (; pos < text.size(); ++pos) {
    char c = text[pos];
    if (c == '"') {
      quoted = !quoted;
      continue;
    }
    if (!quoted && is_blank(c)) break;
    param.push_back(c);
  }
  return param;
}

}  // namespace

BootOptions parse_boot_options(std::string_view cmdline) {
  BootOptions options;
  size_t pos = 0;
  for (;;) {
    std::string param = next_param(cmdline, pos);
    if (param.empty()) {
      if (pos >= cmdline.size()) break;
      continue;  // a lone pair of quotes
    }
    if (param == "--") break;
    std::string_view view = param;
    size_t eq = view.find('=');
    std::string_view key = view.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : view.substr(eq + 1);
    if (key == kCmdlinePoweroff) options.poweroff = value == "1";
    if (key == kCmdlineReboot) options.reboot = value == "1";
  }
  return options;
}

ConsoleCommand parse_console_command(std::string_view line) {
  while (!line.empty() && is_blank(line.front())) line.remove_prefix(1);
  while (!line.empty() && is_blank(line.back())) line.remove_suffix(1);
  if (line.empty()) return ConsoleCommand::none;
  if (line == "poweroff") return ConsoleCommand::poweroff;
  if (line == "reboot") return ConsoleCommand::reboot;
  return ConsoleCommand::unknown;
}

std::vector<std::string> LineReader::feed(std::string_view bytes) {
  std::vector<std::string> lines;
  for (char c : bytes) {
    if (c == '\n') {
      if (discarding_) {
        lines.emplace_back(kOverlong);
      } else {
        lines.push_back(std::move(partial_));
      }
      partial_.clear();
      discarding_ = false;
      continue;
    }
    if (discarding_) continue;
    if (partial_.size() == kMaxLine) {
      partial_.clear();
      discarding_ = true;
      continue;
    }
    partial_.push_back(c);
  }
  return lines;
}

}  // namespace frakti::initrd
