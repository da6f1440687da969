// ImageGrpcService end to end: a real gRPC server on a Unix socket, the generated client stub,
// and a real image store pulling from Debian's docker-registry on loopback (TestImages).

#include "cri/image/image_grpc_service.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.hpp"
#include "cri/image/status.hpp"
#include "image/registry_config.hpp"
#include "proto/cri/api.grpc.pb.h"
#include "tests/image/test_registry.hpp"

namespace v1 = runtime::v1;
namespace fs = std::filesystem;
using frakti::cri::ImageGrpcService;
using namespace frakti::image::testing;

namespace {

frakti::image::ServiceOptions options(const fs::path& root) {
  frakti::image::ServiceOptions o;
  o.root = root;
  o.retry.initial_backoff = std::chrono::milliseconds(20);
  o.retry.max_backoff = std::chrono::milliseconds(100);
  return o;
}

// One image store served by ImageGrpcService on <tmp>/cri.sock, and a stub talking to it.
struct Harness {
  Harness() : images(options(root.path())), service(images) {
    socket = root.path() / "cri.sock";
    grpc::ServerBuilder b;
    b.AddListeningPort("unix:" + socket.string(), grpc::InsecureServerCredentials());
    b.RegisterService(&service);
    server = b.BuildAndStart();
    REQUIRE(server);
    stub = v1::ImageService::NewStub(
        grpc::CreateChannel("unix:" + socket.string(), grpc::InsecureChannelCredentials()));
  }
  ~Harness() {
    if (server) server->Shutdown();
  }

  grpc::Status pull(const std::string& ref, std::string* image_ref = nullptr,
                    const v1::AuthConfig* auth = nullptr) {
    grpc::ClientContext ctx;
    v1::PullImageRequest req;
    req.mutable_image()->set_image(ref);
    if (auth) *req.mutable_auth() = *auth;
    v1::PullImageResponse resp;
    grpc::Status st = stub->PullImage(&ctx, req, &resp);
    if (image_ref) *image_ref = resp.image_ref();
    return st;
  }
  v1::ImageStatusResponse status(const std::string& name, bool verbose = false) {
    grpc::ClientContext ctx;
    v1::ImageStatusRequest req;
    req.mutable_image()->set_image(name);
    req.set_verbose(verbose);
    v1::ImageStatusResponse resp;
    grpc::Status st = stub->ImageStatus(&ctx, req, &resp);
    INFO(st.error_message());
    REQUIRE(st.ok());
    return resp;
  }
  std::vector<v1::Image> list(const std::string* filter = nullptr) {
    grpc::ClientContext ctx;
    v1::ListImagesRequest req;
    if (filter) req.mutable_filter()->mutable_image()->set_image(*filter);
    v1::ListImagesResponse resp;
    grpc::Status st = stub->ListImages(&ctx, req, &resp);
    REQUIRE(st.ok());
    return {resp.images().begin(), resp.images().end()};
  }
  grpc::Status remove(const std::string& name) {
    grpc::ClientContext ctx;
    v1::RemoveImageRequest req;
    req.mutable_image()->set_image(name);
    v1::RemoveImageResponse resp;
    return stub->RemoveImage(&ctx, req, &resp);
  }
  v1::FilesystemUsage fs_info() {
    grpc::ClientContext ctx;
    v1::ImageFsInfoResponse resp;
    REQUIRE(stub->ImageFsInfo(&ctx, v1::ImageFsInfoRequest(), &resp).ok());
    REQUIRE(resp.image_filesystems_size() == 1);
    CHECK(resp.container_filesystems_size() == 0);
    return resp.image_filesystems(0);
  }

