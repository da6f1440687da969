#include "vmm/control/protocol.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <initializer_list>
#include <limits>
#include <type_traits>

namespace frakti::vmm::control {
namespace {

constexpr std::array<const char*, 5> kErrorCodeNames = {
    "invalid_argument", "not_found", "failed_precondition", "permission_denied", "internal"};
constexpr std::array<const char*, 4> kStateNames = {"running", "paused", "stopping", "stopped"};
constexpr std::array<const char*, 6> kMethodNames = {"status", "boot_time", "pause",
                                                     "resume", "stop",      "set_drive"};

/// Thrown inside parse_request only; caught there and turned into a RequestError.
struct BadRequest {
  ErrorCode code;
  std::string message;
};

[[noreturn]] void bad(std::string message, ErrorCode code = ErrorCode::invalid_argument) {
  throw BadRequest{code, std::move(message)};
}

std::string encode_line(const Json& j) {
  // replace: a message may quote bytes from the request that are not valid UTF-8.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

/// Typed access to one method's params object; remembers nothing, checks everything.
class Params {
 public:
  Params(const Json& params, const char* method) : p_(params), method_(method) {}

  void allow_only(std::initializer_list<std::string_view> known) const {
    for (const auto& [key, value] : p_.items()) {
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        bad(fmt::format("unknown parameter '{}' for method '{}'", key, method_));
      }
    }
  }
  const Json* find(const char* key) const {
    auto it = p_.find(key);
    return it == p_.end() ? nullptr : &*it;
  }
  bool boolean(const char* key, bool fallback) const {
    const Json* v = find(key);
    if (!v) return fallback;
    if (!v->is_boolean()) bad(fmt::format("parameter '{}' must be true or false", key));
    return v->get<bool>();
  }
  uint64_t uint(const char* key, std::optional<uint64_t> fallback, uint64_t max) const {
    const Json* v = find(key);
    if (!v) {
      if (!fallback) bad(fmt::format("method '{}' needs parameter '{}'", method_, key));
      return *fallback;
    }
    if (!v->is_number_unsigned()) {
      bad(fmt::format("parameter '{}' must be an unsigned integer", key));
    }
    uint64_t n = v->get<uint64_t>();
    if (n > max) bad(fmt::format("parameter '{}' is {}; the largest allowed is {}", key, n, max));
    return n;
  }
  /// nullopt when absent or null.
  std::optional<std::string> string(const char* key) const {
    const Json* v = find(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_string()) bad(fmt::format("parameter '{}' must be a string", key));
    return v->get<std::string>();
  }

 private:
  const Json& p_;
  const char* method_;
};

void parse_stop(const Params& p, StopParams& out) {
  p.allow_only({"graceful", "timeout_ms"});
  out.graceful = p.boolean("graceful", true);
  out.timeout = std::chrono::milliseconds(
      p.uint("timeout_ms", kDefaultStopTimeout.count(), kMaxStopTimeout.count()));
}

void check_path(const std::string& path) {
  if (path.empty()) bad("parameter 'path' is empty; omit it or pass null to eject");
  if (path.find('\0') != std::string::npos) bad("parameter 'path' contains a NUL character");
  if (path.front() != '/') bad(fmt::format("parameter 'path' must be absolute, got '{}'", path));
  if (path.size() > kMaxPathBytes) {
    bad(fmt::format("parameter 'path' is {} bytes; the limit is {}", path.size(), kMaxPathBytes));
  }
}

void check_serial(const std::string& serial) {
  if (serial.size() > kMaxSerialBytes) {
    bad(fmt::format("parameter 'serial' is {} bytes; virtio-blk serials hold at most {}",
                    serial.size(), kMaxSerialBytes));
  }
  for (char c : serial) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e) {
      bad("parameter 'serial' may hold only printable ASCII without spaces");
    }
  }
}

