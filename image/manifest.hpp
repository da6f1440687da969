#pragma once
// OCI and Docker manifest, index and image-config parsing. Everything here reads data from a
// registry or an archive, so every field is checked and every failure is an ImageError(invalid
// or unsupported) naming the document; nothing is trusted for sizes, digests or paths.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "image/digest.hpp"

namespace frakti::image {

namespace media {
inline constexpr std::string_view oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view docker_manifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view docker_list =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view docker_schema1 =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view docker_schema1_signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
inline constexpr std::string_view oci_config = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view docker_config = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view oci_layer_tar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view oci_layer_gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view oci_layer_zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view docker_layer_gzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// The Accept header for manifest requests: every kind we can read, best first.
std::string manifest_accept();
}  // namespace media

/// Largest manifest, index or config we accept (registries cap manifests at 4 MiB).
inline constexpr size_t kMaxManifestBytes = 4u << 20;
inline constexpr size_t kMaxConfigBytes = 16u << 20;

/// An os/architecture/variant triple.
struct Platform {
  std::string os = "linux";
  std::string architecture;
  std::string variant;
  /// Parses "linux/amd64", "linux/arm/v7", "amd64"; throws ImageError(invalid).
  static Platform parse(std::string_view text);
  /// The platform this binary runs on.
  static Platform host();
  /// True when a descriptor's platform satisfies this wanted platform.
  bool matches(const Platform& candidate) const;
  std::string str() const;
};

/// A content descriptor (media type, digest, size), checked on parse.
struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::optional<Platform> platform;
  std::map<std::string, std::string> annotations;
};

/// The kind of a manifest document, from its Content-Type and its own mediaType field.
enum class ManifestKind { image, index, schema1, unknown };
ManifestKind classify_manifest(std::string_view content_type, std::string_view body);

/// An image manifest (OCI or Docker schema 2).
struct Manifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
};
/// An index or manifest list.
struct Index {
  std::string media_type;
  std::vector<Descriptor> manifests;
};

/// The parts of the image config the runtime and CRI need, plus the raw JSON.
struct ImageConfig {
  std::string os;
  std::string architecture;
  std::string variant;
  std::string created;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;
  std::string working_dir;
  std::string user;
  std::string stop_signal;
  std::vector<std::string> exposed_ports;
  std::vector<std::string> volumes;
  std::map<std::string, std::string> labels;
  std::vector<Digest> diff_ids;
};

Manifest parse_manifest(std::string_view body);
Index parse_index(std::string_view body);
ImageConfig parse_config(std::string_view body);
/// Picks the manifest for `want` from an index; throws ImageError(unsupported) listing the
/// platforms that are present when none matches.
Descriptor select_platform(const Index& index, const Platform& want);
/// True for layer media types we can unpack (tar, gzip, zstd; OCI and Docker spellings).
bool is_layer_media_type(std::string_view mt);

}  // namespace frakti::image
