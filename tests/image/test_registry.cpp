#include "tests/image/test_registry.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "image/digest.hpp"
#include "image/http_client.hpp"

namespace frakti::image::testing {

namespace fs = std::filesystem;

std::string sh(const std::string& cmd) {
  std::string full = "(" + cmd + ") 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) throw std::runtime_error("popen failed: " + cmd);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  if (st != 0) throw std::runtime_error(fmt::format("command failed ({}): {}\n{}", st, cmd, out));
  return out;
}

TempDir::TempDir(const std::string& hint) {
  std::string tmpl = (fs::temp_directory_path() / (hint + ".XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  // Unpacked trees may hold read-only directories when not root.
  std::system(fmt::format("chmod -R u+rwX '{}' 2>/dev/null", path_.string()).c_str());
  fs::remove_all(path_, ec);
}

fs::path source_path(const std::string& rel) {
  const char* s = std::getenv("FRAKTI_SOURCE_DIR");
  return fs::path(s ? s : FRAKTI_TEST_SOURCE_DIR) / rel;
}

fs::path build_path(const std::string& rel) {
  const char* s = std::getenv("FRAKTI_BUILD_DIR");
  return fs::path(s ? s : FRAKTI_TEST_BUILD_DIR) / rel;
}

namespace {

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

std::string b64url(const std::string& in) {
  std::string s = base64_encode(in);
  for (auto& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

std::string query_param(const std::string& q, const std::string& name) {
  size_t pos = 0;
  while (pos <= q.size()) {
    size_t amp = q.find('&', pos);
    std::string kv = q.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    if (kv.rfind(name + "=", 0) == 0) {
      std::string v = kv.substr(name.size() + 1), out;
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '%' && i + 2 < v.size()) {
          out.push_back(static_cast<char>(std::stoi(v.substr(i + 1, 2), nullptr, 16)));
          i += 2;
        } else {
          out.push_back(v[i] == '+' ? ' ' : v[i]);
        }
      }
      return out;
    }
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return {};
}

}  // namespace

TestRegistry::TestRegistry(const fs::path& storage, const fs::path& workdir, const std::string& htpasswd,
                           const std::optional<TokenAuth>& token, const std::string& tls_cert,
                           const std::string& tls_key) {
  port_ = free_port();
  fs::path cfg = workdir / fmt::format("registry-{}.yml", port_);
  log_ = workdir / fmt::format("registry-{}.log", port_);
  std::ofstream f(cfg);
  f << "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: "
    << storage.string() << "\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:" << port_ << "\n";
  if (!tls_cert.empty()) f << "  tls:\n    certificate: " << tls_cert << "\n    key: " << tls_key << "\n";
  if (!htpasswd.empty()) f << "auth:\n  htpasswd:\n    realm: test-realm\n    path: " << htpasswd << "\n";
  if (token) {
    f << "auth:\n  token:\n    realm: " << token->realm << "\n    service: " << token->service << "\n    issuer: " << token->issuer
      << "\n    rootcertbundle: " << token->cert_file << "\n";
  }
  f.close();
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execlp("docker-registry", "docker-registry", "serve", cfg.c_str(), nullptr);
    ::_exit(127);
  }
  // Ready when /v2/ answers anything.
  HttpClient http;
  CancelToken never;
  for (int i = 0; i < 200; ++i) {
    try {
      HttpRequest r;
      r.url = fmt::format("{}://127.0.0.1:{}/v2/", tls_cert.empty() ? "http" : "https", port_);
      r.tls.verify = false;
      http.perform(r, never);
      return;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  throw std::runtime_error("docker-registry did not start; log: " + log_.string());
}

TestRegistry::~TestRegistry() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int st;
    ::waitpid(pid_, &st, 0);
  }
}

int TestRegistry::count_requests(const std::string& needle) const {
  std::ifstream f(log_);
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    // Access log lines hold the request line in quotes: "GET /v2/... HTTP/1.1" 200
    if (line.find("\"" + needle) != std::string::npos && line.find("HTTP/1.1\" 200") != std::string::npos) ++n;
  }
  return n;
}

TokenServer::TokenServer(const fs::path& workdir, std::string user, std::string pass)
    : key_(workdir / "token-key.pem"), cert_(workdir / "token-cert.pem"), user_(std::move(user)), pass_(std::move(pass)) {
  sh(fmt::format("openssl req -x509 -newkey rsa:2048 -nodes -keyout {} -out {} -days 2 -subj /CN=frakti-test-token", key_.string(),
                 cert_.string()));
  http_ = std::make_unique<TestHttpServer>([this](const HttpTestRequest& req) {
    HttpTestResponse r;
    if (!user_.empty()) {
      std::string want = "Basic " + base64_encode(user_ + ":" + pass_);
      auto it = req.headers.find("authorization");
      if (it == req.headers.end() || it->second != want) {
        r.status = 401;
        r.body = "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}";
        return r;
      }
    }
    ++issued_;
    r.body = nlohmann::json{{"token", sign(query_param(req.query, "scope"), query_param(req.query, "service"))}, {"expires_in", 300}}.dump();
    r.headers.push_back({"Content-Type", "application/json"});
    return r;
  });
}

TokenAuth TokenServer::auth() const {
  return TokenAuth{http_->url() + "/token", "frakti-test-registry", "frakti-test-issuer", cert_.string()};
}

std::string TokenServer::sign(const std::string& scope, const std::string& service) {
  // The cert goes in x5c so the registry can chain it to its rootcertbundle.
  std::ifstream cf(cert_);
  std::stringstream ss;
  ss << cf.rdbuf();
  std::string pem = ss.str(), der_b64;
  std::istringstream lines(pem);
  std::string l;
  while (std::getline(lines, l)) {
    if (l.rfind("-----", 0) != 0) der_b64 += l;
  }
  nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}, {"x5c", {der_b64}}};
  nlohmann::json access = nlohmann::json::array();
  // scope = repository:NAME:ACTIONS
  auto c1 = scope.find(':'), c2 = scope.rfind(':');
  if (c1 != std::string::npos && c2 != c1) {
    access.push_back({{"type", scope.substr(0, c1)}, {"name", scope.substr(c1 + 1, c2 - c1 - 1)}, {"actions", {"pull"}}});
  }
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  nlohmann::json claims = {{"iss", "frakti-test-issuer"}, {"sub", user_}, {"aud", service}, {"exp", now + 300},
                           {"nbf", now - 10}, {"iat", now}, {"jti", std::to_string(now) + std::to_string(issued_.load())},
                           {"access", access}};
  std::string input = b64url(header.dump()) + "." + b64url(claims.dump());
  FILE* kf = std::fopen(key_.c_str(), "r");
  EVP_PKEY* key = PEM_read_PrivateKey(kf, nullptr, nullptr, nullptr);
  std::fclose(kf);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return input + "." + b64url(sig);
}

