#include "image/manifest.hpp"

#include <sys/utsname.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "image/error.hpp"

namespace frakti::image {
namespace {

using nlohmann::json;

[[noreturn]] void bad(std::string_view doc, std::string_view why) {
  throw ImageError(ErrorKind::invalid, fmt::format("invalid {}: {}", doc, why));
}

json parse_json(std::string_view body, std::string_view doc, size_t limit) {
  if (body.size() > limit) bad(doc, fmt::format("{} bytes is more than the {} byte limit", body.size(), limit));
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) bad(doc, "not valid JSON");
  if (!j.is_object()) bad(doc, "not a JSON object");
  return j;
}

std::string get_string(const json& j, const char* key, std::string_view doc) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_string()) bad(doc, fmt::format("\"{}\" is not a string", key));
  return it->get<std::string>();
}

std::vector<std::string> get_strings(const json& j, const char* key, std::string_view doc) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) bad(doc, fmt::format("\"{}\" is not an array", key));
  for (auto& v : *it) {
    if (!v.is_string()) bad(doc, fmt::format("\"{}\" holds a non-string", key));
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::vector<std::string> get_keys(const json& j, const char* key, std::string_view doc) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_object()) bad(doc, fmt::format("\"{}\" is not an object", key));
  for (auto& [k, v] : it->items()) out.push_back(k);
  return out;
}

Platform parse_platform(const json& j, std::string_view doc) {
  if (!j.is_object()) bad(doc, "platform is not an object");
  Platform p;
  p.os = get_string(j, "os", doc);
  p.architecture = get_string(j, "architecture", doc);
  p.variant = get_string(j, "variant", doc);
  return p;
}

Descriptor parse_descriptor(const json& j, std::string_view doc) {
  if (!j.is_object()) bad(doc, "descriptor is not an object");
  Descriptor d;
  d.media_type = get_string(j, "mediaType", doc);
  std::string dg = get_string(j, "digest", doc);
  if (!Digest::valid(dg)) bad(doc, fmt::format("descriptor digest \"{}\" is not sha256:<hex>", dg.substr(0, 100)));
  d.digest = Digest::parse(dg);
  auto sz = j.find("size");
  if (sz == j.end() || !sz->is_number_integer() || sz->get<int64_t>() < 0) {
    bad(doc, fmt::format("descriptor {} has no valid size", dg));
  }
  d.size = sz->get<int64_t>();
  if (auto p = j.find("platform"); p != j.end() && !p->is_null()) d.platform = parse_platform(*p, doc);
  if (auto a = j.find("annotations"); a != j.end() && a->is_object()) {
    for (auto& [k, v] : a->items()) {
      if (v.is_string()) d.annotations[k] = v.get<std::string>();
    }
  }
  return d;
}

std::string normalise_arch(std::string a) {
  if (a == "x86_64" || a == "x86-64") return "amd64";
  if (a == "aarch64") return "arm64";
  return a;
}

}  // namespace

std::string media::manifest_accept() {
  return fmt::format("{}, {}, {}, {}", oci_index, oci_manifest, docker_list, docker_manifest);
}

Platform Platform::parse(std::string_view text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    auto end = text.find('/', start);
    parts.emplace_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  for (auto& p : parts) {
    if (p.empty() || p.size() > 64) {
      throw ImageError(ErrorKind::invalid,
                       fmt::format("invalid platform \"{}\" (expected os/arch[/variant], e.g. linux/amd64)", text.substr(0, 100)));
    }
  }
  Platform p;
  if (parts.size() == 1) {
    p.architecture = normalise_arch(parts[0]);
  } else if (parts.size() <= 3) {
    p.os = parts[0];
    p.architecture = normalise_arch(parts[1]);
    if (parts.size() == 3) p.variant = parts[2];
  } else {
    throw ImageError(ErrorKind::invalid, fmt::format("invalid platform \"{}\" (too many parts)", text.substr(0, 100)));
  }
  return p;
}

Platform Platform::host() {
  utsname u{};
  ::uname(&u);
  Platform p;
  p.architecture = normalise_arch(u.machine);
  return p;
}

bool Platform::matches(const Platform& c) const {
  if (c.os != os || normalise_arch(c.architecture) != architecture) return false;
  if (variant.empty()) return true;
  // arm64's only variant is v8, and indexes often leave it out.
  if (architecture == "arm64" && variant == "v8" && c.variant.empty()) return true;
  return c.variant == variant;
}

std::string Platform::str() const {
  return variant.empty() ? fmt::format("{}/{}", os, architecture)
                         : fmt::format("{}/{}/{}", os, architecture, variant);
}

ManifestKind classify_manifest(std::string_view content_type, std::string_view body) {
  // The header may carry parameters ("; charset=utf-8").
  std::string_view ct = content_type.substr(0, content_type.find(';'));
  while (!ct.empty() && ct.back() == ' ') ct.remove_suffix(1);
  std::string field;
  int schema = 0;
  if (body.size() <= kMaxManifestBytes) {
    json j = json::parse(body, nullptr, false);
    if (j.is_object()) {
      if (auto it = j.find("mediaType"); it != j.end() && it->is_string()) field = it->get<std::string>();
      if (auto it = j.find("schemaVersion"); it != j.end() && it->is_number_integer()) schema = it->get<int>();
      if (field.empty() && j.contains("manifests")) field = media::oci_index;
      if (field.empty() && j.contains("layers") && j.contains("config")) field = media::oci_manifest;
    }
  }
  if (schema == 1 || ct == media::docker_schema1 || ct == media::docker_schema1_signed) return ManifestKind::schema1;
  for (std::string_view t : {std::string_view(field), ct}) {
    if (t == media::oci_manifest || t == media::docker_manifest) return ManifestKind::image;
    if (t == media::oci_index || t == media::docker_list) return ManifestKind::index;
  }
  return ManifestKind::unknown;
}

