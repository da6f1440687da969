#include "image/puller.hpp"

#include <ctime>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "common/log.hpp"
#include "image/error.hpp"

namespace frakti::image {

PullResult Puller::pull(const Reference& ref, const PullOptions& opts) {
  static const CancelToken never;
  const CancelToken& cancel = opts.cancel ? *opts.cancel : never;
  std::mutex progress_mu;
  auto progress = [&](PullProgress p) {
    if (!opts.progress) return;
    std::lock_guard lk(progress_mu);
    opts.progress(p);
  };
  Platform want = opts.platform ? *opts.platform : Platform::host();
  RegistryClient client(http_, config_, ref, opts.credentials, retry_);
  PullResult result;
  ImageRecord& rec = result.image;

  FetchedManifest top = client.get_manifest(ref.digest ? ref.digest->str() : ref.tag, cancel);
  FetchedManifest m = top;
  if (top.kind == ManifestKind::index) {
    Index idx = parse_index(top.body);
    Descriptor chosen = select_platform(idx, want);
    content_.put(top.body);
    rec.extra_blobs.push_back(top.digest);
    m = client.get_manifest(chosen.digest.str(), cancel);
    if (m.kind != ManifestKind::image) {
      throw ImageError(ErrorKind::unsupported, fmt::format("{}: index entry {} for {} is not an image manifest", ref.str(),
                                                           chosen.digest.str(), want.str()));
    }
  }
  Manifest manifest = parse_manifest(m.body);
  content_.put(m.body);
  rec.manifest_digest = m.digest;
  rec.manifest_media_type = manifest.media_type;
  progress({PullProgress::Kind::resolved, m.digest, 0, 0, top.digest.str()});

  std::mutex count_mu;
  auto fetch = [&](const Descriptor& d) {
    bool fetched = content_.ensure(d.digest, d.size, [&](BlobWriter& w) {
      progress({PullProgress::Kind::blob_start, d.digest, 0, static_cast<uint64_t>(d.size), {}});
      uint64_t last = 0;
      client.get_blob(
          d, [&] { w.reset(); },
          [&](const char* data, size_t len) {
            w.write(data, len);
            // At most one event per 256 KiB keeps the display cheap on fast links.
            if (w.written() - last >= (256u << 10)) {
              last = w.written();
              progress({PullProgress::Kind::blob_bytes, d.digest, w.written(), static_cast<uint64_t>(d.size), {}});
            }
          },
          cancel);
    });
    {
      std::lock_guard lk(count_mu);
      if (fetched) {
        ++result.blobs_fetched;
        result.bytes_fetched += static_cast<uint64_t>(d.size);
      }
    }
    progress({fetched ? PullProgress::Kind::blob_done : PullProgress::Kind::blob_cached, d.digest,
              static_cast<uint64_t>(d.size), static_cast<uint64_t>(d.size), {}});
  };

  fetch(manifest.config);
  rec.id = manifest.config.digest;
  rec.config = parse_config(content_.read(rec.id, kMaxConfigBytes));
  if (rec.config.diff_ids.size() != manifest.layers.size()) {
    throw ImageError(ErrorKind::invalid, fmt::format("{}: config lists {} diff_ids but the manifest has {} layers", ref.str(),
                                                     rec.config.diff_ids.size(), manifest.layers.size()));
  }
  if (!rec.config.architecture.empty() && !want.matches(Platform{rec.config.os, rec.config.architecture, rec.config.variant})) {
    common::log::warn("image", "{} is built for {}/{}, not {}", ref.str(), rec.config.os, rec.config.architecture, want.str());
  }

  // Layers download concurrently; the first failure cancels the rest through a shared token.
  std::atomic<size_t> next{0};
  std::exception_ptr first_error;
  std::mutex err_mu;
  int workers = std::max(1, std::min<int>(opts.max_concurrent_downloads, static_cast<int>(manifest.layers.size())));
  auto worker = [&] {
    for (;;) {
      size_t i = next.fetch_add(1);
      if (i >= manifest.layers.size()) return;
      {
        std::lock_guard lk(err_mu);
        if (first_error) return;
      }
      try {
        fetch(manifest.layers[i]);
      } catch (...) {
        std::lock_guard lk(err_mu);
        if (!first_error) first_error = std::current_exception();
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (first_error) std::rethrow_exception(first_error);

  rec.size = manifest.config.size;
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    auto& l = manifest.layers[i];
    rec.layers.push_back(LayerRecord{l.digest, l.media_type, l.size, rec.config.diff_ids[i]});
    rec.size += l.size;
  }
  if (!ref.tag.empty()) rec.repo_tags.push_back(ref.tagged());
  rec.repo_digests.push_back(ref.repository() + "@" + top.digest.str());
  rec.created_at = std::time(nullptr);
  return result;
}

}  // namespace frakti::image
