#include "image/http_client.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "image/error.hpp"

namespace frakti::image {

void CancelToken::check(const std::string& what) const {
  if (cancelled_.load()) throw ImageError(ErrorKind::cancelled, what + ": cancelled");
  if (stopped()) throw ImageError(ErrorKind::cancelled, what + ": deadline exceeded");
}

void CancelToken::sleep_for(std::chrono::milliseconds d, const std::string& what) const {
  auto end = Clock::now() + d;
  while (Clock::now() < end) {
    check(what);
    std::this_thread::sleep_for(std::min(std::chrono::milliseconds(20),
                                         std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()) +
                                             std::chrono::milliseconds(1)));
  }
  check(what);
}

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

struct HttpClient::Shared {
  CURLSH* share = nullptr;
  std::mutex locks[CURL_LOCK_DATA_LAST];
};

namespace {

std::once_flag g_curl_init;

struct Transfer {
  const HttpRequest* req;
  const CancelToken* cancel;
  HttpResponse* resp;
  CURL* easy;
  bool overflow = false;
  std::exception_ptr sink_error;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  std::string line(data, len);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response (after a redirect or 100-continue): forget the previous headers.
    t->resp->headers.clear();
    t->resp->www_authenticate.clear();
    return len;
  }
  auto colon = line.find(':');
  if (colon == std::string::npos) return len;
  std::string name = line.substr(0, colon);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string value = line.substr(colon + 1);
  value.erase(0, value.find_first_not_of(" \t"));
  if (name == "www-authenticate") t->resp->www_authenticate.push_back(value);
  t->resp->headers[name] = value;
  return len;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
  if (t->req->sink && code >= 200 && code < 300) {
    try {
      t->req->sink(data, len);
    } catch (...) {
      t->sink_error = std::current_exception();
      return 0;  // aborts the transfer
    }
    return len;
  }
  if (t->resp->body.size() + len > t->req->body_limit) {
    t->overflow = true;
    return 0;
  }
  t->resp->body.append(data, len);
  return len;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return t->cancel->stopped() ? 1 : 0;
}

}  // namespace

HttpClient::HttpClient() : shared_(std::make_unique<Shared>()) {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  shared_->share = curl_share_init();
  curl_share_setopt(shared_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  curl_share_setopt(shared_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(shared_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(shared_->share, CURLSHOPT_USERDATA, shared_.get());
  curl_share_setopt(shared_->share, CURLSHOPT_LOCKFUNC,
                    +[](CURL*, curl_lock_data d, curl_lock_access, void* u) {
                      static_cast<Shared*>(u)->locks[d].lock();
                    });
  curl_share_setopt(shared_->share, CURLSHOPT_UNLOCKFUNC, +[](CURL*, curl_lock_data d, void* u) {
    static_cast<Shared*>(u)->locks[d].unlock();
  });
}

HttpClient::~HttpClient() { curl_share_cleanup(shared_->share); }

HttpResponse HttpClient::perform(const HttpRequest& req, const CancelToken& cancel) {
  std::string what = fmt::format("{} {}", req.method, req.url);
  cancel.check(what);
  HttpResponse resp;
  CURL* easy = curl_easy_init();
  if (!easy) throw ImageError(ErrorKind::network, what + ": curl_easy_init failed");
  std::unique_ptr<CURL, void (*)(CURL*)> easy_guard(easy, curl_easy_cleanup);
  curl_slist* headers = nullptr;
  for (auto& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers_guard(headers, curl_slist_free_all);

  Transfer t{&req, &cancel, &resp, easy, false, nullptr};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(easy, CURLOPT_SHARE, shared_->share);
  curl_easy_setopt(easy, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  if (req.method == "HEAD") curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "frakti/0.1");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 10L);
  // Redirects go to blob storage; never downgrade a TLS registry to plain HTTP.
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, req.tls.allow_http_redirect ? "http,https" : "https");
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, static_cast<long>(req.connect_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, static_cast<long>(req.stall_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, req.tls.verify ? 1L : 0L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, req.tls.verify ? 2L : 0L);
  if (!req.tls.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, req.tls.ca_file.c_str());

  CURLcode rc = curl_easy_perform(easy);
  if (t.sink_error) std::rethrow_exception(t.sink_error);
  char* eff = nullptr;
  curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &eff);
  if (eff) resp.effective_url = eff;
  if (rc == CURLE_ABORTED_BY_CALLBACK) cancel.check(what);
  if (rc == CURLE_WRITE_ERROR && t.overflow) {
    throw ImageError(ErrorKind::invalid, fmt::format("{}: response larger than {} bytes", what, req.body_limit));
  }
  if (rc != CURLE_OK) {
    throw ImageError(ErrorKind::network,
                     fmt::format("{}: {}", what, errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

std::string url_escape(const std::string& s) {
  std::string out;
  static const char* hexd = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hexd[c >> 4]);
      out.push_back(hexd[c & 15]);
    }
  }
  return out;
}

std::string base64_encode(const std::string& s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool base64_decode(const std::string& in, std::string& out) {
  if (in.size() % 4 != 0) return false;
  out.assign(3 * in.size() / 4 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return false;
  size_t pad = 0;
  if (!in.empty() && in.back() == '=') ++pad;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return true;
}

}  // namespace frakti::image