Manifest parse_manifest(std::string_view body) {
  constexpr std::string_view doc = "image manifest";
  json j = parse_json(body, doc, kMaxManifestBytes);
  if (auto sv = j.find("schemaVersion"); sv == j.end() || !sv->is_number_integer() || sv->get<int>() != 2) {
    bad(doc, "schemaVersion is not 2");
  }
  Manifest m;
  m.media_type = get_string(j, "mediaType", doc);
  if (m.media_type.empty()) m.media_type = media::oci_manifest;
  auto cfg = j.find("config");
  if (cfg == j.end()) bad(doc, "no config descriptor");
  m.config = parse_descriptor(*cfg, doc);
  if (m.config.size > static_cast<int64_t>(kMaxConfigBytes)) bad(doc, "config larger than 16 MiB");
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array()) bad(doc, "no layers array");
  if (layers->size() > 1000) bad(doc, "more than 1000 layers");
  for (auto& l : *layers) {
    Descriptor d = parse_descriptor(l, doc);
    if (!is_layer_media_type(d.media_type)) {
      throw ImageError(ErrorKind::unsupported,
                       fmt::format("layer {} has unsupported media type \"{}\"", d.digest.str(), d.media_type));
    }
    m.layers.push_back(std::move(d));
  }
  return m;
}

Index parse_index(std::string_view body) {
  constexpr std::string_view doc = "image index";
  json j = parse_json(body, doc, kMaxManifestBytes);
  Index idx;
  idx.media_type = get_string(j, "mediaType", doc);
  if (idx.media_type.empty()) idx.media_type = media::oci_index;
  auto ms = j.find("manifests");
  if (ms == j.end() || !ms->is_array()) bad(doc, "no manifests array");
  if (ms->size() > 10000) bad(doc, "more than 10000 manifests");
  for (auto& m : *ms) idx.manifests.push_back(parse_descriptor(m, doc));
  return idx;
}

ImageConfig parse_config(std::string_view body) {
  constexpr std::string_view doc = "image config";
  json j = parse_json(body, doc, kMaxConfigBytes);
  ImageConfig c;
  c.os = get_string(j, "os", doc);
  c.architecture = get_string(j, "architecture", doc);
  c.variant = get_string(j, "variant", doc);
  c.created = get_string(j, "created", doc);
  if (auto cf = j.find("config"); cf != j.end() && !cf->is_null()) {
    if (!cf->is_object()) bad(doc, "\"config\" is not an object");
    c.entrypoint = get_strings(*cf, "Entrypoint", doc);
    c.cmd = get_strings(*cf, "Cmd", doc);
    c.env = get_strings(*cf, "Env", doc);
    c.working_dir = get_string(*cf, "WorkingDir", doc);
    c.user = get_string(*cf, "User", doc);
    c.stop_signal = get_string(*cf, "StopSignal", doc);
    c.exposed_ports = get_keys(*cf, "ExposedPorts", doc);
    c.volumes = get_keys(*cf, "Volumes", doc);
    if (auto l = cf->find("Labels"); l != cf->end() && l->is_object()) {
      for (auto& [k, v] : l->items()) {
        if (v.is_string()) c.labels[k] = v.get<std::string>();
      }
    }
  }
  auto rootfs = j.find("rootfs");
  if (rootfs == j.end() || !rootfs->is_object()) bad(doc, "no rootfs section");
  if (get_string(*rootfs, "type", doc) != "layers") bad(doc, "rootfs.type is not \"layers\"");
  for (auto& d : get_strings(*rootfs, "diff_ids", doc)) {
    if (!Digest::valid(d)) bad(doc, fmt::format("diff_id \"{}\" is not sha256:<hex>", d.substr(0, 100)));
    c.diff_ids.push_back(Digest::parse(d));
  }
  return c;
}

Descriptor select_platform(const Index& index, const Platform& want) {
  std::vector<std::string> seen;
  const Descriptor* best = nullptr;
  for (auto& d : index.manifests) {
    if (!d.platform) continue;
    seen.push_back(d.platform->str());
    if (!want.matches(*d.platform)) continue;
    // Without a wanted variant, prefer an entry that names none (the generic build).
    if (!best || (want.variant.empty() && !best->platform->variant.empty() && d.platform->variant.empty())) {
      best = &d;
    }
  }
  if (!best) {
    throw ImageError(ErrorKind::unsupported,
                     fmt::format("no manifest for platform {} in the index (it has: {}); choose one with --platform",
                                 want.str(), seen.empty() ? std::string("none") : fmt::format("{}", fmt::join(seen, ", "))));
  }
  return *best;
}

bool is_layer_media_type(std::string_view mt) {
  return mt == media::oci_layer_tar || mt == media::oci_layer_gzip || mt == media::oci_layer_zstd ||
         mt == media::docker_layer_gzip ||
         mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" ||
         mt == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" ||
         mt == "application/vnd.docker.image.rootfs.diff.tar";
}

}  // namespace frakti::image
