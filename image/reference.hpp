#pragma once
// Image references with Docker's normalisation rules:
//   busybox                 -> docker.io/library/busybox:latest
//   user/app:1.0            -> docker.io/user/app:1.0
//   127.0.0.1:5000/app@sha256:... (digest; a tag may also be present and is kept for naming)

#include <optional>
#include <string>
#include <string_view>

#include "image/digest.hpp"

namespace frakti::image {

/// A fully normalised reference. Every field is validated by parse().
struct Reference {
  std::string domain;   ///< "docker.io", "127.0.0.1:5000", "registry.example.com"
  std::string path;     ///< "library/busybox"
  std::string tag;      ///< empty when only a digest was given
  std::optional<Digest> digest;

  /// Parses and normalises; adds ":latest" when neither tag nor digest is present.
  /// Throws ImageError(invalid) with the reason.
  static Reference parse(std::string_view text);

  /// "docker.io/library/busybox" (no tag or digest).
  std::string repository() const { return domain + "/" + path; }
  /// "docker.io/library/busybox:latest" or ".../busybox@sha256:..." (digest wins).
  std::string str() const;
  /// repository:tag, or empty when there is no tag.
  std::string tagged() const { return tag.empty() ? std::string() : repository() + ":" + tag; }
  /// The host to contact for this domain (docker.io is served by registry-1.docker.io).
  std::string registry_host() const;
  /// The part after the domain, as the registry API wants it ("library/busybox").
  const std::string& remote_name() const { return path; }
};

/// True for a 64-hex string or a prefix of one (at least 3 characters) that could be an
/// image ID or short ID rather than a name.
bool looks_like_id(std::string_view text);

}  // namespace frakti::image
