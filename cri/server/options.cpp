#include "cri/server/options.hpp"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <functional>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace frakti::cri {

namespace {

using Setter = std::function<void(Options&, const std::string&)>;

bool parse_bool(const std::string& name, const std::string& v) {
  if (v == "true" || v == "1" || v.empty()) return true;
  if (v == "false" || v == "0") return false;
  throw UsageError(fmt::format("--{}: '{}' is not a boolean (use true or false)", name, v));
}

long long parse_int(const std::string& name, const std::string& v, long long lo, long long hi) {
  long long n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < lo || n > hi)
    throw UsageError(fmt::format("--{}: '{}' is not a whole number from {} to {}", name, v, lo, hi));
  return n;
}

struct Flag {
  bool boolean;
  Setter set;
  const char* help;
};

const std::map<std::string, Flag>& flags() {
  static const std::map<std::string, Flag> table = {
      {"listen", {false, [](Options& o, const std::string& v) { o.listen = v; }, "CRI socket path (default /var/run/frakti.sock)"}},
      {"v", {false, [](Options& o, const std::string& v) { o.verbosity = static_cast<int>(parse_int("v", v, 0, 10)); }, "log verbosity 0-10"}},
      {"log-dir", {false, [](Options& o, const std::string& v) { o.log_dir = v; }, "write frakti.log here (unless --logtostderr)"}},
      {"logtostderr", {true, [](Options& o, const std::string& v) { o.log_to_stderr = parse_bool("logtostderr", v); }, "log to stderr (default true)"}},
      {"cgroup-driver", {false, [](Options& o, const std::string& v) {
         if (v != "cgroupfs" && v != "systemd") throw UsageError(fmt::format("--cgroup-driver: '{}' is not cgroupfs or systemd", v));
         o.cgroup_driver = v;
       }, "cgroupfs | systemd"}},
      {"streaming-server-addr", {false, [](Options& o, const std::string& v) { o.streaming_server_addr = v; }, "address of the exec/attach/port-forward server"}},
      {"streaming-server-port", {false, [](Options& o, const std::string& v) { o.streaming_server_port = static_cast<int>(parse_int("streaming-server-port", v, 0, 65535)); }, "its port"}},
      {"root-directory", {false, [](Options& o, const std::string& v) { o.root_directory = v; }, "persistent state and images (default /var/lib/frakti)"}},
      {"state-directory", {false, [](Options& o, const std::string& v) { o.state_directory = v; }, "sockets and VM run files (default /run/frakti)"}},
      {"cpu", {false, [](Options& o, const std::string& v) { o.cpu = static_cast<unsigned>(parse_int("cpu", v, 1, 64)); }, "default vCPUs per pod VM"}},
      {"memory", {false, [](Options& o, const std::string& v) { o.memory_mib = static_cast<unsigned>(parse_int("memory", v, 64, 1 << 20)); }, "default memory per pod VM, MiB"}},
      {"enable-alternative-runtime", {true, [](Options& o, const std::string& v) { o.enable_alternative_runtime = parse_bool("enable-alternative-runtime", v); }, "run privileged and host-namespace pods with runc (default true)"}},
      {"cni-net-dir", {false, [](Options& o, const std::string& v) { o.cni_net_dir = v; }, "CNI network configs (default /etc/cni/net.d)"}},
      {"cni-plugin-dir", {false, [](Options& o, const std::string& v) { o.cni_plugin_dir = v; }, "CNI plugins (default /usr/lib/cni)"}},
      {"registry-config", {false, [](Options& o, const std::string& v) {
         o.registry_config = v;
         o.registry_config_given = true;
       }, "registry mirrors/TLS/credentials JSON (default /etc/frakti/registries.json)"}},
      {"boot-timeout", {false, [](Options& o, const std::string& v) { o.boot_timeout = std::chrono::seconds(parse_int("boot-timeout", v, 1, 3600)); }, "seconds a pod VM may take to boot (default 60)"}},
  };
  return table;
}

void apply_config_file(Options& o, const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw UsageError(fmt::format("--config: cannot read {}", path.string()));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw UsageError(fmt::format("--config {}: not valid JSON: {}", path.string(), e.what()));
  }
  if (!j.is_object()) throw UsageError(fmt::format("--config {}: must hold one JSON object", path.string()));
  for (auto& [key, value] : j.items()) {
    auto it = flags().find(key);
    if (it == flags().end() || key == "config")
      throw UsageError(fmt::format("--config {}: unknown setting '{}' (see frakti --help)", path.string(), key));
    std::string text = value.is_string() ? value.get<std::string>() : value.dump();
    it->second.set(o, text);
  }
}

}  // namespace

Options parse_options(const std::vector<std::string>& args) {
  std::vector<std::pair<std::string, std::string>> given;
  std::optional<std::string> config;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a.rfind("--", 0) != 0 && a.rfind("-", 0) == 0 && a.size() > 1) a = "-" + a;  // -v=2 like glog
    if (a.rfind("--", 0) != 0) throw UsageError(fmt::format("unexpected argument '{}' (frakti takes only flags)", args[i]));
    std::string name = a.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (name == "config") {
      if (!has_value) {
        if (i + 1 >= args.size()) throw UsageError("--config needs a file");
        value = args[++i];
      }
      config = value;
      continue;
    }
    auto it = flags().find(name);
    if (it == flags().end()) throw UsageError(fmt::format("unknown flag --{} (see frakti --help)", name));
    if (!has_value && !it->second.boolean) {
      if (i + 1 >= args.size()) throw UsageError(fmt::format("--{} needs a value", name));
      value = args[++i];
    }
    given.emplace_back(name, value);
  }
  Options o;
  if (config) {
    o.config_file = *config;
    apply_config_file(o, *config);
  }
  for (auto& [name, value] : given) flags().at(name).set(o, value);
  return o;
}

void validate_options(const Options& o) {
  if (o.cgroup_driver == "systemd" && ::access("/run/systemd/system", F_OK) != 0)
    throw UsageError(
        "--cgroup-driver=systemd: systemd is not running on this host (no /run/systemd/system); use "
        "--cgroup-driver=cgroupfs, and set the kubelet's cgroupDriver to cgroupfs to match");
  if (o.listen.size() > 100) throw UsageError(fmt::format("--listen: '{}' is too long for a Unix socket path", o.listen));
  if (o.state_directory.string().size() > 40)
    throw UsageError(fmt::format("--state-directory: '{}' is too long: VM socket paths under it must stay within "
                                 "Unix limits; use a path of at most 40 bytes",
                                 o.state_directory.string()));
}

std::string usage() {
  std::string s =
      "usage: frakti [flags]\n\nThe frakti CRI runtime: serves kubelet's RuntimeService and ImageService.\n\n";
  s += fmt::format("  --{:<28} {}\n", "config FILE", "JSON object of the settings below; flags win");
  for (auto& [name, f] : flags()) s += fmt::format("  --{:<28} {}\n", name + (f.boolean ? "" : " VALUE"), f.help);
  return s;
}

}  // namespace frakti::cri
