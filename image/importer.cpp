#include "image/importer.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <ctime>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "image/error.hpp"
#include "image/reference.hpp"
#include "image/safe_path.hpp"

namespace frakti::image {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_small_file(const fs::path& p, size_t limit) {
  common::Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw ImageError(ErrorKind::not_found, fmt::format("{}: cannot open: {}", p.string(), std::strerror(errno)));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = common::retry_eintr([&] { return ::read(fd.get(), buf, sizeof buf); });
    if (n < 0) common::throw_errno(fmt::format("read {}", p.string()));
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit) throw ImageError(ErrorKind::invalid, fmt::format("{}: larger than {} bytes", p.string(), limit));
  }
  return out;
}

void copy_file_into(BlobWriter& w, const fs::path& p) {
  common::Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw ImageError(ErrorKind::not_found, fmt::format("{}: cannot open: {}", p.string(), std::strerror(errno)));
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = common::retry_eintr([&] { return ::read(fd.get(), buf.data(), buf.size()); });
    if (n < 0) common::throw_errno(fmt::format("read {}", p.string()));
    if (n == 0) break;
    w.write(buf.data(), static_cast<size_t>(n));
  }
}

// Docker archives do not say how a layer is compressed; the first bytes do.
std::string sniff_layer_type(ContentStore& cs, const Digest& d) {
  common::Fd fd(::open(cs.path(d).c_str(), O_RDONLY | O_CLOEXEC));
  unsigned char m[4] = {0, 0, 0, 0};
  if (fd) (void)::read(fd.get(), m, sizeof m);
  if (m[0] == 0x1f && m[1] == 0x8b) return std::string(media::docker_layer_gzip);
  if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) return std::string(media::oci_layer_zstd);
  return "application/vnd.docker.image.rootfs.diff.tar";
}

}  // namespace

ImageRecord Importer::record_from_manifest(const Digest& md, const std::string& body,
                                           const std::function<void(const Descriptor&)>& copy_blob) {
  Manifest m = parse_manifest(body);
  copy_blob(m.config);
  ImageRecord rec;
  rec.id = m.config.digest;
  rec.manifest_digest = md;
  rec.manifest_media_type = m.media_type;
  rec.config = parse_config(content_.read(rec.id, kMaxConfigBytes));
  if (rec.config.diff_ids.size() != m.layers.size()) {
    throw ImageError(ErrorKind::invalid, fmt::format("manifest {}: config lists {} diff_ids for {} layers", md.str(),
                                                     rec.config.diff_ids.size(), m.layers.size()));
  }
  rec.size = m.config.size;
  for (size_t i = 0; i < m.layers.size(); ++i) {
    copy_blob(m.layers[i]);
    rec.layers.push_back(LayerRecord{m.layers[i].digest, m.layers[i].media_type, m.layers[i].size, rec.config.diff_ids[i]});
    rec.size += m.layers[i].size;
  }
  rec.created_at = std::time(nullptr);
  return rec;
}

std::vector<ImageRecord> Importer::import_oci_layout(const fs::path& dir, const ImportOptions& opts) {
  std::string layout = read_small_file(dir / "oci-layout", 4096);
  json lj = json::parse(layout, nullptr, false);
  if (lj.is_discarded() || !lj.is_object() || !lj.contains("imageLayoutVersion")) {
    throw ImageError(ErrorKind::invalid, fmt::format("{}: oci-layout is not an OCI layout marker", dir.string()));
  }
  auto copy_blob = [&](const Descriptor& d) {
    content_.ensure(d.digest, d.size, [&](BlobWriter& w) {
      copy_file_into(w, dir / "blobs" / "sha256" / std::string(d.digest.hex()));
    });
  };
  std::string base = opts.name.empty() ? fs::absolute(dir).lexically_normal().filename().string() : opts.name;
  if (base.empty()) base = fs::absolute(dir).parent_path().filename().string();
  Index top = parse_index(read_small_file(dir / "index.json", kMaxManifestBytes));
  Platform want = opts.platform ? *opts.platform : Platform::host();
  std::vector<ImageRecord> out;
  for (auto& entry : top.manifests) {
    copy_blob(entry);
    std::string body = content_.read(entry.digest, kMaxManifestBytes);
    ManifestKind kind = classify_manifest(entry.media_type, body);
    std::vector<Digest> extra;
    Digest md = entry.digest;
    if (kind == ManifestKind::index) {
      Descriptor chosen = select_platform(parse_index(body), want);
      copy_blob(chosen);
      extra.push_back(entry.digest);
      md = chosen.digest;
      body = content_.read(md, kMaxManifestBytes);
    } else if (kind != ManifestKind::image) {
      throw ImageError(ErrorKind::unsupported, fmt::format("{}: entry {} is not an image manifest or index", dir.string(), entry.digest.str()));
    }
    ImageRecord rec = record_from_manifest(md, body, copy_blob);
    rec.extra_blobs = extra;
    // Name: containerd's full name annotation, else the OCI ref name as a tag of `base`.
    std::string name;
    if (auto it = entry.annotations.find("io.containerd.image.name"); it != entry.annotations.end()) {
      name = it->second;
    } else if (auto rn = entry.annotations.find("org.opencontainers.image.ref.name"); rn != entry.annotations.end()) {
      name = rn->second.find_first_of("/:") != std::string::npos ? rn->second : base + ":" + rn->second;
    }
    if (!name.empty()) {
      Reference ref = Reference::parse(name);
      if (!ref.tag.empty()) rec.repo_tags.push_back(ref.tagged());
    }
    out.push_back(std::move(rec));
  }
  if (out.empty()) throw ImageError(ErrorKind::invalid, fmt::format("{}: index.json lists no images", dir.string()));
  return out;
}

