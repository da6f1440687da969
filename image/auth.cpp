#include "image/auth.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/log.hpp"
#include "image/error.hpp"

namespace frakti::image {
namespace {

bool token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

std::vector<AuthChallenge> parse_www_authenticate(const std::string& h) {
  std::vector<AuthChallenge> out;
  size_t i = 0, n = std::min<size_t>(h.size(), 16384);
  auto skip_ws = [&] { while (i < n && (h[i] == ' ' || h[i] == '\t')) ++i; };
  while (i < n) {
    skip_ws();
    while (i < n && (h[i] == ',' || h[i] == ' ')) ++i;
    size_t start = i;
    while (i < n && token_char(h[i])) ++i;
    if (i == start) {
      ++i;  // junk byte: skip it
      continue;
    }
    AuthChallenge c;
    c.scheme = lower(h.substr(start, i - start));
    // Parameters: name=value or name="quoted", separated by commas, until the next scheme.
    while (i < n) {
      skip_ws();
      size_t ns = i;
      while (i < n && token_char(h[i])) ++i;
      std::string name = lower(h.substr(ns, i - ns));
      skip_ws();
      if (name.empty() || i >= n || h[i] != '=') {
        i = ns;  // not a parameter: the next challenge starts here
        break;
      }
      ++i;
      skip_ws();
      std::string value;
      if (i < n && h[i] == '"') {
        ++i;
        bool closed = false;
        while (i < n) {
          if (h[i] == '\\' && i + 1 < n) {
            value.push_back(h[i + 1]);
            i += 2;
          } else if (h[i] == '"') {
            ++i;
            closed = true;
            break;
          } else {
            value.push_back(h[i++]);
          }
        }
        if (!closed) return out;  // unterminated quote: drop the challenge
      } else {
        while (i < n && h[i] != ',' && h[i] != ' ') value.push_back(h[i++]);
      }
      c.params[name] = value;
      skip_ws();
      if (i < n && h[i] == ',') ++i;
    }
    out.push_back(std::move(c));
  }
  return out;
}

void Authenticator::set_challenges(const std::vector<std::string>& www) {
  std::vector<AuthChallenge> all;
  for (auto& h : www) {
    for (auto& c : parse_www_authenticate(h)) {
      if (c.scheme == "basic" || c.scheme == "bearer") all.push_back(std::move(c));
    }
  }
  std::lock_guard lk(mu_);
  if (!all.empty()) challenges_ = std::move(all);
}

bool Authenticator::has_challenge() const {
  std::lock_guard lk(mu_);
  return !challenges_.empty();
}

void Authenticator::invalidate(const std::string& scope) {
  std::lock_guard lk(mu_);
  tokens_.erase(scope);
}

std::string Authenticator::header(const std::string& scope, const CancelToken& cancel) {
  std::vector<AuthChallenge> challenges;
  {
    std::lock_guard lk(mu_);
    challenges = challenges_;
    auto it = tokens_.find(scope);
    if (it != tokens_.end() && std::chrono::steady_clock::now() < it->second.expires) {
      return "Authorization: Bearer " + it->second.value;
    }
  }
  // Prefer Bearer when both are offered: it is what distribution registries mean.
  for (auto& c : challenges) {
    if (c.scheme != "bearer") continue;
    if (creds_ && !creds_->registry_token.empty()) return "Authorization: Bearer " + creds_->registry_token;
    return "Authorization: Bearer " + fetch_token(c, scope, cancel);
  }
  for (auto& c : challenges) {
    if (c.scheme != "basic") continue;
    if (!creds_ || creds_->username.empty()) {
      throw ImageError(ErrorKind::auth, fmt::format("registry wants Basic authentication (realm \"{}\") and no "
                                                    "credentials are configured for it",
                                                    c.params["realm"]));
    }
    return "Authorization: Basic " + base64_encode(creds_->username + ":" + creds_->password);
  }
  return {};
}

std::string Authenticator::fetch_token(const AuthChallenge& c, const std::string& scope, const CancelToken& cancel) {
  auto realm = c.params.find("realm");
  if (realm == c.params.end() || realm->second.empty()) {
    throw ImageError(ErrorKind::auth, "registry sent a Bearer challenge without a realm");
  }
  if (realm->second.rfind("https://", 0) != 0 && realm->second.rfind("http://", 0) != 0) {
    throw ImageError(ErrorKind::auth, fmt::format("token realm \"{}\" is not an http(s) URL", realm->second.substr(0, 200)));
  }
  std::string url = realm->second;
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  if (auto s = c.params.find("service"); s != c.params.end()) {
    url += fmt::format("{}service={}", sep, url_escape(s->second));
    sep = '&';
  }
  if (!scope.empty()) url += fmt::format("{}scope={}", sep, url_escape(scope));
  HttpRequest req;
  req.url = url;
  req.tls = tls_;
  req.tls.allow_http_redirect = tls_.allow_http_redirect;
  if (creds_ && !creds_->username.empty()) {
    req.headers.push_back("Authorization: Basic " + base64_encode(creds_->username + ":" + creds_->password));
  }
  HttpResponse resp = http_.perform(req, cancel);
  if (resp.status == 401 || resp.status == 403) {
    throw ImageError(ErrorKind::auth, fmt::format("token server {} refused {} (HTTP {})", realm->second,
                                                  creds_ ? "our credentials" : "anonymous access", resp.status));
  }
  if (resp.status != 200) {
    throw ImageError(resp.status >= 500 ? ErrorKind::network : ErrorKind::auth,
                     fmt::format("token server {} answered HTTP {}", realm->second, resp.status));
  }
  auto j = nlohmann::json::parse(resp.body, nullptr, false);
  std::string token;
  if (j.is_object()) {
    for (const char* key : {"token", "access_token"}) {
      if (auto it = j.find(key); it != j.end() && it->is_string() && !it->get<std::string>().empty()) {
        token = it->get<std::string>();
        break;
      }
    }
  }
  if (token.empty() || token.find_first_of("\r\n") != std::string::npos) {
    throw ImageError(ErrorKind::auth, fmt::format("token server {} sent no usable token", realm->second));
  }
  int64_t expires_in = 60;
  if (j.contains("expires_in") && j["expires_in"].is_number_integer()) {
    expires_in = std::clamp<int64_t>(j["expires_in"].get<int64_t>(), 10, 3600);
  }
  std::lock_guard lk(mu_);
  // Renew a little before the server's expiry so a long layer download does not race it.
  tokens_[scope] = Token{token, std::chrono::steady_clock::now() + std::chrono::seconds(expires_in - 5)};
  common::log::debug("image", "got bearer token for {} from {}", scope, realm->second);
  return token;
}

}  // namespace frakti::image
