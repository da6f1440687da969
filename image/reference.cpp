#include "image/reference.hpp"

#include <fmt/format.h>

#include "image/error.hpp"

namespace frakti::image {
namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;

[[noreturn]] void bad(std::string_view text, std::string_view why) {
  throw ImageError(ErrorKind::invalid,
                   fmt::format("invalid image reference \"{}\": {}", text.substr(0, 300), why));
}

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool valid_component(std::string_view c) {
  if (c.empty() || !lower_alnum(c.front()) || !lower_alnum(c.back())) return false;
  for (size_t i = 0; i < c.size();) {
    if (lower_alnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !lower_alnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" ||
              sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok) return false;
    i = j;
  }
  return true;
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > kMaxTagLength) return false;
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
  };
  if (!word(t[0])) return false;
  for (char c : t) {
    if (!word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > 253) return false;
  for (char c : d) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
    if (!ok) return false;
  }
  return d.front() != '-' && d.front() != '.' && d.front() != ':';
}

}  // namespace

Reference Reference::parse(std::string_view text) {
  if (text.empty()) bad(text, "empty");
  if (text.size() > 1024) bad(text, "too long");
  Reference ref;
  std::string_view rest = text;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    std::string_view dg = rest.substr(at + 1);
    if (!Digest::valid(dg)) bad(text, "the digest must be sha256:<64 hex digits>");
    ref.digest = Digest::parse(dg);
    rest = rest.substr(0, at);
  }
  // A tag is a ':' after the last '/', so "host:5000/app" keeps its port.
  auto slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    ref.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (!valid_tag(ref.tag)) bad(text, "a tag is up to 128 of [A-Za-z0-9_.-], not starting with . or -");
  }
  if (rest.empty()) bad(text, "no repository name");

  auto first_slash = rest.find('/');
  std::string_view first = rest.substr(0, first_slash);
  bool has_domain = first_slash != std::string_view::npos &&
                    (first.find_first_of(".:") != std::string_view::npos || first == "localhost" ||
                     first.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos);
  std::string_view path = rest;
  if (has_domain) {
    if (!valid_domain(first)) bad(text, "invalid registry host");
    ref.domain = std::string(first);
    path = rest.substr(first_slash + 1);
  } else {
    ref.domain = "docker.io";
  }
  if (ref.domain == "index.docker.io" || ref.domain == "registry-1.docker.io") ref.domain = "docker.io";
  if (path.empty()) bad(text, "no repository name");
  std::string p(path);
  if (ref.domain == "docker.io" && p.find('/') == std::string::npos) p = "library/" + p;
  size_t start = 0;
  while (true) {
    auto end = p.find('/', start);
    std::string_view comp = std::string_view(p).substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!valid_component(comp)) {
      bad(text, fmt::format("repository component \"{}\" must be lower-case letters and digits "
                            "separated by '.', '_', '__' or '-'",
                            comp.substr(0, 100)));
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (ref.domain.size() + 1 + p.size() > kMaxNameLength) bad(text, "repository name longer than 255 characters");
  ref.path = std::move(p);
  if (ref.tag.empty() && !ref.digest) ref.tag = "latest";
  return ref;
}

std::string Reference::str() const {
  if (digest) return repository() + "@" + digest->str();
  return repository() + ":" + tag;
}

std::string Reference::registry_host() const {
  return domain == "docker.io" ? std::string("registry-1.docker.io") : domain;
}

bool looks_like_id(std::string_view text) {
  if (text.substr(0, 7) == "sha256:") text.remove_prefix(7);
  if (text.size() < 3 || text.size() > 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace frakti::image
