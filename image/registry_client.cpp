#include "image/registry_client.hpp"

#include <fmt/format.h>

#include "common/log.hpp"
#include "image/error.hpp"

namespace frakti::image {

struct RegistryClient::Endpoint {
  std::string host;                 ///< host[:port], for logs and credentials
  std::vector<std::string> bases;   ///< candidate base URLs, best first (https, then http)
  size_t base = 0;                  ///< index of the base that answered the ping
  TlsSettings tls;
  std::unique_ptr<Authenticator> auth;
  bool pinged = false;
  bool mirror = false;
  const std::string& url() const { return bases[base]; }
};

namespace {

bool retryable_status(long s) { return s >= 500 || s == 429 || s == 408; }

std::string strip_scheme(const std::string& url, std::string* scheme) {
  auto p = url.find("://");
  *scheme = url.substr(0, p);
  return url.substr(p + 3);
}

}  // namespace

RegistryClient::RegistryClient(HttpClient& http, const RegistryConfig& config, const Reference& ref,
                               std::optional<Credentials> creds, RetryPolicy retry)
    : http_(http), ref_(ref), retry_(retry), scope_(fmt::format("repository:{}:pull", ref.path)) {
  auto make = [&](const std::string& host, std::vector<std::string> bases, bool mirror) {
    RegistryHost settings = config.host(host);
    auto ep = std::make_unique<Endpoint>();
    ep->host = host;
    ep->bases = std::move(bases);
    ep->mirror = mirror;
    ep->tls.verify = !settings.insecure;
    ep->tls.ca_file = settings.ca_file;
    ep->tls.allow_http_redirect = settings.insecure || is_loopback_host(host);
    std::optional<Credentials> c = config.credentials_for(host);
    if (!mirror && creds && !creds->empty()) c = creds;
    ep->auth = std::make_unique<Authenticator>(http_, ep->tls, c);
    endpoints_.push_back(std::move(ep));
  };
  RegistryHost upstream = config.host(ref.domain);
  for (auto& m : upstream.mirrors) {
    std::string scheme;
    std::string host = strip_scheme(m, &scheme);
    make(host, {m}, true);
  }
  std::string host = ref.registry_host();
  std::vector<std::string> bases{"https://" + host};
  // Plain HTTP only where the operator allowed it or the registry is on this machine.
  if (upstream.insecure || is_loopback_host(host)) bases.push_back("http://" + host);
  make(ref.domain == "docker.io" ? std::string("docker.io") : host, std::move(bases), false);
}

RegistryClient::~RegistryClient() = default;

void RegistryClient::ping(Endpoint& ep, const CancelToken& cancel) {
  if (ep.pinged) return;
  std::exception_ptr last;
  for (size_t i = 0; i < ep.bases.size(); ++i) {
    HttpRequest req;
    req.url = ep.bases[i] + "/v2/";
    req.tls = ep.tls;
    req.connect_timeout = std::chrono::seconds(10);
    // A TLS attempt against a plain-HTTP registry fails fast; only then fall back.
    if (ep.bases[i].rfind("https://", 0) == 0 && i + 1 < ep.bases.size()) req.tls.verify = false;
    try {
      HttpResponse r = http_.perform(req, cancel);
      if (r.status == 401) ep.auth->set_challenges(r.www_authenticate);
      ep.base = i;
      ep.pinged = true;
      common::log::debug("image", "registry {} answers at {} (HTTP {})", ep.host, ep.bases[i], r.status);
      return;
    } catch (const ImageError& e) {
      if (e.kind() != ErrorKind::network) throw;
      last = std::current_exception();
    }
  }
  std::rethrow_exception(last);
}

HttpResponse RegistryClient::request(Endpoint& ep, const std::string& path, const std::vector<std::string>& headers,
                                     const std::function<void()>& restart,
                                     const std::function<void(const char*, size_t)>& sink, const std::string& what,
                                     const CancelToken& cancel) {
  std::chrono::milliseconds backoff = retry_.initial_backoff;
  bool reauthed = false;
  for (int attempt = 1;; ++attempt) {
    std::string failure;
    try {
      ping(ep, cancel);
      HttpRequest req;
      req.url = ep.url() + path;
      req.tls = ep.tls;
      if (ep.url().rfind("http://", 0) == 0) req.tls.allow_http_redirect = true;
      req.headers = headers;
      std::string auth = ep.auth->header(scope_, cancel);
      if (!auth.empty()) req.headers.push_back(auth);
      req.sink = sink;
      if (restart) restart();
      HttpResponse r = http_.perform(req, cancel);
      if (r.status >= 200 && r.status < 300) return r;
      if (r.status == 401 && !reauthed) {
        // The registry may want a token with a different scope, or ours expired.
        reauthed = true;
        ep.auth->set_challenges(r.www_authenticate);
        ep.auth->invalidate(scope_);
        --attempt;
        continue;
      }
      if (r.status == 401 || r.status == 403) {
        throw ImageError(ErrorKind::auth, fmt::format("{} from {}: access denied (HTTP {})", what, ep.host, r.status));
      }
      if (r.status == 404) {
        throw ImageError(ErrorKind::not_found, fmt::format("{} from {}: not found (HTTP 404)", what, ep.host));
      }
      if (!retryable_status(r.status)) {
        throw ImageError(ErrorKind::invalid, fmt::format("{} from {}: unexpected HTTP {}", what, ep.host, r.status));
      }
      failure = fmt::format("HTTP {}", r.status);
    } catch (const ImageError& e) {
      if (e.kind() != ErrorKind::network) throw;
      failure = e.what();
    }
    if (attempt >= retry_.attempts) {
      throw ImageError(ErrorKind::network,
                       fmt::format("{} from {}: failed {} times, last: {}", what, ep.host, attempt, failure));
    }
    common::log::warn("image", "{} from {}: {}; retrying in {} ms (attempt {}/{})", what, ep.host, failure,
                      backoff.count(), attempt + 1, retry_.attempts);
    cancel.sleep_for(backoff, what);
    backoff = std::min(backoff * 2, retry_.max_backoff);
  }
}

template <typename F>
auto RegistryClient::on_any_endpoint(const std::string& what, const CancelToken& cancel, F&& f) {
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    Endpoint& ep = *endpoints_[i];
    if (i + 1 == endpoints_.size()) return f(ep);
    try {
      return f(ep);
    } catch (const ImageError& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      common::log::warn("image", "mirror {} failed for {}: {}; trying the next endpoint", ep.host, what, e.what());
    }
  }
  throw ImageError(ErrorKind::invalid, "no registry endpoint");  // unreachable: upstream is always last
}

