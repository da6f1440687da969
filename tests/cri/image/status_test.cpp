// to_status: every image error kind and the host failures a CRI client can meet, as a table.

#include "cri/image/status.hpp"

#include <catch2/catch.hpp>
#include <cerrno>
#include <future>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

#include "image/error.hpp"

using frakti::cri::to_status;
using frakti::image::ErrorKind;
using frakti::image::ImageError;

TEST_CASE("image error kinds map to CRI status codes with the library's message kept",
          "[cri][image]") {
  struct Case {
    ErrorKind kind;
    grpc::StatusCode code;
    const char* hint;  // part of the advice appended, or "" for none
  };
  const Case cases[] = {
      {ErrorKind::invalid, grpc::StatusCode::INVALID_ARGUMENT, ""},
      {ErrorKind::not_found, grpc::StatusCode::NOT_FOUND, "check the image name"},
      {ErrorKind::auth, grpc::StatusCode::UNAUTHENTICATED, "pull credentials"},
      {ErrorKind::network, grpc::StatusCode::UNAVAILABLE, "reaches the registry"},
      {ErrorKind::integrity, grpc::StatusCode::DATA_LOSS, "does not match its digest"},
      {ErrorKind::unsupported, grpc::StatusCode::FAILED_PRECONDITION, ""},
      {ErrorKind::hostile, grpc::StatusCode::FAILED_PRECONDITION, "rebuild it"},
      {ErrorKind::cancelled, grpc::StatusCode::CANCELLED, ""},
  };
  for (const auto& c : cases) {
    INFO(frakti::image::kind_name(c.kind));
    grpc::Status st = to_status(ImageError(c.kind, "manifest of x:1 from reg: boom"));
    CHECK(st.error_code() == c.code);
    CHECK_THAT(st.error_message(), Catch::StartsWith("manifest of x:1 from reg: boom"));
    if (*c.hint) {
      CHECK_THAT(st.error_message(), Catch::Contains(c.hint));
    } else {
      CHECK(st.error_message() == "manifest of x:1 from reg: boom");
    }
  }
}

TEST_CASE("host failures: resources are RESOURCE_EXHAUSTED, the rest INTERNAL", "[cri][image]") {
  struct Case {
    int err;
    grpc::StatusCode code;
  };
  const Case cases[] = {
      {ENOSPC, grpc::StatusCode::RESOURCE_EXHAUSTED},
      {EDQUOT, grpc::StatusCode::RESOURCE_EXHAUSTED},
      {ENOMEM, grpc::StatusCode::RESOURCE_EXHAUSTED},
      {EMFILE, grpc::StatusCode::RESOURCE_EXHAUSTED},
      {ENFILE, grpc::StatusCode::RESOURCE_EXHAUSTED},
      {EACCES, grpc::StatusCode::INTERNAL},
      {ENOENT, grpc::StatusCode::INTERNAL},
      {EIO, grpc::StatusCode::INTERNAL},
  };
  for (const auto& c : cases) {
    INFO(c.err);
    grpc::Status st =
        to_status(std::system_error(c.err, std::generic_category(), "write blob /var/lib/x"));
    CHECK(st.error_code() == c.code);
    CHECK_THAT(st.error_message(), Catch::Contains("write blob /var/lib/x"));
  }
  // An errno-like value of some other category is not read as an errno.
  CHECK(to_status(std::system_error(ENOSPC, std::future_category(), "f")).error_code() ==
        grpc::StatusCode::INTERNAL);

  grpc::Status other = to_status(std::runtime_error("json parse error at byte 3"));
  CHECK(other.error_code() == grpc::StatusCode::INTERNAL);
  CHECK(other.error_message() == "internal error: json parse error at byte 3");
  CHECK(to_status(std::bad_alloc()).error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_CASE("clip bounds echoed text and escapes control characters", "[cri][image]") {
  using frakti::cri::clip;
  CHECK(clip("busybox:1", 64) == "busybox:1");
  CHECK(clip("", 0) == "");
  CHECK(clip("a\nb\rc", 64) == "a\\x0ab\\x0dc");
  CHECK(clip(std::string("x\0y", 3), 64) == "x\\x00y");
  CHECK(clip("a\x7f", 64) == "a\\x7f");
  CHECK(clip("h\xc3\xa9llo", 64) == "h\xc3\xa9llo");  // UTF-8 passes unchanged
  CHECK(clip(std::string(100, 'a'), 10) == std::string(10, 'a') + "...(90 more bytes)");

  // An exception repeating a huge request stays within what a gRPC client accepts.
  grpc::Status st = to_status(
      ImageError(ErrorKind::invalid, "reference \"" + std::string(100000, 'a') + "\": too long"));
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message().size() < frakti::cri::kMaxErrorText + 64);
  CHECK_THAT(st.error_message(), Catch::EndsWith("more bytes)"));
  grpc::Status internal = to_status(std::runtime_error(std::string(50000, 'z')));
  CHECK(internal.error_message().size() < frakti::cri::kMaxErrorText + 64);
}
