#include "image/image_service.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/log.hpp"
#include "image/error.hpp"
#include "image/reference.hpp"

namespace frakti::image {

namespace fs = std::filesystem;

ImageService::ImageService(ServiceOptions opts)
    : opts_(std::move(opts)),
      root_(opts_.root / "image"),
      content_(root_),
      images_(root_, content_),
      fs_(root_, content_, opts_.format) {}

void ImageService::commit(ImageRecord rec) {
  // Build before recording: an image whose layers do not unpack must not appear in `images`.
  if (opts_.build_fs_image) {
    UnpackReport report;
    fs_.ensure(rec, &report);
    for (auto& w : report.warnings) common::log::warn("image", "{}: {}", rec.short_id(), w);
    if (report.warnings_dropped) common::log::warn("image", "{}: {} more unpack warnings", rec.short_id(), report.warnings_dropped);
  }
  images_.put(rec);
}

PullResult ImageService::pull(const std::string& text, const PullOptions& opts) {
  Reference ref = Reference::parse(text);
  FileLock gc = content_.hold_gc_shared();
  Puller puller(http_, opts_.registries, content_, opts_.retry);
  PullOptions o = opts;
  if (o.max_concurrent_downloads <= 0) o.max_concurrent_downloads = opts_.max_concurrent_downloads;
  auto t0 = std::chrono::steady_clock::now();
  PullResult r = puller.pull(ref, o);
  auto t1 = std::chrono::steady_clock::now();
  if (opts.progress && opts_.build_fs_image) opts.progress({PullProgress::Kind::building, r.image.id, 0, 0, fs_format_name(opts_.format)});
  commit(r.image);
  auto t2 = std::chrono::steady_clock::now();
  if (opts.progress) opts.progress({PullProgress::Kind::done, r.image.id, 0, 0, {}});
  using ms = std::chrono::milliseconds;
  common::log::info("image", "pulled {} as {} ({} blobs, {} bytes downloaded in {} ms; filesystem image {} ms)", ref.str(),
                    r.image.short_id(), r.blobs_fetched, r.bytes_fetched, std::chrono::duration_cast<ms>(t1 - t0).count(),
                    std::chrono::duration_cast<ms>(t2 - t1).count());
  return r;
}

std::vector<ImageRecord> ImageService::load(const fs::path& path, const ImportOptions& opts) {
  FileLock gc = content_.hold_gc_shared();
  Importer importer(content_);
  std::error_code ec;
  std::vector<ImageRecord> recs = fs::is_directory(path, ec) ? importer.import_oci_layout(path, opts)
                                                              : importer.import_docker_archive(path);
  for (auto& r : recs) commit(r);
  return recs;
}

RemoveResult ImageService::remove(const std::string& name) {
  RemoveResult res;
  auto rec = images_.lookup(name);
  if (!rec) throw ImageError(ErrorKind::not_found, fmt::format("no image \"{}\"", name));
  bool by_id = Digest::valid(name) || (looks_like_id(name) && rec->id.hex().substr(0, name.size()) == name);
  if (!by_id) {
    Reference ref = Reference::parse(name);
    std::string n = ref.digest ? ref.repository() + "@" + ref.digest->str() : ref.tagged();
    images_.untag(n);
    res.untagged.push_back(n);
    rec = images_.get(rec->id);
  }
  // Docker semantics: once the last tag is gone, digests alone do not keep an image.
  if (rec && (by_id || rec->repo_tags.empty())) {
    images_.remove(rec->id);
    res.deleted.push_back(rec->id);
  }
  res.bytes_freed = garbage_collect();
  return res;
}

uint64_t ImageService::garbage_collect() {
  std::set<Digest> keep = images_.referenced_blobs();
  uint64_t freed = content_.garbage_collect(keep);
  // Filesystem images follow their image records.
  std::set<std::string> ids;
  for (auto& d : keep) ids.insert(std::string(d.hex()));
  for (auto& e : fs::directory_iterator(root_ / "fs")) {
    std::string stem = e.path().stem().string();
    if (ids.count(stem)) continue;
    std::error_code ec;
    freed += e.file_size(ec);
    fs::remove(e.path(), ec);
  }
  return freed;
}

fs::path ImageService::fs_image(const std::string& name) {
  auto rec = images_.lookup(name);
  if (!rec) throw ImageError(ErrorKind::not_found, fmt::format("no image \"{}\" (pull or load it first)", name));
  return fs_.ensure(*rec);
}

std::string ImageService::pull_image(const ImageSpec& image, const std::optional<AuthConfig>& auth,
                                     const std::optional<SandboxInfo>& sandbox, const CancelToken* cancel) {
  PullOptions o;
  if (auth) o.credentials = auth->credentials();
  o.cancel = cancel;
  if (sandbox) common::log::info("image", "pulling {} for pod {}/{}", image.image, sandbox->namespace_, sandbox->name);
  return pull(image.image, o).image.id.str();
}

CriImage ImageService::to_cri(const ImageRecord& r) const {
  CriImage c;
  c.id = r.id.str();
  c.repo_tags = r.repo_tags;
  c.repo_digests = r.repo_digests;
  c.size = static_cast<uint64_t>(r.size);
  c.spec.image = r.id.str();
  // CRI wants uid for numeric users and username otherwise; "uid:gid" counts as numeric.
  std::string user = r.config.user.substr(0, r.config.user.find(':'));
  if (!user.empty() && std::all_of(user.begin(), user.end(), ::isdigit) && user.size() < 10) {
    c.uid = std::stoll(user);
  } else {
    c.username = user;
  }
  return c;
}

ImageStatusResult ImageService::image_status(const ImageSpec& image, bool verbose) const {
  ImageStatusResult res;
  auto rec = images_.lookup(image.image);
  if (!rec) return res;
  res.image = to_cri(*rec);
  if (verbose) {
    nlohmann::json j;
    const ImageConfig& c = rec->config;
    j["config"] = {{"Entrypoint", c.entrypoint}, {"Cmd", c.cmd},     {"Env", c.env},
                   {"WorkingDir", c.working_dir}, {"User", c.user}, {"ExposedPorts", c.exposed_ports},
                   {"Volumes", c.volumes},       {"Labels", c.labels}, {"StopSignal", c.stop_signal}};
    j["os"] = c.os;
    j["architecture"] = c.architecture;
    j["created"] = c.created;
    j["manifestDigest"] = rec->manifest_digest.str();
    j["layers"] = nlohmann::json::array();
    for (auto& l : rec->layers) j["layers"].push_back({{"digest", l.digest.str()}, {"size", l.size}, {"diffID", l.diff_id.str()}});
    std::error_code ec;
    fs::path fsimg = fs_.path(rec->id);
    if (fs::exists(fsimg, ec)) j["fsImage"] = fsimg.string();
    res.info["info"] = j.dump();
  }
  return res;
}

std::vector<CriImage> ImageService::list_images(const ImageFilter& filter) const {
  std::vector<CriImage> out;
  if (filter.image && !filter.image->image.empty()) {
    if (auto r = images_.lookup(filter.image->image)) out.push_back(to_cri(*r));
    return out;
  }
  for (auto& r : images_.list()) out.push_back(to_cri(r));
  return out;
}

void ImageService::remove_image(const ImageSpec& image) {
  auto rec = images_.lookup(image.image);
  if (!rec) return;
  // CRI removes the whole image whatever name it was given.
  remove(rec->id.str());
}

std::vector<FilesystemUsage> ImageService::image_fs_info() const {
  FilesystemUsage u;
  u.timestamp_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  u.mountpoint = root_.string();
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root_, ec); it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    struct stat st{};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    ++u.inodes_used;
    u.used_bytes += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return {u};
}

}  // namespace frakti::image
