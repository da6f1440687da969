#pragma once
// Lookups the Runtime shares between pods and containers: IDs by full value or unique prefix
// (as crictl accepts them), and CRI label selectors.

#include <map>
#include <memory>
#include <string>

#include <google/protobuf/map.h>

#include "cri/server/errors.hpp"

namespace frakti::cri {

/// The entry whose ID is id or starts with it. INVALID_ARGUMENT for an empty or ambiguous
/// prefix, NOT_FOUND otherwise; what names the kind in messages ("pod sandbox", "container").
template <typename T>
std::shared_ptr<T> find_by_prefix(const std::map<std::string, std::shared_ptr<T>>& m, const std::string& id,
                                  const char* what) {
  if (id.empty()) fail(grpc::StatusCode::INVALID_ARGUMENT, "{} ID is empty", what);
  auto it = m.lower_bound(id);
  if (it != m.end() && it->first.rfind(id, 0) == 0) {
    auto next = std::next(it);
    if (it->first == id || next == m.end() || next->first.rfind(id, 0) != 0) return it->second;
    fail(grpc::StatusCode::INVALID_ARGUMENT, "{} ID prefix '{}' is ambiguous: give more of the ID", what, id);
  }
  fail(grpc::StatusCode::NOT_FOUND, "{} {} not found", what, id);
}

/// Every key of want is in have with the same value.
inline bool labels_match(const google::protobuf::Map<std::string, std::string>& have,
                         const google::protobuf::Map<std::string, std::string>& want) {
  for (auto& [k, v] : want) {
    auto it = have.find(k);
    if (it == have.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace frakti::cri
