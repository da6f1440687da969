#pragma once
// FsImageBuilder: one read-only filesystem image per image ID, built once from the merged
// layers and cached as <root>/fs/<id-hex>.<format>. The same file is the virtio-blk drive of
// VM pods and the loop-mounted lower layer of runc pods.
//
// Format: erofs (uncompressed) by default; see docs/image.md for the measurements behind it.

#include <filesystem>
#include <string>

#include "image/content_store.hpp"
#include "image/image_store.hpp"
#include "image/unpacker.hpp"

namespace frakti::image {

enum class FsFormat { erofs, ext4 };
/// "erofs" / "ext4"; parse throws ImageError(invalid).
const char* fs_format_name(FsFormat f);
FsFormat parse_fs_format(const std::string& s);

/// Builds a filesystem image file from a directory tree (atomically: a temp file is renamed).
void make_fs_image(FsFormat format, const std::filesystem::path& tree, const std::filesystem::path& out);

class FsImageBuilder {
 public:
  FsImageBuilder(std::filesystem::path root, ContentStore& content, FsFormat format = FsFormat::erofs);

  /// The cached file for an image (which may not exist yet).
  std::filesystem::path path(const Digest& id) const;
  /// Returns the image file, unpacking the layers and building it when not cached. Layers are
  /// checked against the config's diff_ids. Safe to call concurrently (one build per ID).
  /// When keep_tree is non-empty the merged tree is left there (tests compare it).
  std::filesystem::path ensure(const ImageRecord& image, UnpackReport* report = nullptr,
                               const std::filesystem::path& keep_tree = {});
  /// Unpacks an image's layers into an existing empty directory.
  UnpackReport unpack(const ImageRecord& image, const std::filesystem::path& target);
  /// Deletes the cached file of an image (ENOENT is fine).
  void remove(const Digest& id);
  FsFormat format() const { return format_; }

 private:
  std::filesystem::path dir_;
  std::filesystem::path tmp_;
  ContentStore& content_;
  FsFormat format_;
};

}  // namespace frakti::image
