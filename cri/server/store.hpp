#pragma once
// RecordStore: pod and container records on disk (proto/state/records.proto), one JSON file
// each, written atomically (temp file, fsync, rename, fsync of the directory) so a killed
// daemon always finds whole records.
//
//   <root>/sandboxes/<id>/sandbox.json
//   <root>/containers/<id>/container.json

#include <filesystem>
#include <vector>

#include "proto/state/records.pb.h"

namespace frakti::cri {

namespace st = ::frakti::state::v1;

class RecordStore {
 public:
  explicit RecordStore(std::filesystem::path root);

  void save(const st::SandboxRecord& rec) const;
  void save(const st::ContainerRecord& rec) const;
  void remove_sandbox(const std::string& id) const;
  void remove_container(const std::string& id) const;
  /// Every record that parses; broken ones are logged and moved aside (<file>.broken).
  std::vector<st::SandboxRecord> load_sandboxes() const;
  std::vector<st::ContainerRecord> load_containers() const;

  std::filesystem::path sandbox_dir(const std::string& id) const { return root_ / "sandboxes" / id; }
  std::filesystem::path container_dir(const std::string& id) const { return root_ / "containers" / id; }

 private:
  std::filesystem::path root_;
};

}  // namespace frakti::cri
