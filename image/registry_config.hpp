#pragma once
// Per-registry settings (TLS, insecure, mirrors) and credentials.
//
// The registries file is JSON (default /etc/frakti/registries.json):
//   { "registries": {
//       "docker.io":        { "mirrors": ["http://127.0.0.1:5001"] },
//       "reg.example:5000": { "ca_file": "/etc/frakti/reg-ca.pem" },
//       "10.0.0.5:5000":    { "insecure": true, "username": "u", "password": "p" } } }
// Credentials may also come from a docker-style config.json ("auths") and, per request,
// from the CRI AuthConfig, which wins over both files.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "image/http_client.hpp"

namespace frakti::image {

/// Credentials for one registry (the CRI AuthConfig fields that registries use).
struct Credentials {
  std::string username;
  std::string password;
  std::string identity_token;  ///< OAuth2 refresh token (sent as refresh_token)
  std::string registry_token;  ///< a bearer token to use as is
  bool empty() const {
    return username.empty() && password.empty() && identity_token.empty() && registry_token.empty();
  }
};

/// The CRI AuthConfig message, as handed in by PullImage.
struct AuthConfig {
  std::string username;
  std::string password;
  std::string auth;  ///< base64("user:password")
  std::string server_address;
  std::string identity_token;
  std::string registry_token;
  /// Normalises to Credentials; throws ImageError(invalid) for a malformed `auth`.
  Credentials credentials() const;
};

/// Settings for one registry host.
struct RegistryHost {
  bool insecure = false;  ///< allow plain HTTP and unverified TLS
  std::string ca_file;
  std::vector<std::string> mirrors;  ///< endpoint URLs ("https://mirror:5000"), tried in order
  std::optional<Credentials> credentials;
};

/// Registry settings plus credential lookup.
class RegistryConfig {
 public:
  RegistryConfig() = default;
  /// Loads the registries file; a missing file gives an empty config when `optional`.
  static RegistryConfig load(const std::string& path, bool optional);
  /// Parses registries JSON text; throws ImageError(invalid) naming `source`.
  static RegistryConfig parse(const std::string& text, const std::string& source);
  /// Adds credentials from a docker config.json ("auths"); missing file is ignored.
  void load_docker_config(const std::string& path);

  /// Settings for host ("docker.io", "127.0.0.1:5000"); default-constructed when unknown.
  RegistryHost host(const std::string& host) const;
  /// Credentials for a host, or nullopt.
  std::optional<Credentials> credentials_for(const std::string& host) const;
  void set_host(const std::string& host, RegistryHost h) { hosts_[host] = std::move(h); }

  /// The default docker config path ($DOCKER_CONFIG/config.json or ~/.docker/config.json).
  static std::string default_docker_config();

 private:
  std::map<std::string, RegistryHost> hosts_;
  std::map<std::string, Credentials> docker_auths_;
};

/// True for 127.0.0.0/8, ::1 and localhost (with or without a port).
bool is_loopback_host(const std::string& host);

}  // namespace frakti::image
