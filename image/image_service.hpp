#pragma once
// ImageService: the image library's front door, used by vmctl and (later) the CRI server.
// Holds the stores under <root>/image and offers native calls (pull, load, remove, fs_image)
// plus the CRI ImageService calls in CRI's shapes (without gRPC types).
//
// Layout under <root>/image:
//   blobs/sha256/<hex>   content store      images/<id>.json  image records
//   fs/<id>.erofs        filesystem images  ingest/, tmp/     work areas

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "image/content_store.hpp"
#include "image/fs_image.hpp"
#include "image/http_client.hpp"
#include "image/image_store.hpp"
#include "image/importer.hpp"
#include "image/puller.hpp"
#include "image/registry_config.hpp"

namespace frakti::image {

struct ServiceOptions {
  std::filesystem::path root = "/var/lib/frakti";  ///< the runtime root; images live in root/image
  RegistryConfig registries;
  FsFormat format = FsFormat::erofs;
  bool build_fs_image = true;  ///< build the filesystem image as part of pull/load
  RetryPolicy retry;
  int max_concurrent_downloads = 3;
};

// --- CRI shapes (runtime.v1) ---

/// CRI ImageSpec.
struct ImageSpec {
  std::string image;
  std::map<std::string, std::string> annotations;
};
/// CRI Image.
struct CriImage {
  std::string id;
  std::vector<std::string> repo_tags;
  std::vector<std::string> repo_digests;
  uint64_t size = 0;
  std::optional<int64_t> uid;  ///< set when the config's user is numeric
  std::string username;        ///< set when it is a name
  ImageSpec spec;
  bool pinned = false;
};
/// The parts of PodSandboxConfig that matter to a pull (used for logging and annotations).
struct SandboxInfo {
  std::string name, namespace_, uid;
  std::map<std::string, std::string> annotations;
};
struct ImageStatusResult {
  std::optional<CriImage> image;       ///< empty when the image is not present (not an error)
  std::map<std::string, std::string> info;  ///< verbose: "info" -> JSON of config and layers
};
struct ImageFilter {
  std::optional<ImageSpec> image;
};
/// CRI FilesystemUsage.
struct FilesystemUsage {
  int64_t timestamp_ns = 0;
  std::string mountpoint;
  uint64_t used_bytes = 0;
  uint64_t inodes_used = 0;
};

/// What remove() did.
struct RemoveResult {
  std::vector<std::string> untagged;
  std::vector<Digest> deleted;
  uint64_t bytes_freed = 0;
};

class ImageService {
 public:
  explicit ImageService(ServiceOptions opts);

  // --- native calls ---
  /// Pulls and records an image (and builds its filesystem image unless disabled).
  PullResult pull(const std::string& ref, const PullOptions& opts);
  /// Imports an OCI layout directory or a docker-archive tarball.
  std::vector<ImageRecord> load(const std::filesystem::path& path, const ImportOptions& opts);
  std::vector<ImageRecord> images() const { return images_.list(); }
  /// Finds by ID, short ID, tag or digest.
  std::optional<ImageRecord> find(const std::string& name) const { return images_.lookup(name); }
  /// A reference removes that name (the image goes when no name is left); an ID removes the
  /// image with all its names. Unreferenced blobs and filesystem images are collected.
  RemoveResult remove(const std::string& name);
  /// The filesystem image file of an image, built on first use.
  std::filesystem::path fs_image(const std::string& name);
  /// Deletes unreferenced blobs and filesystem images; returns bytes freed.
  uint64_t garbage_collect();

  // --- CRI ImageService ---
  /// PullImage: returns the image reference (the image ID).
  std::string pull_image(const ImageSpec& image, const std::optional<AuthConfig>& auth,
                         const std::optional<SandboxInfo>& sandbox, const CancelToken* cancel = nullptr);
  ImageStatusResult image_status(const ImageSpec& image, bool verbose) const;
  std::vector<CriImage> list_images(const ImageFilter& filter) const;
  /// RemoveImage: succeeds when the image is already gone.
  void remove_image(const ImageSpec& image);
  std::vector<FilesystemUsage> image_fs_info() const;

  const std::filesystem::path& image_root() const { return root_; }
  ContentStore& content() { return content_; }
  FsImageBuilder& fs_builder() { return fs_; }

 private:
  void commit(ImageRecord rec);
  CriImage to_cri(const ImageRecord& r) const;

  ServiceOptions opts_;
  std::filesystem::path root_;
  HttpClient http_;
  ContentStore content_;
  ImageStore images_;
  FsImageBuilder fs_;
};

}  // namespace frakti::image