void parse_set_drive(const Params& p, uint32_t drive_slots, SetDriveParams& out) {
  p.allow_only({"slot", "path", "read_only", "serial"});
  uint64_t slot = p.uint("slot", std::nullopt, UINT64_MAX);
  if (slot >= drive_slots) {
    bad(drive_slots == 0
            ? fmt::format("drive slot {} does not exist: this VM has no drive slots", slot)
            : fmt::format("drive slot {} does not exist: this VM has slots 0 to {}", slot,
                          drive_slots - 1),
        ErrorCode::not_found);
  }
  out.slot = static_cast<uint32_t>(slot);
  out.path = p.string("path");
  out.read_only = p.boolean("read_only", true);
  out.serial = p.string("serial").value_or("");
  if (out.path) {
    check_path(*out.path);
    check_serial(out.serial);
  } else if (!out.serial.empty()) {
    bad("an eject (no 'path') takes no 'serial'");
  }
}

}  // namespace

std::string_view error_code_name(ErrorCode code) {
  return kErrorCodeNames.at(static_cast<size_t>(code));
}

std::optional<ErrorCode> parse_error_code(std::string_view name) {
  for (size_t i = 0; i < kErrorCodeNames.size(); ++i) {
    if (name == kErrorCodeNames[i]) return static_cast<ErrorCode>(i);
  }
  return std::nullopt;
}

const char* vm_state_name(VmState state) {
  return kStateNames.at(static_cast<size_t>(state));
}

std::optional<VmState> parse_vm_state(std::string_view name) {
  for (size_t i = 0; i < kStateNames.size(); ++i) {
    if (name == kStateNames[i]) return static_cast<VmState>(i);
  }
  return std::nullopt;
}

const char* method_name(Method method) {
  return kMethodNames.at(static_cast<size_t>(method));
}

std::variant<Request, RequestError> parse_request(std::string_view line, uint32_t drive_slots) {
  Json doc;
  try {
    doc = Json::parse(line.begin(), line.end());
  } catch (const Json::parse_error& e) {
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix; keep the position.
    std::string_view what = e.what();
    if (auto pos = what.find("] "); pos != std::string_view::npos) what.remove_prefix(pos + 2);
    return RequestError{std::nullopt, ErrorCode::invalid_argument,
                        fmt::format("request is not valid JSON: {}", what)};
  } catch (const std::exception& e) {
    return RequestError{std::nullopt, ErrorCode::invalid_argument,
                        fmt::format("request could not be parsed: {}", e.what())};
  }

  std::optional<uint64_t> id;
  try {
    if (!doc.is_object()) bad("a request must be a JSON object");
    auto id_it = doc.find("id");
    if (id_it == doc.end()) bad("request has no 'id'");
    if (!id_it->is_number_unsigned()) bad("request 'id' must be an unsigned integer");
    id = id_it->get<uint64_t>();
    for (const auto& [key, value] : doc.items()) {
      if (key != "id" && key != "method" && key != "params") {
        bad(fmt::format("unknown request field '{}' (a request has id, method, params)", key));
      }
    }
    auto method_it = doc.find("method");
    if (method_it == doc.end()) bad("request has no 'method'");
    if (!method_it->is_string()) bad("request 'method' must be a string");
    const auto& name = method_it->get_ref<const std::string&>();
    auto known = std::find(kMethodNames.begin(), kMethodNames.end(), name);
    if (known == kMethodNames.end()) {
      bad(fmt::format("unknown method '{}' (methods: {})", name, fmt::join(kMethodNames, ", ")),
          ErrorCode::not_found);
    }

    static const Json kNoParams = Json::object();
    const Json* params = &kNoParams;
    if (auto it = doc.find("params"); it != doc.end() && !it->is_null()) {
      if (!it->is_object()) bad("request 'params' must be a JSON object");
      params = &*it;
    }

    Request req;
    req.id = *id;
    req.method = static_cast<Method>(known - kMethodNames.begin());
    Params p(*params, kMethodNames[static_cast<size_t>(req.method)]);
    switch (req.method) {
      case Method::status:
      case Method::boot_time:
      case Method::pause:
      case Method::resume:
        p.allow_only({});
        break;
      case Method::stop:
        parse_stop(p, req.stop);
        break;
      case Method::set_drive:
        parse_set_drive(p, drive_slots, req.drive);
        break;
    }
    return req;
  } catch (const BadRequest& e) {
    return RequestError{id, e.code, e.message};
  } catch (const std::exception& e) {
    return RequestError{id, ErrorCode::invalid_argument,
                        fmt::format("request could not be read: {}", e.what())};
  }
}

