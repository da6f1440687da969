#include "image/image_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/log.hpp"
#include "image/error.hpp"
#include "image/reference.hpp"

namespace frakti::image {

namespace fs = std::filesystem;
using nlohmann::json;

std::set<Digest> ImageRecord::blobs() const {
  std::set<Digest> s{id, manifest_digest};
  for (auto& b : extra_blobs) s.insert(b);
  for (auto& l : layers) s.insert(l.digest);
  return s;
}

ImageStore::ImageStore(fs::path root, ContentStore& content)
    : dir_(root / "images"), lock_path_(root / "images.lock"), content_(content) {
  fs::create_directories(dir_);
}

fs::path ImageStore::record_path(const Digest& id) const { return dir_ / (std::string(id.hex()) + ".json"); }

void ImageStore::write(const ImageRecord& r) const {
  json j;
  j["id"] = r.id.str();
  j["repo_tags"] = r.repo_tags;
  j["repo_digests"] = r.repo_digests;
  j["manifest_digest"] = r.manifest_digest.str();
  j["manifest_media_type"] = r.manifest_media_type;
  j["extra_blobs"] = json::array();
  for (auto& b : r.extra_blobs) j["extra_blobs"].push_back(b.str());
  j["layers"] = json::array();
  for (auto& l : r.layers) {
    j["layers"].push_back({{"digest", l.digest.str()}, {"media_type", l.media_type}, {"size", l.size},
                           {"diff_id", l.diff_id.str()}});
  }
  j["size"] = r.size;
  j["created_at"] = r.created_at;
  std::string text = j.dump(2);
  fs::path final = record_path(r.id);
  fs::path tmp = final;
  tmp += fmt::format(".{}.tmp", ::getpid());
  {
    common::Fd fd(common::check(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), "create {}", tmp.string()));
    common::write_all(fd.get(), text.data(), text.size(), tmp.c_str());
    common::check(::fsync(fd.get()), "fsync {}", tmp.string());
  }
  common::check(::rename(tmp.c_str(), final.c_str()), "rename {}", final.string());
}

std::optional<ImageRecord> ImageStore::read(const fs::path& p) const {
  std::ifstream f(p);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  try {
    if (j.is_discarded()) throw std::runtime_error("not JSON");
    ImageRecord r;
    r.id = Digest::parse(j.at("id").get<std::string>());
    r.repo_tags = j.at("repo_tags").get<std::vector<std::string>>();
    r.repo_digests = j.at("repo_digests").get<std::vector<std::string>>();
    r.manifest_digest = Digest::parse(j.at("manifest_digest").get<std::string>());
    r.manifest_media_type = j.at("manifest_media_type").get<std::string>();
    for (auto& b : j.at("extra_blobs")) r.extra_blobs.push_back(Digest::parse(b.get<std::string>()));
    for (auto& l : j.at("layers")) {
      r.layers.push_back(LayerRecord{Digest::parse(l.at("digest").get<std::string>()), l.at("media_type").get<std::string>(),
                                     l.at("size").get<int64_t>(), Digest::parse(l.at("diff_id").get<std::string>())});
    }
    r.size = j.at("size").get<int64_t>();
    r.created_at = j.at("created_at").get<int64_t>();
    r.config = parse_config(content_.read(r.id, kMaxConfigBytes));
    return r;
  } catch (const std::exception& e) {
    common::log::warn("image", "ignoring unreadable image record {}: {}", p.string(), e.what());
    return std::nullopt;
  }
}

std::vector<ImageRecord> ImageStore::list() const {
  std::vector<ImageRecord> out;
  for (auto& e : fs::directory_iterator(dir_)) {
    if (e.path().extension() != ".json") continue;
    if (auto r = read(e.path())) out.push_back(std::move(*r));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.created_at > b.created_at; });
  return out;
}

std::optional<ImageRecord> ImageStore::get(const Digest& id) const { return read(record_path(id)); }

std::optional<ImageRecord> ImageStore::lookup(const std::string& name) const {
  if (Digest::valid(name)) return get(Digest::parse(name));
  if (name.size() == 64 && looks_like_id(name)) {
    if (auto r = get(Digest::from_hex(name))) return r;
  }
  auto images = list();
  try {
    Reference ref = Reference::parse(name);
    for (auto& r : images) {
      if (ref.digest) {
        std::string want = ref.repository() + "@" + ref.digest->str();
        if (std::find(r.repo_digests.begin(), r.repo_digests.end(), want) != r.repo_digests.end()) return r;
      } else if (std::find(r.repo_tags.begin(), r.repo_tags.end(), ref.tagged()) != r.repo_tags.end()) {
        return r;
      }
    }
  } catch (const ImageError&) {
    // Not a reference; it may still be a short ID.
  }
  if (looks_like_id(name)) {
    std::string prefix = name.rfind("sha256:", 0) == 0 ? name.substr(7) : name;
    std::optional<ImageRecord> found;
    for (auto& r : images) {
      if (r.id.hex().substr(0, prefix.size()) != prefix) continue;
      if (found) throw ImageError(ErrorKind::invalid, fmt::format("short ID \"{}\" matches more than one image; give more digits", name));
      found = r;
    }
    return found;
  }
  return std::nullopt;
}

void ImageStore::put(const ImageRecord& rec) {
  FileLock lock(lock_path_, true);
  ImageRecord merged = rec;
  if (auto old = get(rec.id)) {
    merged.repo_tags = old->repo_tags;
    merged.repo_digests = old->repo_digests;
    merged.created_at = old->created_at;
    // Keep index blobs from earlier pulls too: other tags may still point through them.
    for (auto& b : old->extra_blobs) {
      if (std::find(merged.extra_blobs.begin(), merged.extra_blobs.end(), b) == merged.extra_blobs.end()) merged.extra_blobs.push_back(b);
    }
    for (auto& t : rec.repo_tags) {
      if (std::find(merged.repo_tags.begin(), merged.repo_tags.end(), t) == merged.repo_tags.end()) merged.repo_tags.push_back(t);
    }
    for (auto& d : rec.repo_digests) {
      if (std::find(merged.repo_digests.begin(), merged.repo_digests.end(), d) == merged.repo_digests.end()) merged.repo_digests.push_back(d);
    }
  }
  // A tag names one image: take it from whoever had it.
  for (auto& other : list()) {
    if (other.id == rec.id) continue;
    size_t before = other.repo_tags.size();
    std::erase_if(other.repo_tags, [&](auto& t) { return std::find(rec.repo_tags.begin(), rec.repo_tags.end(), t) != rec.repo_tags.end(); });
    if (other.repo_tags.size() != before) write(other);
  }
  write(merged);
}

std::optional<Digest> ImageStore::untag(const std::string& name) {
  FileLock lock(lock_path_, true);
  for (auto& r : list()) {
    size_t before = r.repo_tags.size() + r.repo_digests.size();
    std::erase(r.repo_tags, name);
    std::erase(r.repo_digests, name);
    if (r.repo_tags.size() + r.repo_digests.size() != before) {
      write(r);
      return r.id;
    }
  }
  return std::nullopt;
}

void ImageStore::remove(const Digest& id) {
  FileLock lock(lock_path_, true);
  std::error_code ec;
  fs::remove(record_path(id), ec);
}

std::set<Digest> ImageStore::referenced_blobs() const {
  std::set<Digest> keep;
  for (auto& r : list()) {
    auto b = r.blobs();
    keep.insert(b.begin(), b.end());
  }
  return keep;
}

}  // namespace frakti::image