FetchedManifest RegistryClient::get_manifest(const std::string& tag_or_digest, const CancelToken& cancel) {
  std::string what = fmt::format("manifest {}:{}", ref_.repository(), tag_or_digest);
  return on_any_endpoint(what, cancel, [&](Endpoint& ep) {
    std::string path = fmt::format("/v2/{}/manifests/{}", ref_.path, tag_or_digest);
    HttpResponse r = request(ep, path, {"Accept: " + media::manifest_accept()}, nullptr, nullptr, what, cancel);
    FetchedManifest m;
    m.body = std::move(r.body);
    m.content_type = r.header("content-type");
    m.digest = sha256_of(m.body);
    m.kind = classify_manifest(m.content_type, m.body);
    if (Digest::valid(tag_or_digest) && m.digest.str() != tag_or_digest) {
      throw ImageError(ErrorKind::integrity, fmt::format("{} from {}: content has digest {}", what, ep.host, m.digest.str()));
    }
    if (std::string hd = r.header("docker-content-digest"); Digest::valid(hd) && hd != m.digest.str()) {
      throw ImageError(ErrorKind::integrity, fmt::format("{} from {}: body digest {} differs from Docker-Content-Digest {}",
                                                         what, ep.host, m.digest.str(), hd));
    }
    if (m.kind == ManifestKind::schema1) {
      throw ImageError(ErrorKind::unsupported,
                       fmt::format("{} is a Docker schema 1 manifest, which is deprecated and not supported; "
                                   "re-push the image with a current tool (docker, buildah or skopeo --format v2s2)",
                                   what));
    }
    if (m.kind == ManifestKind::unknown) {
      throw ImageError(ErrorKind::unsupported,
                       fmt::format("{} has unsupported media type \"{}\"", what, m.content_type.substr(0, 200)));
    }
    return m;
  });
}

void RegistryClient::get_blob(const Descriptor& desc, const std::function<void()>& restart,
                              const std::function<void(const char*, size_t)>& sink, const CancelToken& cancel) {
  std::string what = fmt::format("blob {} of {}", desc.digest.str(), ref_.repository());
  on_any_endpoint(what, cancel, [&](Endpoint& ep) {
    request(ep, fmt::format("/v2/{}/blobs/{}", ref_.path, desc.digest.str()), {}, restart, sink, what, cancel);
    return 0;
  });
}

}  // namespace frakti::image