std::string encode_request(uint64_t id, std::string_view method, const Json& params) {
  return encode_line(Json{{"id", id}, {"method", method}, {"params", params}});
}

std::string encode_result(uint64_t id, const Json& result) {
  return encode_line(Json{{"id", id}, {"result", result}});
}

std::string encode_error(std::optional<uint64_t> id, ErrorCode code, std::string_view message) {
  Json j;
  j["id"] = id ? Json(*id) : Json(nullptr);
  j["error"] = Json{{"code", error_code_name(code)}, {"message", message}};
  return encode_line(j);
}

namespace {
/// Durations go out as unsigned JSON numbers (a clock step cannot make them negative on the wire).
uint64_t non_negative(int64_t v) {
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}
}  // namespace

Json status_to_json(const VmStatus& s) {
  Json drives = Json::array();
  for (const auto& d : s.drives) {
    drives.push_back(
        {{"slot", d.slot}, {"path", d.path}, {"read_only", d.read_only}, {"serial", d.serial}});
  }
  return Json{
      {"state", vm_state_name(s.state)},
      {"vcpus", s.vcpus},
      {"memory_mib", s.memory_mib},
      {"uptime_ms", non_negative(s.uptime.count())},
      {"boot_time_us", s.boot_time ? Json(non_negative(s.boot_time->count())) : Json(nullptr)},
      {"drives", std::move(drives)}};
}

namespace {
const Json& field(const Json& obj, const char* key, const char* what) {
  if (!obj.is_object()) throw std::invalid_argument(fmt::format("{} is not a JSON object", what));
  auto it = obj.find(key);
  if (it == obj.end()) throw std::invalid_argument(fmt::format("{} has no '{}'", what, key));
  return *it;
}
template <typename T>
T field_as(const Json& obj, const char* key, const char* what) {
  const Json& v = field(obj, key, what);
  bool ok = false;
  if constexpr (std::is_same_v<T, bool>) {
    ok = v.is_boolean();
  } else if constexpr (std::is_same_v<T, std::string>) {
    ok = v.is_string();
  } else {
    ok = v.is_number_unsigned() && v.get<uint64_t>() <= std::numeric_limits<T>::max();
  }
  if (!ok) throw std::invalid_argument(fmt::format("{} has an ill-typed '{}'", what, key));
  return v.get<T>();
}
}  // namespace

VmStatus status_from_json(const Json& j) {
  constexpr const char* kWhat = "status result";
  VmStatus s;
  auto state = parse_vm_state(field_as<std::string>(j, "state", kWhat));
  if (!state) throw std::invalid_argument("status result has an unknown 'state'");
  s.state = *state;
  s.vcpus = field_as<uint32_t>(j, "vcpus", kWhat);
  s.memory_mib = field_as<uint64_t>(j, "memory_mib", kWhat);
  s.uptime = std::chrono::milliseconds(field_as<int64_t>(j, "uptime_ms", kWhat));
  if (!field(j, "boot_time_us", kWhat).is_null()) {
    s.boot_time = std::chrono::microseconds(field_as<int64_t>(j, "boot_time_us", kWhat));
  }
  const Json& drives = field(j, "drives", kWhat);
  if (!drives.is_array()) throw std::invalid_argument("status result 'drives' is not an array");
  for (const Json& d : drives) {
    constexpr const char* kDrive = "status result drive";
    s.drives.push_back(DriveSlotInfo{
        field_as<uint32_t>(d, "slot", kDrive), field_as<std::string>(d, "path", kDrive),
        field_as<bool>(d, "read_only", kDrive), field_as<std::string>(d, "serial", kDrive)});
  }
  return s;
}

}  // namespace frakti::vmm::control
