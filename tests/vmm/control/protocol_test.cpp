// The wire format alone: request validation (hostile-input table), reply encoding, the status
// object both ways.

#include "vmm/control/protocol.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace frakti::vmm::control;

namespace {

constexpr uint32_t kSlots = 4;

Request parse_ok(const std::string& line) {
  auto r = parse_request(line, kSlots);
  if (auto* e = std::get_if<RequestError>(&r)) FAIL("rejected: " << e->message << " for " << line);
  return std::get<Request>(r);
}

std::string nested(int depth) {
  return std::string(static_cast<size_t>(depth), '[') +
         std::string(static_cast<size_t>(depth), ']');
}

}  // namespace

TEST_CASE("valid requests parse with defaults", "[control][protocol]") {
  Request r = parse_ok(R"({"id":7,"method":"status"})");
  CHECK(r.id == 7);
  CHECK(r.method == Method::status);
  CHECK(parse_ok(R"({"id":0,"method":"pause","params":null})").method == Method::pause);
  CHECK(parse_ok(R"({"params":{},"method":"resume","id":1})").method == Method::resume);
  CHECK(parse_ok(R"({"id":18446744073709551615,"method":"boot_time"})").id == UINT64_MAX);

  r = parse_ok(R"({"id":2,"method":"stop"})");
  CHECK(r.stop.graceful);
  CHECK(r.stop.timeout == kDefaultStopTimeout);
  r = parse_ok(R"({"id":2,"method":"stop","params":{"graceful":false,"timeout_ms":600000}})");
  CHECK_FALSE(r.stop.graceful);
  CHECK(r.stop.timeout == std::chrono::milliseconds(600000));

  r = parse_ok(
      R"({"id":3,"method":"set_drive","params":{"slot":3,"path":"/img/a.erofs","read_only":false,"serial":"rootfs-c1"}})");
  CHECK(r.drive.slot == 3);
  CHECK(r.drive.path == "/img/a.erofs");
  CHECK_FALSE(r.drive.read_only);
  CHECK(r.drive.serial == "rootfs-c1");

  r = parse_ok(R"({"id":4,"method":"set_drive","params":{"slot":0,"path":"/x"}})");
  CHECK(r.drive.read_only);  // read-only unless asked otherwise
  CHECK(r.drive.serial.empty());
  r = parse_ok(
      R"({"id":4,"method":"set_drive","params":{"slot":1,"path":null,"read_only":false}})");
  CHECK_FALSE(r.drive.path.has_value());  // eject
  r = parse_ok(R"({"id":4,"method":"set_drive","params":{"slot":1}})");
  CHECK_FALSE(r.drive.path.has_value());
  r = parse_ok(
      R"({"id":5,"method":"set_drive","params":{"slot":0,"path":"/x","serial":"12345678901234567890"}})");
  CHECK(r.drive.serial.size() == 20);
}

