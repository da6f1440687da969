// Pulls from a real docker-registry on loopback: formats, auth, mirrors, retries, integrity
// failures and concurrent pulls. Images are built offline and pushed by TestImages.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "image/error.hpp"
#include "image/image_service.hpp"
#include "tests/image/test_registry.hpp"

using namespace frakti::image;
using namespace frakti::image::testing;
namespace fs = std::filesystem;

namespace {

ServiceOptions options(const fs::path& root, RegistryConfig cfg = {}) {
  ServiceOptions o;
  o.root = root;
  o.registries = std::move(cfg);
  o.retry.initial_backoff = std::chrono::milliseconds(20);
  o.retry.max_backoff = std::chrono::milliseconds(100);
  return o;
}

ErrorKind pull_error(ImageService& svc, const std::string& ref, const PullOptions& o = {}, std::string* msg = nullptr) {
  try {
    svc.pull(ref, o);
  } catch (const ImageError& e) {
    if (msg) *msg = e.what();
    return e.kind();
  }
  FAIL("pull of " << ref << " succeeded but should have failed");
  return ErrorKind::invalid;
}

bool no_temp_files(const fs::path& root) {
  for (auto& e : fs::recursive_directory_iterator(root)) {
    if (e.path().extension() == ".tmp") return false;
  }
  return true;
}

// Forwards to the real registry; `fault` may change the answer.
struct Proxy {
  using Fault = std::function<void(const HttpTestRequest&, HttpTestResponse&)>;
  Proxy(const std::string& upstream, Fault fault)
      : server([this, upstream, fault](const HttpTestRequest& req) {
          HttpRequest r;
          r.method = req.method;
          r.url = "http://" + upstream + req.path + (req.query.empty() ? "" : "?" + req.query);
          for (const char* h : {"accept", "authorization"}) {
            if (auto it = req.headers.find(h); it != req.headers.end()) r.headers.push_back(std::string(h) + ": " + it->second);
          }
          r.body_limit = 64u << 20;
          HttpResponse up = http.perform(r, never);
          HttpTestResponse out;
          out.status = static_cast<int>(up.status);
          out.body = up.body;
          for (const char* h : {"content-type", "docker-content-digest"}) {
            if (!up.header(h).empty()) out.headers.push_back({h, up.header(h)});
          }
          for (auto& w : up.www_authenticate) out.headers.push_back({"WWW-Authenticate", w});
          if (fault) fault(req, out);
          return out;
        }) {}
  std::string host() const { return "127.0.0.1:" + std::to_string(server.port()); }
  HttpClient http;
  CancelToken never;
  TestHttpServer server;
};

}  // namespace

TEST_CASE("pull OCI and Docker schema2 images by tag and by digest", "[image][registry]") {
  auto& imgs = TestImages::get();
  TempDir root;
  ImageService svc(options(root.path()));
  std::string H = imgs.open->host();

  PullResult oci = svc.pull(H + "/test/oci:1", {});
  CHECK(oci.image.manifest_media_type == std::string(media::oci_manifest));
  CHECK(oci.image.layers.size() == 2);
  CHECK(oci.image.repo_tags == std::vector<std::string>{H + "/test/oci:1"});
  REQUIRE(oci.image.repo_digests.size() == 1);
  CHECK(oci.blobs_fetched == 3);
  CHECK(fs::exists(svc.fs_builder().path(oci.image.id)));
  CHECK(oci.image.config.cmd == std::vector<std::string>{"sh"});

  // By digest: same image, nothing downloaded again.
  PullResult again = svc.pull(oci.image.repo_digests[0], {});
  CHECK(again.image.id == oci.image.id);
  CHECK(again.blobs_fetched == 0);

  PullResult v2 = svc.pull(H + "/test/v2s2:1", {});
  CHECK(v2.image.manifest_media_type == std::string(media::docker_manifest));
  CHECK(v2.image.layers[0].media_type == std::string(media::docker_layer_gzip));
  auto found = svc.find(H + "/test/v2s2:1");
  REQUIRE(found);
  CHECK(found->id == v2.image.id);
  CHECK(svc.find(v2.image.short_id())->id == v2.image.id);
}

