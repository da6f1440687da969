#include "tools/vmctl/context.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace frakti::vmctl {

Args::Args(std::vector<std::string> args, std::vector<std::string> valued, std::vector<std::string> flags,
           size_t options_end_after) {
  auto known = [](const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (positional_.size() >= options_end_after) {
      positional_.insert(positional_.end(), args.begin() + static_cast<long>(i), args.end());
      break;
    }
    // "-it": every letter a known single-letter flag.
    if (a.size() > 2 && a[0] == '-' && a[1] != '-' && a.find('=') == std::string::npos &&
        std::all_of(a.begin() + 1, a.end(), [&](char c) { return known(flags, std::string{'-', c}); })) {
      for (size_t k = 1; k < a.size(); ++k) flags_set_.push_back(std::string{'-', a[k]});
      continue;
    }
    if (a == "--") {
      positional_.insert(positional_.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (a.size() > 1 && a[0] == '-') {
      std::string name = a, val;
      bool inline_val = false;
      if (auto eq = a.find('='); eq != std::string::npos) {
        name = a.substr(0, eq);
        val = a.substr(eq + 1);
        inline_val = true;
      }
      if (known(valued, name)) {
        if (!inline_val) {
          if (i + 1 >= args.size()) throw UsageError(fmt::format("option {} needs a value", name));
          val = args[++i];
        }
        values_.emplace_back(name, val);
      } else if (known(flags, name) && !inline_val) {
        flags_set_.push_back(name);
      } else {
        throw UsageError(fmt::format("unknown option {}", name));
      }
      continue;
    }
    positional_.push_back(a);
  }
}

std::optional<std::string> Args::value(const std::string& name) const {
  std::optional<std::string> v;
  for (auto& [n, val] : values_) {
    if (n == name) v = val;
  }
  return v;
}

std::vector<std::string> Args::values(const std::string& name) const {
  std::vector<std::string> v;
  for (auto& [n, val] : values_) {
    if (n == name) v.push_back(val);
  }
  return v;
}

bool Args::flag(const std::string& name) const {
  return std::find(flags_set_.begin(), flags_set_.end(), name) != flags_set_.end();
}

image::ImageService& Context::images() {
  if (!images_) {
    image::ServiceOptions o;
    o.root = root;
    o.registries = image::RegistryConfig::load(registry_config, !registry_config_given);
    o.registries.load_docker_config(docker_config.empty() ? image::RegistryConfig::default_docker_config() : docker_config);
    images_ = std::make_unique<image::ImageService>(std::move(o));
  }
  return *images_;
}

std::string human_size(uint64_t b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.1f} {}", v, units[u]);
}

}  // namespace frakti::vmctl
