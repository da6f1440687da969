#include "vmm/virtio/blk/blk_request.hpp"

#include <catch2/catch.hpp>
#include <cstring>

using namespace frakti::vmm::virtio;
using namespace frakti::vmm::virtio::blk;

namespace {

/// Host buffers standing in for guest memory; spans are built from them in order.
struct ChainBuilder {
  std::vector<std::vector<uint8_t>> storage;
  DescriptorChain chain;
  ChainBuilder& header(uint32_t type, uint64_t sector, size_t split = 16) {
    std::vector<uint8_t> h(16);
    std::memcpy(h.data(), &type, 4);
    std::memcpy(h.data() + 8, &sector, 8);
    if (split < 16) {
      readable(std::vector<uint8_t>(h.begin(), h.begin() + split));
      return readable(std::vector<uint8_t>(h.begin() + split, h.end()));
    }
    return readable(h);
  }
  ChainBuilder& readable(std::vector<uint8_t> b) {
    storage.push_back(std::move(b));
    chain.readable.emplace_back(storage.back().data(), storage.back().size());
    return *this;
  }
  ChainBuilder& writable(size_t n) {
    storage.emplace_back(n, 0xee);
    chain.writable.emplace_back(storage.back().data(), n);
    return *this;
  }
  ChainBuilder() { storage.reserve(16); }  // spans must not move
};

}  // namespace

TEST_CASE("blk request parser: hostile layouts", "[virtio][blk]") {
  struct Case {
    const char* name;
    std::function<void(ChainBuilder&)> build;
    ParseError expect;
  };
  std::vector<Case> cases = {
      {"nothing writable", [](ChainBuilder& b) { b.header(request_type::kIn, 0); },
       ParseError::no_status},
      {"empty chain", [](ChainBuilder&) {}, ParseError::no_status},
      {"short header", [](ChainBuilder& b) { b.readable(std::vector<uint8_t>(10)).writable(1); },
       ParseError::short_header},
      {"no header at all", [](ChainBuilder& b) { b.writable(513); }, ParseError::short_header},
      {"IN with readable data",
       [](ChainBuilder& b) {
         b.header(request_type::kIn, 0).readable({1, 2}).writable(513);
       },
       ParseError::bad_layout},
      {"IN with a partial sector",
       [](ChainBuilder& b) { b.header(request_type::kIn, 0).writable(100).writable(1); },
       ParseError::bad_length},
      {"OUT with writable data",
       [](ChainBuilder& b) {
         b.header(request_type::kOut, 0).readable(std::vector<uint8_t>(512)).writable(513);
       },
       ParseError::bad_layout},
      {"OUT with a partial sector",
       [](ChainBuilder& b) {
         b.header(request_type::kOut, 0).readable(std::vector<uint8_t>(511)).writable(1);
       },
       ParseError::bad_length},
      {"FLUSH with data",
       [](ChainBuilder& b) { b.header(request_type::kFlush, 0).writable(512).writable(1); },
       ParseError::bad_layout},
      {"GET_ID without a buffer",
       [](ChainBuilder& b) { b.header(request_type::kGetId, 0).writable(1); },
       ParseError::bad_layout},
      {"unknown type", [](ChainBuilder& b) { b.header(99, 0).writable(1); },
       ParseError::unsupported},
      {"DISCARD (not offered)", [](ChainBuilder& b) { b.header(11, 0).writable(1); },
       ParseError::unsupported},
      {"type with the high bit", [](ChainBuilder& b) { b.header(0x80000000u, 0).writable(1); },
       ParseError::unsupported},
  };
  for (auto& c : cases) {
    SECTION(c.name) {
      ChainBuilder b;
      c.build(b);
      auto r = parse_request(b.chain);
      CHECK(r.error == c.expect);
      if (c.expect != ParseError::no_status) {
        // The status byte is the last writable byte, so an error can be reported.
        REQUIRE(r.request.status != nullptr);
        CHECK(r.request.status ==
              b.chain.writable.back().data() + b.chain.writable.back().size() - 1);
      }
    }
  }
}

TEST_CASE("blk request parser: well-formed requests", "[virtio][blk]") {
  SECTION("IN with data and status in one buffer, header split in two") {
    ChainBuilder b;
    b.header(request_type::kIn, 7, 5).writable(1024 + 1);
    auto r = parse_request(b.chain);
    REQUIRE(r.error == ParseError::none);
    CHECK(r.request.sector == 7);
    CHECK(r.request.data_len == 1024);
    REQUIRE(r.request.data.size() == 1);
    CHECK(r.request.data[0].iov_len == 1024);
    CHECK(r.request.status == b.chain.writable[0].data() + 1024);
  }
  SECTION("OUT with data spread over buffers") {
    ChainBuilder b;
    b.header(request_type::kOut, 3)
        .readable(std::vector<uint8_t>(256))
        .readable(std::vector<uint8_t>(768))
        .writable(1);
    auto r = parse_request(b.chain);
    REQUIRE(r.error == ParseError::none);
    CHECK(r.request.data_len == 1024);
    CHECK(r.request.data.size() == 2);
  }
  SECTION("GET_ID fills at most 20 bytes") {
    ChainBuilder b;
    b.header(request_type::kGetId, 0).writable(40).writable(1);
    auto r = parse_request(b.chain);
    REQUIRE(r.error == ParseError::none);
    CHECK(r.request.data_len == 20);
  }
  SECTION("FLUSH") {
    ChainBuilder b;
    b.header(request_type::kFlush, 123).writable(1);
    CHECK(parse_request(b.chain).error == ParseError::none);
  }
}

TEST_CASE("blk sector range check", "[virtio][blk]") {
  CHECK(in_range(0, 0, 0));
  CHECK_FALSE(in_range(0, 512, 0));
  CHECK(in_range(99, 512, 100));
  CHECK_FALSE(in_range(99, 1024, 100));
  CHECK(in_range(100, 0, 100));
  CHECK_FALSE(in_range(101, 0, 100));
  CHECK_FALSE(in_range(~0ull, 512, 100));
  CHECK_FALSE(in_range(~0ull - 1, 4096, ~0ull));
  CHECK_FALSE(in_range(1, ~0ull, 1000));
  CHECK(in_range(1, ~0ull - 511, ~0ull));
}