  TempDir root{"frakti-cri-image"};
  frakti::image::ImageService images;
  ImageGrpcService service;
  fs::path socket;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<v1::ImageService::Stub> stub;
};

bool has_tag(const v1::Image& img, const std::string& tag) {
  for (auto& t : img.repo_tags()) {
    if (t == tag) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("an empty store: no images, its filesystem reported", "[cri][image]") {
  Harness h;
  CHECK(h.list().empty());
  v1::FilesystemUsage u = h.fs_info();
  CHECK(u.fs_id().mountpoint() == (h.root.path() / "image").string());
  CHECK(u.timestamp() > 0);
  CHECK(u.has_used_bytes());
  CHECK(u.has_inodes_used());
  CHECK_FALSE(h.status("busybox").has_image());
}

TEST_CASE("pull, status, list with a filter, remove twice", "[cri][image][registry]") {
  auto& imgs = TestImages::get();
  Harness h;
  const std::string H = imgs.open->host();
  // test/multi:1 selects the amd64 "base" image: another image than test/oci:1.
  const std::string oci = H + "/test/oci:1", other = H + "/test/multi:1";
  uint64_t empty_bytes = h.fs_info().used_bytes().value();

  std::string ref;
  REQUIRE(h.pull(oci, &ref).ok());
  CHECK_THAT(ref, Catch::Matches("sha256:[0-9a-f]{64}"));

  SECTION("status by tag, ID and digest") {
    v1::Image img = h.status(oci).image();
    CHECK(img.id() == ref);
    CHECK(has_tag(img, oci));
    REQUIRE(img.repo_digests_size() == 1);
    CHECK_THAT(img.repo_digests(0), Catch::StartsWith(H + "/test/oci@sha256:"));
    CHECK(img.size() > 0);
    CHECK(img.spec().image() == ref);
    CHECK(h.status(ref).image().id() == ref);
    CHECK(h.status(img.repo_digests(0)).image().id() == ref);
    CHECK(h.status(oci).info().empty());  // only verbose asks for info
  }

  SECTION("verbose status carries the config and layers as JSON") {
    v1::ImageStatusResponse r = h.status(oci, true);
    REQUIRE(r.has_image());
    REQUIRE(r.info().count("info") == 1);
    auto j = nlohmann::json::parse(r.info().at("info"));
    CHECK(j["layers"].size() == 2);
    CHECK(j["config"]["Cmd"] == nlohmann::json::array({"sh"}));
    CHECK(j["architecture"] == "amd64");
  }

  SECTION("a missing image is OK without an image") {
    v1::ImageStatusResponse r = h.status(H + "/test/nope:1", true);
    CHECK_FALSE(r.has_image());
    CHECK(r.info().empty());
  }

  SECTION("list, with and without a filter") {
    std::string ref2;
    REQUIRE(h.pull(other, &ref2).ok());
    CHECK(ref2 != ref);
    CHECK(h.list().size() == 2);
    auto only = h.list(&oci);
    REQUIRE(only.size() == 1);
    CHECK(only[0].id() == ref);
    CHECK(has_tag(only[0], oci));
    std::string missing = H + "/test/nope:1", empty;
    CHECK(h.list(&missing).empty());
    CHECK(h.list(&empty).size() == 2);  // an empty spec filters nothing
  }

  SECTION("remove is idempotent and frees the space") {
    CHECK(h.fs_info().used_bytes().value() > empty_bytes);
    grpc::Status st = h.remove(oci);
    INFO(st.error_message());
    CHECK(st.ok());
    CHECK_FALSE(h.status(oci).has_image());
    CHECK_FALSE(h.status(ref).has_image());
    CHECK(h.list().empty());
    CHECK(h.remove(oci).ok());
    CHECK(h.remove(ref).ok());
    CHECK(h.remove(H + "/never/pulled:1").ok());
    CHECK(h.fs_info().used_bytes().value() < empty_bytes + 64 * 1024);
  }

  SECTION("remove by ID drops every name") {
    REQUIRE(h.pull(H + "/test/oci@" +
                   h.status(oci).image().repo_digests(0).substr((H + "/test/oci@").size()))
                .ok());
    CHECK(h.remove(ref).ok());
    CHECK(h.list().empty());
  }
}

TEST_CASE("requests without an image name are INVALID_ARGUMENT", "[cri][image]") {
  Harness h;
  auto check_invalid = [](const grpc::Status& st, const char* rpc) {
    INFO(rpc);
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(st.error_message(), Catch::StartsWith(rpc) && Catch::Contains("ImageSpec.image"));
  };
  for (bool with_spec : {false, true}) {
    INFO("spec present: " << with_spec);
    {
      grpc::ClientContext ctx;
      v1::PullImageRequest req;
      if (with_spec) req.mutable_image();
      v1::PullImageResponse resp;
      check_invalid(h.stub->PullImage(&ctx, req, &resp), "PullImage");
    }
    {
      grpc::ClientContext ctx;
      v1::ImageStatusRequest req;
      if (with_spec) req.mutable_image();
      v1::ImageStatusResponse resp;
      check_invalid(h.stub->ImageStatus(&ctx, req, &resp), "ImageStatus");
    }
    {
      grpc::ClientContext ctx;
      v1::RemoveImageRequest req;
      if (with_spec) req.mutable_image();
      v1::RemoveImageResponse resp;
      check_invalid(h.stub->RemoveImage(&ctx, req, &resp), "RemoveImage");
    }
  }
  // A name that is no reference at all.
  grpc::Status st = h.pull("UPPER/Case::");
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(st.error_message(), Catch::StartsWith("PullImage \"UPPER/Case::\": "));
}

TEST_CASE("pull failures carry precise codes and say what to do", "[cri][image][registry]") {
  auto& imgs = TestImages::get();
  Harness h;
  const std::string H = imgs.open->host();

  SECTION("missing repository: NOT_FOUND") {
    grpc::Status st = h.pull(H + "/test/missing:1");
    CHECK(st.error_code() == grpc::StatusCode::NOT_FOUND);
    CHECK_THAT(st.error_message(), Catch::StartsWith("PullImage \"" + H + "/test/missing:1\": ") &&
                                       Catch::Contains("not found") &&
                                       Catch::Contains("check the image name"));
  }
  SECTION("missing tag of an existing repository: NOT_FOUND") {
    CHECK(h.pull(H + "/test/oci:nope").error_code() == grpc::StatusCode::NOT_FOUND);
  }
  SECTION("registry not listening: UNAVAILABLE") {
    // A bound socket that never listens refuses connections, and holds the port meanwhile.
    frakti::common::Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    const std::string ref = fmt::format("127.0.0.1:{}/test/oci:1", ntohs(a.sin_port));
    grpc::Status st = h.pull(ref);
    CHECK(st.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK_THAT(st.error_message(), Catch::StartsWith("PullImage \"" + ref + "\": ") &&
                                       Catch::Contains("reaches the registry"));
  }
  SECTION("credentials: UNAUTHENTICATED without, OK with AuthConfig") {
    TempDir work("frakti-cri-image-auth");
    fs::path htpasswd = work.path() / "htpasswd";
    sh(fmt::format("htpasswd -Bbn alice s3cret > {}", htpasswd.string()));
    TestRegistry reg(imgs.storage, work.path(), htpasswd.string());
    const std::string ref = reg.host() + "/test/oci:1";
    grpc::Status st = h.pull(ref);
    CHECK(st.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK_THAT(st.error_message(), Catch::Contains("pull credentials"));

    v1::AuthConfig wrong;
    wrong.set_username("alice");
    wrong.set_password("nope");
    CHECK(h.pull(ref, nullptr, &wrong).error_code() == grpc::StatusCode::UNAUTHENTICATED);

    v1::AuthConfig garbled;
    garbled.set_auth("%%% not base64 %%%");
    CHECK(h.pull(ref, nullptr, &garbled).error_code() == grpc::StatusCode::INVALID_ARGUMENT);

    v1::AuthConfig good;
    good.set_username("alice");
    good.set_password("s3cret");
    std::string id;
    st = h.pull(ref, &id, &good);
    INFO(st.error_message());
    REQUIRE(st.ok());
    CHECK(h.status(ref).image().id() == id);
  }
}

TEST_CASE("the call's deadline and cancellation stop a pull on the server",
          "[cri][image][registry]") {
  // A registry that never answers until released: without cancellation the server-side pull
  // would hold the call (and the server's shutdown) for the whole hold time.
  std::atomic<bool> release{false};
  TestHttpServer stuck([&](const HttpTestRequest&) {
    for (int i = 0; i < 1000 && !release; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return HttpTestResponse{503, {}, "released"};
  });
  const std::string ref = fmt::format("127.0.0.1:{}/test/oci:1", stuck.port());
  Harness h;
  using clock = std::chrono::steady_clock;

  SECTION("deadline") {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
    v1::PullImageRequest req;
    req.mutable_image()->set_image(ref);
    v1::PullImageResponse resp;
    CHECK(h.stub->PullImage(&ctx, req, &resp).error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  SECTION("client cancels") {
    grpc::ClientContext ctx;
    std::thread canceller([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      ctx.TryCancel();
    });
    v1::PullImageRequest req;
    req.mutable_image()->set_image(ref);
    v1::PullImageResponse resp;
    CHECK(h.stub->PullImage(&ctx, req, &resp).error_code() == grpc::StatusCode::CANCELLED);
    canceller.join();
  }
  // Shutdown waits for running handlers: it returns quickly only if the pull stopped.
  auto t0 = clock::now();
  h.server->Shutdown();
  auto waited = clock::now() - t0;
  CHECK(waited < std::chrono::seconds(3));
  CHECK_FALSE(release.load());  // the registry was still holding its answer back
  release = true;
}

TEST_CASE("parallel pulls of one image all succeed with one ID", "[cri][image][registry]") {
  auto& imgs = TestImages::get();
  Harness h;
  const std::string ref = imgs.open->host() + "/test/v2s2:1";
  std::vector<std::string> ids(4);
  std::vector<grpc::Status> sts(4);
  std::vector<std::thread> ts;
  for (size_t i = 0; i < ids.size(); ++i)
    ts.emplace_back([&, i] { sts[i] = h.pull(ref, &ids[i]); });
  for (auto& t : ts) t.join();
  for (size_t i = 0; i < ids.size(); ++i) {
    INFO(i << ": " << sts[i].error_message());
    CHECK(sts[i].ok());
    CHECK(ids[i] == ids[0]);
  }
  CHECK(h.list().size() == 1);
}

TEST_CASE("hostile names never crash and never name a file outside the store", "[cri][image]") {
  Harness h;
  // A file the lookups must not reach through a name that is a path.
  std::ofstream(h.root.path() / "image" / "outside.json") << "{}";
  struct Case {
    std::string name;
    bool valid_ref;  // a well-formed reference (a pull would go to the network)
  };
  const std::vector<Case> cases = {
      {"../outside", false},
      {"../../../../etc/passwd", false},
      {"/etc/passwd", false},
      {"sha256:../../outside", false},
      {"sha256:zz", true},  // docker.io/library/sha256:zz
      {std::string("busybox\0evil", 12), false},
      {std::string(100000, 'a'), false},
      {"busybox@sha256:" + std::string(64, 'g'), false},
      {"a:b:c:d", false},
      {"@@@", false},
      {":", false},
      {"busybox:" + std::string(200, 't'), false},
  };
  for (const auto& c : cases) {
    INFO("name: " << c.name.substr(0, 60));
    {
      grpc::ClientContext ctx;
      v1::ImageStatusRequest req;
      req.mutable_image()->set_image(c.name);
      v1::ImageStatusResponse resp;
      grpc::Status st = h.stub->ImageStatus(&ctx, req, &resp);
      CHECK((st.ok() || st.error_code() == grpc::StatusCode::INVALID_ARGUMENT));
      CHECK_FALSE(resp.has_image());
    }
    {
      grpc::Status st = h.remove(c.name);
      CHECK((st.ok() || st.error_code() == grpc::StatusCode::INVALID_ARGUMENT));
    }
    {
      grpc::ClientContext ctx;
      v1::ListImagesRequest req;
      req.mutable_filter()->mutable_image()->set_image(c.name);
      v1::ListImagesResponse resp;
      grpc::Status st = h.stub->ListImages(&ctx, req, &resp);
      CHECK((st.ok() || st.error_code() == grpc::StatusCode::INVALID_ARGUMENT));
      CHECK(resp.images().empty());
    }
    if (!c.valid_ref) {
      // The message repeats the name, bounded: an unbounded one would exceed the client's
      // metadata limit and arrive as RESOURCE_EXHAUSTED instead.
      grpc::Status st = h.pull(c.name);
      CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
      CHECK(st.error_message().size() < 4096);
      CHECK_THAT(st.error_message(),
                 Catch::StartsWith("PullImage \"" + frakti::cri::clip(c.name.substr(0, 20), 20)));
    }
  }
  CHECK(fs::exists(h.root.path() / "image" / "outside.json"));

  // Invalid UTF-8 in a proto3 string fails to parse before the service sees it; the server
  // answers the call with an error and keeps serving.
  grpc::ClientContext ctx;
  v1::ImageStatusRequest req;
  req.mutable_image()->set_image("\xff\xfe");
  v1::ImageStatusResponse resp;
  CHECK_FALSE(h.stub->ImageStatus(&ctx, req, &resp).ok());
  CHECK(h.list().empty());
}
