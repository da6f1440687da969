#pragma once
// Importer: images without a registry. Reads an OCI image layout directory or a
// docker-archive tarball (`docker save`, `skopeo copy ... docker-archive:`), copies the blobs
// into the content store (verified against their digests) and returns image records for the
// service to record.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "image/content_store.hpp"
#include "image/image_store.hpp"
#include "image/manifest.hpp"

namespace frakti::image {

struct ImportOptions {
  /// Repository for OCI layouts whose entries carry only a tag in
  /// org.opencontainers.image.ref.name; default: the directory's name.
  std::string name;
  std::optional<Platform> platform;  ///< for index entries; default: the host's
};

class Importer {
 public:
  explicit Importer(ContentStore& content) : content_(content) {}
  /// Imports every image of an OCI layout directory.
  std::vector<ImageRecord> import_oci_layout(const std::filesystem::path& dir, const ImportOptions& opts);
  /// Imports every image of a docker-archive tarball.
  std::vector<ImageRecord> import_docker_archive(const std::filesystem::path& tarball);

 private:
  ImageRecord record_from_manifest(const Digest& manifest_digest, const std::string& body,
                                   const std::function<void(const Descriptor&)>& copy_blob);

  ContentStore& content_;
};

}  // namespace frakti::image