std::vector<ImageRecord> Importer::import_docker_archive(const fs::path& tarball) {
  std::unique_ptr<archive, int (*)(archive*)> ar(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(ar.get());
  archive_read_support_format_tar(ar.get());
  archive_read_support_format_gnutar(ar.get());
  std::string what = fmt::format("docker archive {}", tarball.string());
  if (archive_read_open_filename(ar.get(), tarball.c_str(), 1 << 20) != ARCHIVE_OK) {
    throw ImageError(ErrorKind::invalid, fmt::format("{}: {}", what, archive_error_string(ar.get())));
  }
  std::map<std::string, Digest> files;  // member name -> blob
  std::string manifest_json;
  archive_entry* e = nullptr;
  int r;
  while ((r = archive_read_next_header(ar.get(), &e)) == ARCHIVE_OK) {
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    CleanPath p;
    std::string why;
    if (!clean_entry_path(archive_entry_pathname(e) ? archive_entry_pathname(e) : "", p, why) || p.parts.empty()) continue;
    std::string name = p.str();
    Digest d = content_.ingest([&](BlobWriter& w) {
      const void* block;
      size_t size;
      la_int64_t offset;
      int rr;
      while ((rr = archive_read_data_block(ar.get(), &block, &size, &offset)) == ARCHIVE_OK) {
        w.write(static_cast<const char*>(block), size);
      }
      if (rr != ARCHIVE_EOF) throw ImageError(ErrorKind::invalid, fmt::format("{}: member {}: {}", what, name, archive_error_string(ar.get())));
    });
    files[name] = d;
    if (name == "manifest.json") manifest_json = content_.read(d, kMaxManifestBytes);
  }
  if (r != ARCHIVE_EOF) throw ImageError(ErrorKind::invalid, fmt::format("{}: {}", what, archive_error_string(ar.get())));
  if (manifest_json.empty()) throw ImageError(ErrorKind::invalid, fmt::format("{}: no manifest.json (not a docker-archive?)", what));
  json mj = json::parse(manifest_json, nullptr, false);
  if (mj.is_discarded() || !mj.is_array()) throw ImageError(ErrorKind::invalid, fmt::format("{}: manifest.json is not a JSON array", what));

  auto member = [&](const json& v, const char* field) -> Digest {
    if (!v.is_string()) throw ImageError(ErrorKind::invalid, fmt::format("{}: manifest.json {} is not a string", what, field));
    CleanPath p;
    std::string why;
    clean_entry_path(v.get<std::string>(), p, why);
    auto it = files.find(p.str());
    if (it == files.end()) throw ImageError(ErrorKind::invalid, fmt::format("{}: manifest.json names {} \"{}\" which is not in the archive", what, field, v.get<std::string>().substr(0, 200)));
    return it->second;
  };
  std::vector<ImageRecord> out;
  for (auto& img : mj) {
    if (!img.is_object() || !img.contains("Config") || !img.contains("Layers") || !img["Layers"].is_array()) {
      throw ImageError(ErrorKind::invalid, fmt::format("{}: manifest.json entry lacks Config or Layers", what));
    }
    // Synthesise a schema2 manifest so loaded images look like pulled ones.
    Digest cfg = member(img["Config"], "Config");
    json m = {{"schemaVersion", 2}, {"mediaType", media::docker_manifest},
              {"config", {{"mediaType", media::docker_config}, {"digest", cfg.str()}, {"size", content_.size(cfg)}}},
              {"layers", json::array()}};
    for (auto& l : img["Layers"]) {
      Digest ld = member(l, "layer");
      m["layers"].push_back({{"mediaType", sniff_layer_type(content_, ld)}, {"digest", ld.str()}, {"size", content_.size(ld)}});
    }
    std::string body = m.dump();
    Digest md = content_.put(body);
    ImageRecord rec = record_from_manifest(md, body, [](const Descriptor&) {});
    if (auto tags = img.find("RepoTags"); tags != img.end() && tags->is_array()) {
      for (auto& t : *tags) {
        if (t.is_string()) rec.repo_tags.push_back(Reference::parse(t.get<std::string>()).tagged());
      }
    }
    out.push_back(std::move(rec));
  }
  return out;
}

}  // namespace frakti::image
