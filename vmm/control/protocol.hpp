#pragma once
// The control protocol's wire format (docs/vmm-control.md): one JSON object per line.
//   request  {"id":1,"method":"status","params":{}}
//   result   {"id":1,"result":{...}}
//   error    {"id":1,"error":{"code":"invalid_argument","message":"..."}}
// Parsing a request validates everything (fields, types, ranges) so the server only ever sees a
// well-formed Request; anything else becomes a RequestError to send back. Shared by the server
// (requests in, replies out) and the client (requests out, replies in).

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "vmm/control/control_error.hpp"
#include "vmm/control/control_handler.hpp"

namespace frakti::vmm::control {

using Json = nlohmann::json;

/// Largest request line the server accepts by default (without its newline).
inline constexpr size_t kDefaultMaxLineBytes = 64 * 1024;
/// Longest drive serial (virtio-blk's ID field, VIRTIO_BLK_ID_BYTES).
inline constexpr size_t kMaxSerialBytes = 20;
/// Longest backing-file path (PATH_MAX including the terminating NUL).
inline constexpr size_t kMaxPathBytes = 4095;
/// Default and largest graceful-stop timeout.
inline constexpr std::chrono::milliseconds kDefaultStopTimeout{5000};
inline constexpr std::chrono::milliseconds kMaxStopTimeout{600000};

enum class Method { status, boot_time, pause, resume, stop, set_drive };

/// Wire name of a method.
const char* method_name(Method method);

/// Parameters of `stop`.
struct StopParams {
  bool graceful = true;
  std::chrono::milliseconds timeout = kDefaultStopTimeout;
};

/// Parameters of `set_drive`; path nullopt = eject.
struct SetDriveParams {
  uint32_t slot = 0;
  std::optional<std::string> path;
  bool read_only = true;
  std::string serial;
};

/// A validated request. Only the params of `method` are meaningful.
struct Request {
  uint64_t id = 0;
  Method method = Method::status;
  StopParams stop;
  SetDriveParams drive;
};

/// Why a line is not a valid request; id is set when the line carried a usable one.
struct RequestError {
  std::optional<uint64_t> id;
  ErrorCode code = ErrorCode::invalid_argument;
  std::string message;
};

/// Parses and validates one request line (without its newline). drive_slots bounds set_drive's
/// slot. Never throws for any input.
std::variant<Request, RequestError> parse_request(std::string_view line, uint32_t drive_slots);

/// Serialises a request line (with its newline) for the client; params may be an empty object.
std::string encode_request(uint64_t id, std::string_view method, const Json& params);
/// Serialises a result reply line (with its newline).
std::string encode_result(uint64_t id, const Json& result);
/// Serialises an error reply line (with its newline); id nullopt is written as null.
std::string encode_error(std::optional<uint64_t> id, ErrorCode code, std::string_view message);

/// The `status` result object, and its inverse (throws std::invalid_argument when malformed).
Json status_to_json(const VmStatus& status);
VmStatus status_from_json(const Json& json);

}  // namespace frakti::vmm::control