TEST_CASE("pull a multi-platform index selects the platform", "[image][registry]") {
  auto& imgs = TestImages::get();
  TempDir root;
  ImageService svc(options(root.path()));
  std::string ref = imgs.open->host() + "/test/multi:1";
  PullOptions amd;
  amd.platform = Platform::parse("linux/amd64");
  PullResult a = svc.pull(ref, amd);
  CHECK(a.image.config.architecture == "amd64");
  CHECK(a.image.extra_blobs.size() == 1);  // the index itself

  PullOptions arm;
  arm.platform = Platform::parse("linux/arm64");
  PullResult b = svc.pull(ref, arm);
  CHECK(b.image.config.architecture == "arm64");
  CHECK(b.image.id != a.image.id);
  // The index digest names both: pulling by it gives the same image for the same platform.
  PullResult c = svc.pull(a.image.repo_digests[0], amd);
  CHECK(c.image.id == a.image.id);

  PullOptions s390;
  s390.platform = Platform::parse("linux/s390x");
  std::string msg;
  CHECK(pull_error(svc, ref, s390, &msg) == ErrorKind::unsupported);
  CHECK_THAT(msg, Catch::Contains("linux/amd64") && Catch::Contains("linux/arm64"));
}

TEST_CASE("Basic auth with htpasswd: refused without credentials, works with them", "[image][registry]") {
  auto& imgs = TestImages::get();
  TempDir work;
  fs::path htpasswd = work.path() / "htpasswd";
  sh(fmt::format("htpasswd -Bbn alice s3cret > {}", htpasswd.string()));
  TestRegistry reg(imgs.storage, work.path(), htpasswd.string());
  std::string ref = reg.host() + "/test/oci:1";

  TempDir root;
  ImageService anon(options(root.path()));
  CHECK(pull_error(anon, ref) == ErrorKind::auth);
  PullOptions wrong;
  wrong.credentials = Credentials{"alice", "nope", "", ""};
  CHECK(pull_error(anon, ref, wrong) == ErrorKind::auth);

  PullOptions good;
  good.credentials = AuthConfig{"", "", base64_encode("alice:s3cret"), "", "", ""}.credentials();
  CHECK(anon.pull(ref, good).image.layers.size() == 2);

  // Credentials from a docker-style config.json.
  TempDir root2;
  std::ofstream(work.path() / "config.json")
      << fmt::format(R"({{"auths":{{"{}":{{"auth":"{}"}}}}}})", reg.host(), base64_encode("alice:s3cret"));
  RegistryConfig cfg;
  cfg.load_docker_config((work.path() / "config.json").string());
  ImageService with_file(options(root2.path(), cfg));
  CHECK(with_file.pull(ref, {}).image.layers.size() == 2);
}

TEST_CASE("Bearer token auth from the WWW-Authenticate challenge", "[image][registry]") {
  auto& imgs = TestImages::get();
  TempDir work;
  SECTION("token server that wants credentials") {
    TokenServer tokens(work.path(), "bob", "pw");
    TestRegistry reg(imgs.storage, work.path(), {}, tokens.auth());
    std::string ref = reg.host() + "/test/v2s2:1";
    TempDir root;
    ImageService svc(options(root.path()));
    std::string msg;
    CHECK(pull_error(svc, ref, {}, &msg) == ErrorKind::auth);
    CHECK_THAT(msg, Catch::Contains("token server"));
    PullOptions o;
    o.credentials = Credentials{"bob", "pw", "", ""};
    CHECK(svc.pull(ref, o).image.layers.size() == 2);
    CHECK(tokens.issued() >= 1);
  }
  SECTION("anonymous token") {
    TokenServer tokens(work.path(), "", "");
    TestRegistry reg(imgs.storage, work.path(), {}, tokens.auth());
    TempDir root;
    ImageService svc(options(root.path()));
    CHECK(svc.pull(reg.host() + "/test/oci:1", {}).image.layers.size() == 2);
    CHECK(tokens.issued() >= 1);
  }
}