TEST_CASE("hostile requests become precise errors", "[control][protocol]") {
  struct Case {
    std::string line;
    std::optional<uint64_t> id;
    ErrorCode code;
    std::string message_part;
  };
  const auto bad = ErrorCode::invalid_argument;
  const auto missing = ErrorCode::not_found;
  const std::vector<Case> cases = {
      // Not JSON, or not a request object.
      {"", std::nullopt, bad, "not valid JSON"},
      {"garbage", std::nullopt, bad, "not valid JSON"},
      {"{", std::nullopt, bad, "not valid JSON"},
      {R"({"id":1,"method":"status"} trailing)", std::nullopt, bad, "not valid JSON"},
      {R"({"id":1,"method":"status"}{"id":2,"method":"status"})", std::nullopt, bad,
       "not valid JSON"},
      {"{\"id\":1,\"method\":\"\xff\xfe\"}", std::nullopt, bad, "not valid JSON"},
      {"{\"id\":1,\"method\":\"sta\x01tus\"}", std::nullopt, bad, "not valid JSON"},
      {std::string(100000, '['), std::nullopt, bad, "not valid JSON"},
      {"[1,2]", std::nullopt, bad, "must be a JSON object"},
      {"\"status\"", std::nullopt, bad, "must be a JSON object"},
      {"null", std::nullopt, bad, "must be a JSON object"},
      {"42", std::nullopt, bad, "must be a JSON object"},
      // id.
      {R"({"method":"status"})", std::nullopt, bad, "no 'id'"},
      {R"({"id":-1,"method":"status"})", std::nullopt, bad, "'id' must be an unsigned integer"},
      {R"({"id":1.5,"method":"status"})", std::nullopt, bad, "'id' must be an unsigned integer"},
      {R"({"id":"1","method":"status"})", std::nullopt, bad, "'id' must be an unsigned integer"},
      {R"({"id":null,"method":"status"})", std::nullopt, bad, "'id' must be an unsigned integer"},
      {R"({"id":18446744073709551616,"method":"status"})", std::nullopt, bad,
       "'id' must be an unsigned integer"},
      // method, fields, params.
      {R"({"id":1})", 1, bad, "no 'method'"},
      {R"({"id":1,"method":5})", 1, bad, "'method' must be a string"},
      {R"({"id":1,"method":"reboot"})", 1, missing, "unknown method 'reboot'"},
      {R"({"id":1,"method":"STATUS"})", 1, missing, "unknown method 'STATUS'"},
      {R"({"id":1,"method":""})", 1, missing, "unknown method ''"},
      {R"({"id":1,"method":"status","jsonrpc":"2.0"})", 1, bad, "unknown request field 'jsonrpc'"},
      {R"({"id":1,"method":"status","params":[]})", 1, bad, "'params' must be a JSON object"},
      {R"({"id":1,"method":"status","params":"x"})", 1, bad, "'params' must be a JSON object"},
      {R"({"id":1,"method":"status","params":{"verbose":true}})", 1, bad,
       "unknown parameter 'verbose' for method 'status'"},
      {R"({"id":1,"method":"pause","params":{"x":1}})", 1, bad, "unknown parameter 'x'"},
      {R"({"id":1,"method":"status","params":{"a":)" + nested(20000) + "}}", 1, bad,
       "unknown parameter 'a'"},
      // stop.
      {R"({"id":2,"method":"stop","params":{"graceful":"yes"}})", 2, bad,
       "'graceful' must be true or false"},
      {R"({"id":2,"method":"stop","params":{"graceful":1}})", 2, bad, "must be true or false"},
      {R"({"id":2,"method":"stop","params":{"timeout_ms":-5}})", 2, bad,
       "'timeout_ms' must be an unsigned integer"},
      {R"({"id":2,"method":"stop","params":{"timeout_ms":1e3}})", 2, bad,
       "'timeout_ms' must be an unsigned integer"},
      {R"({"id":2,"method":"stop","params":{"timeout_ms":"5000"}})", 2, bad,
       "must be an unsigned integer"},
      {R"({"id":2,"method":"stop","params":{"timeout_ms":600001}})", 2, bad,
       "the largest allowed is 600000"},
      {R"({"id":2,"method":"stop","params":{"timeout":5}})", 2, bad, "unknown parameter 'timeout'"},
      // set_drive.
      {R"({"id":3,"method":"set_drive"})", 3, bad, "needs parameter 'slot'"},
      {R"({"id":3,"method":"set_drive","params":{"path":"/x"}})", 3, bad, "needs parameter 'slot'"},
      {R"({"id":3,"method":"set_drive","params":{"slot":"0"}})", 3, bad,
       "'slot' must be an unsigned integer"},
      {R"({"id":3,"method":"set_drive","params":{"slot":-1}})", 3, bad, "unsigned integer"},
      {R"({"id":3,"method":"set_drive","params":{"slot":0.0}})", 3, bad, "unsigned integer"},
      {R"({"id":3,"method":"set_drive","params":{"slot":4,"path":"/x"}})", 3, missing,
       "drive slot 4 does not exist: this VM has slots 0 to 3"},
      {R"({"id":3,"method":"set_drive","params":{"slot":4294967296}})", 3, missing,
       "drive slot 4294967296 does not exist"},
      {R"({"id":3,"method":"set_drive","params":{"slot":18446744073709551615}})", 3, missing,
       "does not exist"},
      {R"({"id":3,"method":"set_drive","params":{"slot":0,"path":""}})", 3, bad, "'path' is empty"},
      {R"({"id":3,"method":"set_drive","params":{"slot":0,"path":"images/a.erofs"}})", 3, bad,
       "'path' must be absolute"},
      {R"({"id":3,"method":"set_drive","params":{"slot":0,"path":"/a\u0000b"}})", 3, bad,
       "NUL character"},
      {std::string(R"({"id":3,"method":"set_drive","params":{"slot":0,"path":"/)") +
           std::string(5000, 'a') + "\"}}",
       3, bad, "'path' is 5001 bytes; the limit is 4095"},
      {R"({"id":3,"method":"set_drive","params":{"slot":0,"path":5}})", 3, bad,
       "'path' must be a string"},
      {R"({"id":3,"method":"set_drive","params":{"slot":0,"path":"/x","read_only":1}})", 3, bad,
       "'read_only' must be true or false"},
      {R"({"id":3,"method":"set_drive","params":{"slot":0,"path":"/x","serial":"123456789012345678901"}})",
       3, bad, "'serial' is 21 bytes; virtio-blk serials hold at most 20"},
      {R"({"id":3,"method":"set_drive","params":{"slot":0,"path":"/x","serial":"a b"}})", 3, bad,
       "printable ASCII"},
      {R"({"id":3,"method":"set_drive","params":{"slot":0,"path":"/x","serial":"caf\u00e9"}})", 3,
       bad, "printable ASCII"},
      {R"({"id":3,"method":"set_drive","params":{"slot":0,"path":"/x","serial":"a\nb"}})", 3, bad,
       "printable ASCII"},
      {R"({"id":3,"method":"set_drive","params":{"slot":0,"path":"/x","serial":7}})", 3, bad,
       "'serial' must be a string"},
      {R"({"id":3,"method":"set_drive","params":{"slot":0,"serial":"x"}})", 3, bad,
       "an eject (no 'path') takes no 'serial'"},
      {R"({"id":3,"method":"set_drive","params":{"slot":0,"path":"/x","size":1}})", 3, bad,
       "unknown parameter 'size' for method 'set_drive'"},
  };
  for (const auto& c : cases) {
    INFO("line: " << c.line.substr(0, 200));
    auto r = parse_request(c.line, kSlots);
    REQUIRE(std::holds_alternative<RequestError>(r));
    const auto& e = std::get<RequestError>(r);
    CHECK(e.id == c.id);
    CHECK(error_code_name(e.code) == error_code_name(c.code));
    CHECK_THAT(e.message, Catch::Contains(c.message_part));
  }
}

