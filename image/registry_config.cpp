#include "image/registry_config.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "image/error.hpp"

namespace frakti::image {
namespace {

using nlohmann::json;

bool read_file(const std::string& path, std::string& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

bool split_auth(const std::string& b64, Credentials& c) {
  std::string plain;
  if (!base64_decode(b64, plain)) return false;
  auto colon = plain.find(':');
  if (colon == std::string::npos) return false;
  c.username = plain.substr(0, colon);
  c.password = plain.substr(colon + 1);
  return true;
}

// Docker writes Docker Hub credentials under its v1 URL; other keys may carry a scheme.
std::string normalise_auth_key(std::string key) {
  for (const char* scheme : {"https://", "http://"}) {
    if (key.rfind(scheme, 0) == 0) key = key.substr(std::string(scheme).size());
  }
  if (auto slash = key.find('/'); slash != std::string::npos) key = key.substr(0, slash);
  if (key == "index.docker.io" || key == "registry-1.docker.io") key = "docker.io";
  return key;
}

std::string str_field(const json& j, const char* key, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_string()) {
    throw ImageError(ErrorKind::invalid, fmt::format("{}: \"{}\" must be a string", source, key));
  }
  return it->get<std::string>();
}

}  // namespace

Credentials AuthConfig::credentials() const {
  Credentials c{username, password, identity_token, registry_token};
  if (c.username.empty() && !auth.empty() && !split_auth(auth, c)) {
    throw ImageError(ErrorKind::invalid, "auth config: \"auth\" is not base64 of user:password");
  }
  return c;
}

RegistryConfig RegistryConfig::load(const std::string& path, bool optional) {
  std::string text;
  if (!read_file(path, text)) {
    if (optional) return {};
    throw ImageError(ErrorKind::not_found, fmt::format("registry config {}: cannot read file", path));
  }
  return parse(text, path);
}

RegistryConfig RegistryConfig::parse(const std::string& text, const std::string& source) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw ImageError(ErrorKind::invalid, fmt::format("{}: not a JSON object", source));
  }
  RegistryConfig cfg;
  auto regs = j.find("registries");
  if (regs == j.end()) return cfg;
  if (!regs->is_object()) throw ImageError(ErrorKind::invalid, fmt::format("{}: \"registries\" must be an object", source));
  for (auto& [name, v] : regs->items()) {
    std::string where = fmt::format("{}: registry \"{}\"", source, name);
    if (!v.is_object()) throw ImageError(ErrorKind::invalid, where + " must be an object");
    RegistryHost h;
    if (auto it = v.find("insecure"); it != v.end()) {
      if (!it->is_boolean()) throw ImageError(ErrorKind::invalid, where + ": \"insecure\" must be true or false");
      h.insecure = it->get<bool>();
    }
    h.ca_file = str_field(v, "ca_file", where);
    if (auto it = v.find("mirrors"); it != v.end()) {
      if (!it->is_array()) throw ImageError(ErrorKind::invalid, where + ": \"mirrors\" must be an array");
      for (auto& m : *it) {
        if (!m.is_string()) throw ImageError(ErrorKind::invalid, where + ": mirrors must be strings");
        std::string url = m.get<std::string>();
        if (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0) url = "https://" + url;
        while (!url.empty() && url.back() == '/') url.pop_back();
        h.mirrors.push_back(url);
      }
    }
    Credentials c;
    c.username = str_field(v, "username", where);
    c.password = str_field(v, "password", where);
    std::string auth = str_field(v, "auth", where);
    if (!auth.empty() && !split_auth(auth, c)) throw ImageError(ErrorKind::invalid, where + ": \"auth\" is not base64 of user:password");
    if (!c.empty()) h.credentials = c;
    cfg.hosts_[normalise_auth_key(name)] = std::move(h);
  }
  return cfg;
}

void RegistryConfig::load_docker_config(const std::string& path) {
  std::string text;
  if (path.empty() || !read_file(path, text)) return;
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw ImageError(ErrorKind::invalid, fmt::format("docker config {}: not a JSON object", path));
  }
  auto auths = j.find("auths");
  if (auths == j.end() || !auths->is_object()) return;
  for (auto& [key, v] : auths->items()) {
    if (!v.is_object()) continue;
    Credentials c;
    std::string where = fmt::format("docker config {}: auths[\"{}\"]", path, key);
    c.username = str_field(v, "username", where);
    c.password = str_field(v, "password", where);
    c.identity_token = str_field(v, "identitytoken", where);
    c.registry_token = str_field(v, "registrytoken", where);
    std::string auth = str_field(v, "auth", where);
    if (!auth.empty() && !split_auth(auth, c)) throw ImageError(ErrorKind::invalid, where + ": \"auth\" is not base64 of user:password");
    if (!c.empty()) docker_auths_[normalise_auth_key(key)] = c;
  }
}

RegistryHost RegistryConfig::host(const std::string& host) const {
  auto it = hosts_.find(host);
  return it == hosts_.end() ? RegistryHost{} : it->second;
}

std::optional<Credentials> RegistryConfig::credentials_for(const std::string& host) const {
  if (auto it = hosts_.find(host); it != hosts_.end() && it->second.credentials) return it->second.credentials;
  if (auto it = docker_auths_.find(host); it != docker_auths_.end()) return it->second;
  return std::nullopt;
}

std::string RegistryConfig::default_docker_config() {
  if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d) return std::string(d) + "/config.json";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.docker/config.json";
  return {};
}

bool is_loopback_host(const std::string& host) {
  std::string h = host;
  if (!h.empty() && h[0] == '[') {
    auto end = h.find(']');
    h = h.substr(1, end == std::string::npos ? std::string::npos : end - 1);
    return h == "::1";
  }
  if (auto colon = h.find(':'); colon != std::string::npos) h = h.substr(0, colon);
  // Only a literal 127.x.y.z address: "127.example.com" is a name anyone can register.
  bool ipv4_literal = !h.empty() && h.find_first_not_of("0123456789.") == std::string::npos;
  return h == "localhost" || (ipv4_literal && h.rfind("127.", 0) == 0);
}

}  // namespace frakti::image
