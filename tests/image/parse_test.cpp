// Parsers of untrusted text: references, manifests/indexes/configs, WWW-Authenticate,
// registry config and credentials. Each has a hostile-input table.

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "image/auth.hpp"
#include "image/error.hpp"
#include "image/manifest.hpp"
#include "image/reference.hpp"
#include "image/registry_config.hpp"

using namespace frakti::image;

namespace {
const std::string kHex(64, 'a');
const std::string kDigest = "sha256:" + kHex;
}  // namespace

TEST_CASE("references normalise like Docker", "[image][parse]") {
  struct Case {
    const char* in;
    const char* out;
  };
  std::vector<Case> ok = {
      {"busybox", "docker.io/library/busybox:latest"},
      {"busybox:1.36", "docker.io/library/busybox:1.36"},
      {"user/app", "docker.io/user/app:latest"},
      {"docker.io/busybox", "docker.io/library/busybox:latest"},
      {"index.docker.io/library/busybox:x", "docker.io/library/busybox:x"},
      {"localhost/app", "localhost/app:latest"},
      {"127.0.0.1:5000/a/b/c:v1.0-rc_1", "127.0.0.1:5000/a/b/c:v1.0-rc_1"},
      {"registry.example.com/app__x.y-z", "registry.example.com/app__x.y-z:latest"},
  };
  for (auto& c : ok) CHECK(Reference::parse(c.in).str() == c.out);
  Reference d = Reference::parse("reg:5000/app:tag@" + kDigest);
  CHECK(d.tag == "tag");
  CHECK(d.str() == "reg:5000/app@" + kDigest);
  CHECK(Reference::parse("busybox").registry_host() == "registry-1.docker.io");
  CHECK(Reference::parse("busybox").remote_name() == "library/busybox");
}

TEST_CASE("hostile and malformed references are refused", "[image][parse][hostile]") {
  std::vector<std::string> bad = {
      "",  ":", "@", "Busybox", "busybox:", "busybox@sha256:abc", "busybox@md5:" + kHex, "a//b", "/abs", "a/",
      "reg:5000/", "busybox:-tag", "busybox:" + std::string(129, 't'), std::string(300, 'a'), "a..b", "a/-b",
      "busybox:tag with space", std::string("nul\0name", 8), "x/../../etc", "foo:bar:baz", "-reg.example/app",
  };
  for (auto& b : bad) {
    INFO(b);
    CHECK_THROWS_AS(Reference::parse(b), ImageError);
  }
  CHECK(looks_like_id("abc123"));
  CHECK(looks_like_id("sha256:" + kHex));
  CHECK_FALSE(looks_like_id("ab"));
  CHECK_FALSE(looks_like_id("busybox"));
}

TEST_CASE("manifest, index and config parsing", "[image][parse]") {
  std::string m = fmt::format(R"({{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":7}},
      "layers":[{{"mediaType":"{}","digest":"{}","size":100}}]}})",
                              media::docker_manifest, media::docker_config, kDigest, media::docker_layer_gzip, kDigest);
  Manifest man = parse_manifest(m);
  CHECK(man.layers.size() == 1);
  CHECK(man.config.size == 7);
  CHECK(classify_manifest(std::string(media::docker_manifest) + "; charset=utf-8", m) == ManifestKind::image);
  CHECK(classify_manifest("", R"({"schemaVersion":1,"name":"x","fsLayers":[]})") == ManifestKind::schema1);
  CHECK(classify_manifest(std::string(media::docker_schema1_signed), "{}") == ManifestKind::schema1);
  CHECK(classify_manifest("application/json", R"({"schemaVersion":2,"manifests":[]})") == ManifestKind::index);
  CHECK(classify_manifest("text/html", "<html>") == ManifestKind::unknown);

  std::string idx = fmt::format(R"({{"schemaVersion":2,"manifests":[
      {{"digest":"{0}","size":1,"platform":{{"os":"linux","architecture":"arm","variant":"v7"}}}},
      {{"digest":"sha256:{1}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
      {{"digest":"sha256:{2}","size":1,"platform":{{"os":"unknown","architecture":"unknown"}}}}]}})",
                                kDigest, std::string(64, 'b'), std::string(64, 'c'));
  Index i = parse_index(idx);
  CHECK(select_platform(i, Platform::parse("linux/amd64")).digest.str() == "sha256:" + std::string(64, 'b'));
  CHECK(select_platform(i, Platform::parse("linux/arm/v7")).digest.str() == kDigest);
  CHECK_THROWS_AS(select_platform(i, Platform::parse("linux/arm/v6")), ImageError);

  ImageConfig c = parse_config(fmt::format(R"({{"architecture":"amd64","os":"linux","config":{{"Entrypoint":["/bin/sh"],
      "Cmd":null,"Env":["A=1"],"WorkingDir":"/w","User":"1000:1000","ExposedPorts":{{"80/tcp":{{}}}},"Volumes":{{"/data":{{}}}},
      "Labels":{{"k":"v"}}}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}})",
                                           kDigest));
  CHECK(c.entrypoint == std::vector<std::string>{"/bin/sh"});
  CHECK(c.cmd.empty());
  CHECK(c.exposed_ports == std::vector<std::string>{"80/tcp"});
  CHECK(c.volumes == std::vector<std::string>{"/data"});
  CHECK(c.labels.at("k") == "v");
  CHECK(c.diff_ids.size() == 1);
}