TestImages& TestImages::get() {
  // A static object, not a leaked pointer: its destructor at exit stops the registry. `dir`
  // is constructed first, so it is destroyed after the registry is gone.
  static TempDir dir("frakti-image-registry");
  static TestImages images = [] {
    TestImages v;
    TestImages* t = &v;
    t->work = dir.path();
    t->storage = dir.path() / "storage";
    t->layout = dir.path() / "layout";
    fs::create_directories(t->storage);
    t->open = std::make_unique<TestRegistry>(t->storage, dir.path());
    std::string L = t->layout.string(), W = dir.path().string(), H = t->open->host();
    sh(fmt::format("TAG=base {} {}", source_path("tools/make-busybox-image").string(), L));
    // A second layer that adds a file, replaces one and deletes one (a whiteout).
    sh(fmt::format("cd {0} && umoci unpack --rootless --image {1}:base b2 >/dev/null && "
                   "mkdir -p b2/rootfs/data && echo hello > b2/rootfs/data/hello && ln -s hello b2/rootfs/data/link && "
                   "rm -f b2/rootfs/bin/vi && umoci repack --image {1}:two b2 >/dev/null && rm -rf b2",
                   W, L));
    // The index: the base image as amd64 plus a copy labelled arm64.
    sh(fmt::format("umoci tag --image {0}:base arm && umoci config --image {0}:arm --architecture arm64 >/dev/null", L));
    auto idx = nlohmann::json::parse(std::ifstream(t->layout / "index.json"));
    nlohmann::json manifests = nlohmann::json::array();
    for (auto& m : idx["manifests"]) {
      std::string tag = m["annotations"]["org.opencontainers.image.ref.name"];
      if (tag != "base" && tag != "arm") continue;
      nlohmann::json e = {{"mediaType", m["mediaType"]}, {"digest", m["digest"]}, {"size", m["size"]},
                          {"platform", {{"os", "linux"}, {"architecture", tag == "arm" ? "arm64" : "amd64"}}}};
      manifests.push_back(e);
    }
    std::string index_body = nlohmann::json{{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"},
                                            {"manifests", manifests}}.dump();
    Digest d = sha256_of(index_body);
    std::ofstream(t->layout / "blobs" / "sha256" / std::string(d.hex())) << index_body;
    idx["manifests"].push_back({{"mediaType", "application/vnd.oci.image.index.v1+json"}, {"digest", d.str()},
                                {"size", index_body.size()}, {"annotations", {{"org.opencontainers.image.ref.name", "multi"}}}});
    std::ofstream(t->layout / "index.json") << idx.dump();
    std::string push = "skopeo copy --quiet --dest-tls-verify=false";
    sh(fmt::format("{0} --format oci oci:{1}:two docker://{2}/test/oci:1", push, L, H));
    sh(fmt::format("{0} --format v2s2 oci:{1}:two docker://{2}/test/v2s2:1", push, L, H));
    sh(fmt::format("{0} --all --format oci oci:{1}:multi docker://{2}/test/multi:1", push, L, H));
    return v;
  }();
  return images;
}

}  // namespace frakti::image::testing