TEST_CASE("a VM without drive slots rejects every set_drive", "[control][protocol]") {
  auto r = parse_request(R"({"id":1,"method":"set_drive","params":{"slot":0}})", 0);
  REQUIRE(std::holds_alternative<RequestError>(r));
  CHECK(std::get<RequestError>(r).code == ErrorCode::not_found);
  CHECK_THAT(std::get<RequestError>(r).message, Catch::Contains("has no drive slots"));
}

TEST_CASE("replies are one JSON line each", "[control][protocol]") {
  CHECK(encode_result(5, Json{{"forced", true}}) == "{\"id\":5,\"result\":{\"forced\":true}}\n");
  CHECK(encode_error(std::nullopt, ErrorCode::not_found, "no") ==
        "{\"error\":{\"code\":\"not_found\",\"message\":\"no\"},\"id\":null}\n");
  // A message quoting invalid UTF-8 or a newline from a request still makes one valid line.
  std::string line = encode_error(9, ErrorCode::invalid_argument, "bad \xff\xfe and\nnewline");
  CHECK(line.find('\n') == line.size() - 1);
  Json j = Json::parse(line);
  CHECK(j["id"] == 9);
  CHECK(j["error"]["code"] == "invalid_argument");
  CHECK(encode_request(1, "stop", Json{{"graceful", false}}) ==
        "{\"id\":1,\"method\":\"stop\",\"params\":{\"graceful\":false}}\n");
}

TEST_CASE("error codes and states have stable wire names", "[control][protocol]") {
  for (auto code :
       {ErrorCode::invalid_argument, ErrorCode::not_found, ErrorCode::failed_precondition,
        ErrorCode::permission_denied, ErrorCode::internal}) {
    CHECK(parse_error_code(error_code_name(code)) == code);
  }
  CHECK(error_code_name(ErrorCode::failed_precondition) == "failed_precondition");
  CHECK_FALSE(parse_error_code("unavailable").has_value());
  for (auto s : {VmState::running, VmState::paused, VmState::stopping, VmState::stopped}) {
    CHECK(parse_vm_state(vm_state_name(s)) == s);
  }
  CHECK_FALSE(parse_vm_state("crashed").has_value());
}

TEST_CASE("status object round-trips and rejects malformed input", "[control][protocol]") {
  VmStatus s;
  s.state = VmState::paused;
  s.vcpus = 2;
  s.memory_mib = 1024;
  s.uptime = std::chrono::milliseconds(4321);
  s.boot_time = std::chrono::microseconds(87654);
  s.drives = {{0, "/img/a.erofs", true, "rootfs-a"}, {1, "", true, ""}};
  Json j = status_to_json(s);
  CHECK(j["state"] == "paused");
  CHECK(j["boot_time_us"] == 87654);
  CHECK(j["uptime_ms"] == 4321);
  CHECK(status_from_json(j) == s);

  s.boot_time.reset();
  j = status_to_json(s);
  CHECK(j["boot_time_us"].is_null());
  CHECK(status_from_json(j) == s);

  const std::vector<std::pair<std::string, Json>> broken = {
      {"state", "crashed"},
      {"state", 1},
      {"vcpus", -1},
      {"vcpus", 4294967296},
      {"memory_mib", "1"},
      {"uptime_ms", 1.5},
      {"boot_time_us", "x"},
      {"drives", Json::object()},
      {"drives", Json::array({Json{{"slot", 0}}})},
      {"drives",
       Json::array({Json{{"slot", 0}, {"path", 1}, {"read_only", true}, {"serial", ""}}})},
  };
  for (const auto& [key, value] : broken) {
    INFO(key << " = " << value.dump());
    Json bad = status_to_json(s);
    bad[key] = value;
    CHECK_THROWS_AS(status_from_json(bad), std::invalid_argument);
  }
  Json no_state = status_to_json(s);
  no_state.erase("state");
  CHECK_THROWS_AS(status_from_json(no_state), std::invalid_argument);
  CHECK_THROWS_AS(status_from_json(Json::array()), std::invalid_argument);
}