TEST_CASE("hostile manifests, indexes and configs are refused", "[image][parse][hostile]") {
  auto desc = [](const std::string& d, const std::string& size) {
    return fmt::format(R"({{"mediaType":"{}","digest":"{}","size":{}}})", media::oci_layer_gzip, d, size);
  };
  auto man = [&](const std::string& layers) {
    return fmt::format(R"({{"schemaVersion":2,"config":{},"layers":[{}]}})", desc(kDigest, "10"), layers);
  };
  std::vector<std::string> bad_manifests = {
      "", "null", "[]", "{", R"({"schemaVersion":1})", R"({"schemaVersion":2})",
      man(desc("sha256:xyz", "1")), man(desc(kDigest, "-1")), man(desc(kDigest, "\"12\"")), man(desc(kDigest, "1.5")),
      man(desc("md5:" + kHex, "1")), man(desc("sha256:" + kHex + "/../../x", "1")),
      fmt::format(R"({{"schemaVersion":2,"config":{},"layers":{{}}}})", desc(kDigest, "1")),
      std::string(kMaxManifestBytes + 1, ' '),
  };
  for (auto& b : bad_manifests) {
    INFO(b.substr(0, 200));
    CHECK_THROWS_AS(parse_manifest(b), ImageError);
  }
  // Unknown layer media types are refused as unsupported, not silently unpacked.
  try {
    parse_manifest(fmt::format(R"({{"schemaVersion":2,"config":{},"layers":[{{"mediaType":"application/x-evil","digest":"{}","size":1}}]}})",
                               desc(kDigest, "1"), kDigest));
    FAIL("accepted");
  } catch (const ImageError& e) {
    CHECK(e.kind() == ErrorKind::unsupported);
  }
  for (std::string b : {R"({"manifests":{}})", R"({"manifests":[{"digest":"x","size":1}]})", R"({"manifests":[1]})", "7"}) {
    INFO(b);
    CHECK_THROWS_AS(parse_index(b), ImageError);
  }
  for (std::string b : {R"({})", R"({"rootfs":{"type":"other","diff_ids":[]}})", R"({"rootfs":{"type":"layers","diff_ids":["x"]}})",
                        R"({"config":[],"rootfs":{"type":"layers","diff_ids":[]}})",
                        R"({"config":{"Env":"A=1"},"rootfs":{"type":"layers","diff_ids":[]}})",
                        R"({"config":{"Cmd":[1]},"rootfs":{"type":"layers","diff_ids":[]}})"}) {
    INFO(b);
    CHECK_THROWS_AS(parse_config(b), ImageError);
  }
  for (std::string p : std::vector<std::string>{"", "/", "linux/", "a/b/c/d", std::string(100, 'x')}) {
    INFO(p);
    CHECK_THROWS_AS(Platform::parse(p), ImageError);
  }
}

TEST_CASE("WWW-Authenticate challenges parse, junk is skipped", "[image][parse][auth]") {
  auto c = parse_www_authenticate(R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:library/busybox:pull")");
  REQUIRE(c.size() == 1);
  CHECK(c[0].scheme == "bearer");
  CHECK(c[0].params.at("realm") == "https://auth.example/token");
  CHECK(c[0].params.at("scope") == "repository:library/busybox:pull");
  auto two = parse_www_authenticate(R"(Basic realm="r\"q", Bearer realm=x,service=y)");
  REQUIRE(two.size() == 2);
  CHECK(two[0].params.at("realm") == "r\"q");
  CHECK(two[1].params.at("service") == "y");
  struct Hostile {
    std::string in;
    size_t max;
  };
  std::vector<Hostile> hostile = {
      {"", 0}, {"   ", 0}, {",,,,", 0}, {"Bearer realm=\"unterminated", 0}, {"\x01\x02\x03", 0},
      {"Bearer =novalue", 2}, {std::string(100000, 'a'), 1}, {"Bearer realm=\"" + std::string(20000, 'x') + "\"", 1},
  };
  for (auto& h : hostile) {
    INFO(h.in.substr(0, 60));
    CHECK(parse_www_authenticate(h.in).size() <= h.max);
  }
}

TEST_CASE("registry config and credentials", "[image][parse]") {
  RegistryConfig cfg = RegistryConfig::parse(R"({"registries":{
      "https://index.docker.io/v1/":{"mirrors":["mirror.local:5000/"],"auth":"dTpw"},
      "10.0.0.1:5000":{"insecure":true,"ca_file":"/ca.pem"}}})",
                                             "test");
  CHECK(cfg.host("docker.io").mirrors == std::vector<std::string>{"https://mirror.local:5000"});
  CHECK(cfg.credentials_for("docker.io")->username == "u");
  CHECK(cfg.credentials_for("docker.io")->password == "p");
  CHECK(cfg.host("10.0.0.1:5000").insecure);
  CHECK_FALSE(cfg.credentials_for("other"));
  for (std::string b : {"[]", R"({"registries":[]})", R"({"registries":{"x":{"insecure":"yes"}}})",
                        R"({"registries":{"x":{"mirrors":"m"}}})", R"({"registries":{"x":{"auth":"!!"}}})"}) {
    INFO(b);
    CHECK_THROWS_AS(RegistryConfig::parse(b, "test"), ImageError);
  }
  CHECK_THROWS_AS((AuthConfig{"", "", "bm9jb2xvbg==", "", "", ""}.credentials()), ImageError);  // "nocolon"
  CHECK(AuthConfig{"", "", base64_encode("a:b:c"), "", "", ""}.credentials().password == "b:c");
  CHECK(is_loopback_host("127.0.0.1:5000"));
  CHECK(is_loopback_host("localhost"));
  CHECK(is_loopback_host("[::1]:5000"));
  CHECK_FALSE(is_loopback_host("127.example.com"));
  CHECK_FALSE(is_loopback_host("10.0.0.1:5000"));
}