TEST_CASE("a configured mirror serves a registry that is unreachable", "[image][registry]") {
  auto& imgs = TestImages::get();
  TempDir root;
  RegistryConfig cfg = RegistryConfig::parse(
      fmt::format(R"({{"registries":{{"unreachable.invalid:5000":{{"mirrors":["http://{}"]}}}}}})", imgs.open->host()), "test");
  ImageService svc(options(root.path(), cfg));
  PullResult r = svc.pull("unreachable.invalid:5000/test/oci:1", {});
  CHECK(r.image.repo_tags == std::vector<std::string>{"unreachable.invalid:5000/test/oci:1"});
  // Without the mirror the same pull fails on the network.
  TempDir root2;
  ImageService plain(options(root2.path()));
  CHECK(pull_error(plain, "unreachable.invalid:5000/test/oci:1") == ErrorKind::network);
}

TEST_CASE("a registry answering 500 twice is retried and the pull succeeds", "[image][registry]") {
  auto& imgs = TestImages::get();
  std::atomic<int> manifest_requests{0};
  Proxy proxy(imgs.open->host(), [&](const HttpTestRequest& req, HttpTestResponse& resp) {
    if (req.path.find("/manifests/") != std::string::npos && manifest_requests++ < 2) {
      resp = HttpTestResponse{500, {}, "boom"};
    }
  });
  TempDir root;
  ImageService svc(options(root.path()));
  CHECK(svc.pull(proxy.host() + "/test/oci:1", {}).image.layers.size() == 2);
  CHECK(manifest_requests.load() == 3);
}

TEST_CASE("digest mismatch and truncated blobs fail naming the blob and store nothing", "[image][registry]") {
  auto& imgs = TestImages::get();
  TempDir root;
  ImageService svc(options(root.path()));
  // Learn the layer digests from a clean pull elsewhere.
  TempDir ref_root;
  ImageService ref_svc(options(ref_root.path()));
  ImageRecord clean = ref_svc.pull(imgs.open->host() + "/test/oci:1", {}).image;
  std::string victim = clean.layers.back().digest.str();

  SECTION("corrupted content") {
    Proxy proxy(imgs.open->host(), [&](const HttpTestRequest& req, HttpTestResponse& resp) {
      if (req.path.find(victim) != std::string::npos && !resp.body.empty()) resp.body[resp.body.size() / 2] ^= 0x55;
    });
    std::string msg;
    CHECK(pull_error(svc, proxy.host() + "/test/oci:1", {}, &msg) == ErrorKind::integrity);
    CHECK_THAT(msg, Catch::Contains(victim));
  }
  SECTION("truncated transfer") {
    std::atomic<int> tries{0};
    Proxy proxy(imgs.open->host(), [&](const HttpTestRequest& req, HttpTestResponse& resp) {
      if (req.path.find(victim) != std::string::npos) {
        ++tries;
        resp.truncate_at = static_cast<long>(resp.body.size() / 2);
      }
    });
    std::string msg;
    CHECK(pull_error(svc, proxy.host() + "/test/oci:1", {}, &msg) == ErrorKind::network);
    CHECK_THAT(msg, Catch::Contains(victim));
    CHECK(tries.load() == 4);  // retried, then gave up
  }
  CHECK_FALSE(svc.content().has(Digest::parse(victim)));
  CHECK(no_temp_files(svc.image_root()));
  CHECK(svc.images().empty());
}

TEST_CASE("two concurrent pulls of one image download each blob once", "[image][registry]") {
  auto& imgs = TestImages::get();
  TempDir work;
  TestRegistry reg(imgs.storage, work.path());  // fresh access log
  TempDir root;
  std::string ref = reg.host() + "/test/v2s2:1";
  std::vector<PullResult> results(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      // Separate service objects: the per-blob locks must work across instances (and processes).
      ImageService svc(options(root.path()));
      results[i] = svc.pull(ref, {});
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE(results[0].image.id == results[1].image.id);
  CHECK(results[0].blobs_fetched + results[1].blobs_fetched == 3);
  for (auto& l : results[0].image.layers) {
    CHECK(reg.count_requests("GET /v2/test/v2s2/blobs/" + l.digest.str()) == 1);
  }
  CHECK(reg.count_requests("GET /v2/test/v2s2/blobs/" + results[0].image.id.str()) == 1);
}

TEST_CASE("rmi untags, removes and collects blobs", "[image][registry]") {
  auto& imgs = TestImages::get();
  TempDir root;
  ImageService svc(options(root.path()));
  std::string H = imgs.open->host();
  // skopeo writes the same config for both formats: one image, two tags.
  ImageRecord a = svc.pull(H + "/test/oci:1", {}).image;
  ImageRecord b = svc.pull(H + "/test/v2s2:1", {}).image;
  REQUIRE(a.id == b.id);
  PullOptions amd;
  amd.platform = Platform::parse("linux/amd64");
  ImageRecord base = svc.pull(H + "/test/multi:1", amd).image;  // shares the first layer
  REQUIRE(base.layers[0].digest == a.layers[0].digest);

  RemoveResult r = svc.remove(H + "/test/oci:1");
  CHECK(r.untagged == std::vector<std::string>{H + "/test/oci:1"});
  CHECK(r.deleted.empty());
  REQUIRE(svc.find(a.id.str()));
  CHECK(svc.find(a.id.str())->repo_tags == std::vector<std::string>{H + "/test/v2s2:1"});

  r = svc.remove(H + "/test/v2s2:1");
  CHECK(r.deleted == std::vector<Digest>{a.id});
  CHECK_FALSE(svc.find(a.id.str()));
  CHECK_FALSE(fs::exists(svc.fs_builder().path(a.id)));
  CHECK_FALSE(svc.content().has(a.layers[1].digest));
  CHECK(svc.content().has(a.layers[0].digest));  // still used by the base image
  for (auto& d : base.blobs()) CHECK(svc.content().has(d));

  svc.remove_image(ImageSpec{base.id.str(), {}});
  CHECK(svc.images().empty());
  CHECK(svc.content().total_size() == 0);
  svc.remove_image(ImageSpec{base.id.str(), {}});  // CRI: removing a missing image is fine
  auto fsinfo = svc.image_fs_info();
  REQUIRE(fsinfo.size() == 1);
  CHECK(fsinfo[0].mountpoint == svc.image_root().string());
}

TEST_CASE("redirects are followed, schema1 is refused, deadlines and cancellation stop pulls", "[image][registry]") {
  auto& imgs = TestImages::get();
  TempDir root;
  ImageService svc(options(root.path()));
  std::string up = imgs.open->host();
  SECTION("blob redirects (as to object storage)") {
    Proxy proxy(up, [&](const HttpTestRequest& req, HttpTestResponse& resp) {
      if (req.path.find("/blobs/") != std::string::npos) {
        resp = HttpTestResponse{307, {{"Location", "http://" + up + req.path}}, ""};
      }
    });
    CHECK(svc.pull(proxy.host() + "/test/oci:1", {}).blobs_fetched == 3);
  }
  SECTION("schema1") {
    Proxy proxy(up, [&](const HttpTestRequest& req, HttpTestResponse& resp) {
      if (req.path.find("/manifests/") != std::string::npos) {
        resp.body = R"({"schemaVersion":1,"name":"test/oci","tag":"1","fsLayers":[],"history":[]})";
        resp.headers = {{"Content-Type", std::string(media::docker_schema1_signed)}};
      }
    });
    std::string msg;
    CHECK(pull_error(svc, proxy.host() + "/test/oci:1", {}, &msg) == ErrorKind::unsupported);
    CHECK_THAT(msg, Catch::Contains("schema 1"));
  }
  SECTION("deadline already passed") {
    CancelToken t;
    t.set_deadline(CancelToken::Clock::now());
    PullOptions o;
    o.cancel = &t;
    CHECK(pull_error(svc, up + "/test/oci:1", o) == ErrorKind::cancelled);
  }
  SECTION("cancel while retrying a failing registry") {
    Proxy proxy(up, [](const HttpTestRequest&, HttpTestResponse& resp) { resp = HttpTestResponse{503, {}, "down"}; });
    ServiceOptions o = options(root.path());
    o.retry.attempts = 100;
    o.retry.initial_backoff = std::chrono::milliseconds(200);
    ImageService slow(o);
    CancelToken t;
    PullOptions po;
    po.cancel = &t;
    std::thread canceller([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      t.cancel();
    });
    auto start = std::chrono::steady_clock::now();
    CHECK(pull_error(slow, proxy.host() + "/test/oci:1", po) == ErrorKind::cancelled);
    canceller.join();
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
  }
  CHECK(svc.images().size() <= 1);
}

TEST_CASE("CRI calls: PullImage with auth, ImageStatus verbose, ListImages filter", "[image][registry][cri]") {
  auto& imgs = TestImages::get();
  TempDir work;
  fs::path htpasswd = work.path() / "htpasswd";
  sh(fmt::format("htpasswd -Bbn carol pw > {}", htpasswd.string()));
  TestRegistry reg(imgs.storage, work.path(), htpasswd.string());
  TempDir root;
  ImageService svc(options(root.path()));
  ImageSpec spec{reg.host() + "/test/oci:1", {}};
  std::string id = svc.pull_image(spec, AuthConfig{"carol", "pw", "", reg.host(), "", ""},
                                  SandboxInfo{"pod", "default", "uid-1", {}});
  CHECK(Digest::valid(id));
  ImageStatusResult st = svc.image_status(spec, true);
  REQUIRE(st.image);
  CHECK(st.image->id == id);
  CHECK(st.image->repo_tags == std::vector<std::string>{spec.image});
  CHECK(st.image->username.empty());
  CHECK_THAT(st.info.at("info"), Catch::Contains("\"Cmd\":[\"sh\"]") && Catch::Contains("fsImage"));
  CHECK_FALSE(svc.image_status(ImageSpec{"nothere:1", {}}, false).image);
  CHECK(svc.list_images({}).size() == 1);
  CHECK(svc.list_images(ImageFilter{ImageSpec{id.substr(7, 12), {}}}).size() == 1);
  CHECK(svc.list_images(ImageFilter{ImageSpec{"other:1", {}}}).empty());
}

TEST_CASE("HTTPS registries: a per-registry CA or insecure mode, verified otherwise", "[image][registry][tls]") {
  auto& imgs = TestImages::get();
  TempDir work;
  std::string cert = (work.path() / "reg.pem").string(), key = (work.path() / "reg.key").string();
  sh(fmt::format("openssl req -x509 -newkey rsa:2048 -nodes -keyout {} -out {} -days 2 -subj /CN=127.0.0.1 "
                 "-addext subjectAltName=IP:127.0.0.1",
                 key, cert));
  TestRegistry reg(imgs.storage, work.path(), {}, {}, cert, key);
  std::string ref = reg.host() + "/test/oci:1";
  SECTION("unknown CA is refused") {
    TempDir root;
    std::string msg;
    ImageService svc(options(root.path()));
    CHECK(pull_error(svc, ref, {}, &msg) == ErrorKind::network);
    CHECK_THAT(msg, Catch::Contains("certificate"));
  }
  SECTION("per-registry CA file") {
    TempDir root;
    ImageService svc(options(root.path(), RegistryConfig::parse(
                                              fmt::format(R"({{"registries":{{"{}":{{"ca_file":"{}"}}}}}})", reg.host(), cert), "test")));
    CHECK(svc.pull(ref, {}).image.layers.size() == 2);
  }
  SECTION("insecure registry") {
    TempDir root;
    ImageService svc(options(root.path(), RegistryConfig::parse(
                                              fmt::format(R"({{"registries":{{"{}":{{"insecure":true}}}}}})", reg.host()), "test")));
    CHECK(svc.pull(ref, {}).image.layers.size() == 2);
  }
}
