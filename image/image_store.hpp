#pragma once
// ImageStore: image metadata, one JSON record per image under <root>/images/<id-hex>.json,
// written atomically. The image ID is the config digest. Tags and repo digests are unique
// across images: tagging one image takes the tag from any other. Mutations hold an exclusive
// flock on <root>/images.lock so the daemon and vmctl can share a root.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "image/content_store.hpp"
#include "image/manifest.hpp"

namespace frakti::image {

struct LayerRecord {
  Digest digest;  ///< blob digest (compressed)
  std::string media_type;
  int64_t size = 0;
  Digest diff_id;  ///< uncompressed digest from the config
};

/// Everything we know about one image.
struct ImageRecord {
  Digest id;  ///< config digest
  std::vector<std::string> repo_tags;     ///< "docker.io/library/busybox:latest"
  std::vector<std::string> repo_digests;  ///< "docker.io/library/busybox@sha256:<manifest>"
  Digest manifest_digest;
  std::string manifest_media_type;
  std::vector<Digest> extra_blobs;  ///< index documents the image was selected from
  std::vector<LayerRecord> layers;
  int64_t size = 0;  ///< config + compressed layers, as registries and docker report it
  int64_t created_at = 0;  ///< unix seconds when stored here
  ImageConfig config;      ///< parsed from the config blob when loaded

  /// Every blob this image keeps alive.
  std::set<Digest> blobs() const;
  /// "sha256:abc..." shortened to 12 hex characters.
  std::string short_id() const { return std::string(id.hex().substr(0, 12)); }
};

class ImageStore {
 public:
  ImageStore(std::filesystem::path root, ContentStore& content);

  std::vector<ImageRecord> list() const;
  std::optional<ImageRecord> get(const Digest& id) const;
  /// Finds an image by full ID, reference (tag or digest, normalised), or unique short ID.
  /// Throws ImageError(invalid) for an ambiguous short ID; nullopt when nothing matches.
  std::optional<ImageRecord> lookup(const std::string& name) const;
  /// Stores (or merges into) the record for rec.id, adding its tags and digests and taking
  /// those tags away from other images.
  void put(const ImageRecord& rec);
  /// Removes one tag or digest name; returns the image it was on.
  std::optional<Digest> untag(const std::string& normalised_name);
  /// Deletes an image record.
  void remove(const Digest& id);
  /// Blobs referenced by any image (GC roots).
  std::set<Digest> referenced_blobs() const;

 private:
  std::filesystem::path record_path(const Digest& id) const;
  void write(const ImageRecord& rec) const;
  std::optional<ImageRecord> read(const std::filesystem::path& p) const;

  std::filesystem::path dir_;
  std::filesystem::path lock_path_;
  ContentStore& content_;
};

}  // namespace frakti::image
