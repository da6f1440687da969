#include "vmm/config/cli.hpp"

#include <unistd.h>

#include <cctype>
#include <charconv>
#include <functional>
#include <sys/stat.h>

#include <fmt/format.h>

namespace frakti::vmm::config {
namespace {

struct Flag {
  const char* name;  // without the leading "--"
  const char* arg;   // nullptr: takes no argument
  const char* help;
  std::function<void(VmConfig&, const std::string& flag_and_value, const std::string& value)> set;
};

uint64_t parse_number(const std::string& what, const std::string& text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    throw UsageError(fmt::format("{}: not a number", what));
  return v;
}

/// Splits "a=1,b,c=2" into (key, value) pairs; a bare word has an empty value.
std::vector<std::pair<std::string, std::string>> split_options(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) {
      size_t eq = item.find('=');
      out.emplace_back(item.substr(0, eq), eq == std::string::npos ? "" : item.substr(eq + 1));
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

DriveConfig parse_drive(const std::string& w, const std::string& v) {
  DriveConfig d;
  bool empty = false;
  for (auto& [key, value] : split_options(v)) {
    if (key == "path" && !value.empty()) d.path = value;
    else if (key == "empty" && value.empty()) empty = true;
    else if (key == "ro" && value.empty()) d.read_only = true;
    else if (key == "serial") d.serial = value;
    else throw UsageError(fmt::format("{}: unknown drive option '{}'", w, key));
  }
  if (d.path.has_value() == empty)
    throw UsageError(fmt::format("{}: give exactly one of path=FILE or empty", w));
  if (d.serial.size() > kMaxDriveSerial)
    throw UsageError(fmt::format("{}: serial is longer than {} bytes", w, kMaxDriveSerial));
  return d;
}

VsockConfig parse_vsock(const std::string& w, const std::string& v) {
  VsockConfig c;
  for (auto& [key, value] : split_options(v)) {
    if (key == "cid") c.guest_cid = parse_number(w + " cid", value);
    else if (key == "uds" && !value.empty()) c.uds_path = value;
    else throw UsageError(fmt::format("{}: unknown vsock option '{}'", w, key));
  }
  if (c.guest_cid < 3 || c.guest_cid > 0xfffffffeull)
    throw UsageError(fmt::format("{}: cid must be between 3 and 4294967294", w));
  // sockaddr_un holds 107 bytes; guest-initiated connections use "<uds>_<port>".
  if (c.uds_path.empty() || c.uds_path.size() > 96)
    throw UsageError(fmt::format("{}: uds=PATH is required (at most 96 bytes)", w));
  return c;
}

/// Parses "xx:xx:xx:xx:xx:xx" (hex, either case); rejects multicast addresses, which a NIC
/// cannot own.
std::array<uint8_t, 6> parse_mac(const std::string& w, const std::string& text) {
  std::array<uint8_t, 6> mac{};
  auto bad = [&] { return UsageError(fmt::format("{}: mac must look like 02:00:00:00:00:01", w)); };
  if (text.size() != 17) throw bad();
  for (size_t i = 0; i < 6; i++) {
    if (i > 0 && text[i * 3 - 1] != ':') throw bad();
    const char* b = text.data() + i * 3;
    if (!std::isxdigit(static_cast<unsigned char>(b[0])) ||
        !std::isxdigit(static_cast<unsigned char>(b[1])))
      throw bad();
    auto [end, ec] = std::from_chars(b, b + 2, mac[i], 16);
    if (ec != std::errc() || end != b + 2) throw bad();
  }
  if (mac[0] & 1) throw UsageError(fmt::format("{}: mac is a multicast address", w));
  return mac;
}

NetConfig parse_net(const std::string& w, const std::string& v, size_t index) {
  NetConfig n;
  n.mac = {0x02, 0xf7, 0x00, 0x00, 0x00, static_cast<uint8_t>(index + 1)};
  for (auto& [key, value] : split_options(v)) {
    if (key == "tap" && !value.empty()) n.tap = value;
    else if (key == "mac") n.mac = parse_mac(w, value);
    else throw UsageError(fmt::format("{}: unknown net option '{}'", w, key));
  }
  if (n.tap.empty() || n.tap.size() > kMaxTapName)
    throw UsageError(fmt::format("{}: tap=NAME is required (at most {} bytes)", w, kMaxTapName));
  for (char ch : n.tap)
    if (ch == '/' || ch == ':' || std::isspace(static_cast<unsigned char>(ch)) ||
        !std::isprint(static_cast<unsigned char>(ch)))
      throw UsageError(fmt::format("{}: '{}' is not a valid interface name", w, n.tap));
  return n;
}

void require_readable_file(const std::string& what, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw UsageError(fmt::format("{}: no such file", what));
  if (!S_ISREG(st.st_mode)) throw UsageError(fmt::format("{}: not a regular file", what));
  if (::access(path.c_str(), R_OK) != 0) throw UsageError(fmt::format("{}: not readable", what));
}

// The flag table: one entry per flag. Device flags go here too.
const std::vector<Flag>& flags() {
  static const std::vector<Flag> table = {
      {"kernel", "PATH", "uncompressed guest kernel (vmlinux, ELF); required",
       [](VmConfig& c, const std::string&, const std::string& v) { c.kernel = v; }},
      {"initrd", "PATH", "initramfs image; required",
       [](VmConfig& c, const std::string&, const std::string& v) { c.initrd = v; }},
      {"cmdline", "TEXT", "kernel command line (replaces the default shown below)",
       [](VmConfig& c, const std::string&, const std::string& v) { c.cmdline = v; }},
      {"append", "TEXT", "extra kernel parameters after the command line (repeatable)",
       [](VmConfig& c, const std::string&, const std::string& v) { c.append.push_back(v); }},
      {"cpus", "N", "number of vCPUs, 1 to 32 (default 1)",
       [](VmConfig& c, const std::string& w, const std::string& v) {
         uint64_t n = parse_number(w, v);
         if (n < 1 || n > kMaxCpus)
           throw UsageError(fmt::format("{}: must be between 1 and {}", w, kMaxCpus));
         c.cpus = static_cast<uint32_t>(n);
       }},
      {"memory", "MIB", "guest RAM in MiB, at least 64 (default 256)",
       [](VmConfig& c, const std::string& w, const std::string& v) {
         uint64_t n = parse_number(w, v);
         if (n < kMinMemoryMib)
           throw UsageError(fmt::format("{}: must be at least {} MiB", w, kMinMemoryMib));
         if (n > kMaxMemoryMib)
           throw UsageError(fmt::format("{}: must be at most {} MiB", w, kMaxMemoryMib));
         c.memory_mib = n;
       }},
      {"console", "stdout|file:PATH|unix:PATH|none",
       "serial console: stdout (input from stdin), a file, a Unix socket to attach to "
       "(output and input; one client at a time), or nothing (default stdout)",
       [](VmConfig& c, const std::string& w, const std::string& v) {
         if (v == "stdout" || v == "stdio") {
           c.console = {ConsoleConfig::Kind::stdio, {}};
         } else if (v == "none") {
           c.console = {ConsoleConfig::Kind::none, {}};
         } else if (v.rfind("file:", 0) == 0 && v.size() > 5) {
           c.console = {ConsoleConfig::Kind::file, v.substr(5)};
         } else if (v.rfind("unix:", 0) == 0 && v.size() > 5) {
           c.console = {ConsoleConfig::Kind::unix_socket, v.substr(5)};
         } else {
           throw UsageError(fmt::format("{}: use stdout, file:PATH, unix:PATH or none", w));
         }
       }},
      {"drive", "path=FILE[,ro][,serial=ID] | empty[,ro][,serial=ID]",
       "virtio-blk drive, or an empty slot to attach an image to later (repeatable)",
       [](VmConfig& c, const std::string& w, const std::string& v) {
         c.drives.push_back(parse_drive(w, v));
       }},
      {"vsock", "cid=N,uds=PATH", "virtio-vsock device, host side on the Unix socket PATH",
       [](VmConfig& c, const std::string& w, const std::string& v) {
         c.vsock = parse_vsock(w, v);
       }},
      {"no-seccomp", nullptr, "turn off the per-thread seccomp filters (debugging only: the VMM then "
       "runs unsandboxed)",
       [](VmConfig& c, const std::string&, const std::string&) { c.seccomp = false; }},
      {"net", "tap=NAME[,mac=xx:xx:xx:xx:xx:xx]",
       "virtio-net device on a TAP in this network namespace (created if missing; repeatable)",
       [](VmConfig& c, const std::string& w, const std::string& v) {
         c.nets.push_back(parse_net(w, v, c.nets.size()));
       }},
      {"control", "PATH", "control socket (docs/vmm-control.md): status, pause, stop, media swap",
       [](VmConfig& c, const std::string& w, const std::string& v) {
         // sockaddr_un holds 107 bytes plus the NUL.
         if (v.empty() || v.size() > 107)
           throw UsageError(fmt::format("{}: path must be 1 to 107 bytes", w));
         c.control_path = v;
       }},
      {"log-level", "LEVEL", "debug, info, warn, error or off (default info)",
       [](VmConfig& c, const std::string& w, const std::string& v) {
         try {
           c.log_level = common::log::parse_level(v);
         } catch (const std::invalid_argument& e) {
           throw UsageError(fmt::format("{}: {}", w, e.what()));
         }
       }},
  };
  return table;
}

void validate(const VmConfig& c) {
  if (c.kernel.empty()) throw UsageError("--kernel is required");
  if (c.initrd.empty()) throw UsageError("--initrd is required");
  require_readable_file("--kernel " + c.kernel, c.kernel);
  require_readable_file("--initrd " + c.initrd, c.initrd);
  for (const auto& d : c.drives)
    if (d.path) require_readable_file("--drive " + *d.path, *d.path);
  for (size_t i = 0; i < c.nets.size(); i++)
    for (size_t j = 0; j < i; j++) {
      if (c.nets[i].tap == c.nets[j].tap)
        throw UsageError(fmt::format("--net tap={} is given twice", c.nets[i].tap));
      if (c.nets[i].mac == c.nets[j].mac)
        throw UsageError(fmt::format("--net tap={} has the MAC of tap={}", c.nets[i].tap,
                                     c.nets[j].tap));
    }
  if (c.drives.size() + (c.vsock ? 1 : 0) + c.nets.size() > kMaxVirtioDevices)
    throw UsageError(fmt::format("too many virtio devices: at most {}", kMaxVirtioDevices));
  std::string line = c.base_cmdline();
  // Linux keeps 2047 bytes; leave room for the virtio_mmio.device= entries the VM appends.
  if (line.size() > 1536)
    throw UsageError(fmt::format("kernel command line is {} bytes; at most 1536 are allowed",
                                 line.size()));
  if (line.find('\0') != std::string::npos || line.find('\n') != std::string::npos)
    throw UsageError("kernel command line must not contain NUL or newline characters");
}

}  // namespace

std::variant<VmConfig, HelpRequested> parse_args(const std::vector<std::string>& args) {
  // Help wins even over flags that would fail validation.
  for (const auto& a : args)
    if (a == "-h" || a == "--help") return HelpRequested{};
  VmConfig c;
  for (size_t i = 0; i < args.size(); i++) {
    std::string a = args[i];
    if (a.rfind("--", 0) != 0) throw UsageError(fmt::format("unexpected argument '{}'", a));
    std::string name = a.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    const Flag* flag = nullptr;
    for (const auto& f : flags())
      if (name == f.name) flag = &f;
    if (!flag) throw UsageError(fmt::format("unknown option --{} (see --help)", name));
    if (flag->arg && !inline_value) {
      if (i + 1 >= args.size()) throw UsageError(fmt::format("--{} needs {}", name, flag->arg));
      value = args[++i];
    } else if (!flag->arg && inline_value) {
      throw UsageError(fmt::format("--{} takes no value", name));
    }
    flag->set(c, fmt::format("--{} {}", name, value), value);
  }
  validate(c);
  return c;
}

std::string usage() {
  std::string u =
      "usage: frakti-vmm --kernel PATH --initrd PATH [options]\n"
      "\n"
      "Boots a Linux guest (64-bit direct boot of an uncompressed vmlinux) in a KVM micro-VM\n"
      "with a serial console, and runs until the guest powers off, reboots or crashes.\n"
      "\n"
      "options:\n";
  for (const auto& f : flags()) {
    std::string left = fmt::format("  --{}{}{}", f.name, f.arg ? " " : "", f.arg ? f.arg : "");
    if (left.size() >= 36) left += "\n" + std::string(36, ' ');
    u += fmt::format("{:<36}{}\n", left, f.help);
  }
  u += fmt::format("{:<36}{}\n", "  -h, --help", "this text");
  u += "\ndefault kernel command line (virtio_mmio.device= entries are added to it):\n  ";
  u += default_cmdline();
  u +=
      "\n\nexit status:\n"
      "  0  the guest powered off (or the VMM was stopped by SIGTERM/SIGINT)\n"
      "  1  VMM error: bad options, no usable /dev/kvm, a setup or device failure\n"
      "  2  the guest rebooted (i8042 reset, or a KVM reset event)\n"
      "  3  the guest crashed: triple fault, KVM internal error or failed entry\n";
  return u;
}

}  // namespace frakti::vmm::config
