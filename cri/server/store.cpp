#include "cri/server/store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/log.hpp"

namespace frakti::cri {

namespace fs = std::filesystem;
namespace pbu = google::protobuf::util;

namespace {

void write_atomic(const fs::path& file, const std::string& data) {
  fs::create_directories(file.parent_path());
  fs::path tmp = file.parent_path() / ("." + file.filename().string() + ".tmp");
  {
    common::Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) common::throw_errno("creating " + tmp.string());
    common::write_all(fd.get(), data.data(), data.size(), tmp.c_str());
    if (::fsync(fd.get()) != 0) common::throw_errno("syncing " + tmp.string());
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) common::throw_errno("renaming " + tmp.string());
  common::Fd dir(::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir) ::fsync(dir.get());
}

std::string to_json(const google::protobuf::Message& m) {
  std::string out;
  pbu::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  auto st = pbu::MessageToJsonString(m, &out, o);
  if (!st.ok()) throw std::runtime_error("encoding a record: " + st.ToString());
  return out;
}

template <typename Rec>
std::vector<Rec> load_all(const fs::path& dir, const char* file) {
  std::vector<Rec> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    fs::path p = e.path() / file;
    std::ifstream in(p);
    if (!in) continue;  // a directory whose record was never written (a create that died)
    std::stringstream text;
    text << in.rdbuf();
    Rec rec;
    pbu::JsonParseOptions o;
    o.ignore_unknown_fields = true;  // written by a newer frakti
    auto st = pbu::JsonStringToMessage(text.str(), &rec, o);
    if (!st.ok()) {
      common::log::error("store", "{} is not a valid record ({}); moved aside to {}.broken", p.string(), st.ToString(),
                         p.string());
      fs::rename(p, p.string() + ".broken", ec);
      continue;
    }
    out.push_back(std::move(rec));
  }
  return out;
}

}  // namespace

RecordStore::RecordStore(fs::path root) : root_(std::move(root)) {
  fs::create_directories(root_ / "sandboxes");
  fs::create_directories(root_ / "containers");
  fs::permissions(root_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
}

void RecordStore::save(const st::SandboxRecord& rec) const {
  write_atomic(sandbox_dir(rec.id()) / "sandbox.json", to_json(rec));
}

void RecordStore::save(const st::ContainerRecord& rec) const {
  write_atomic(container_dir(rec.id()) / "container.json", to_json(rec));
}

void RecordStore::remove_sandbox(const std::string& id) const { fs::remove_all(sandbox_dir(id)); }
void RecordStore::remove_container(const std::string& id) const { fs::remove_all(container_dir(id)); }

std::vector<st::SandboxRecord> RecordStore::load_sandboxes() const {
  return load_all<st::SandboxRecord>(root_ / "sandboxes", "sandbox.json");
}
std::vector<st::ContainerRecord> RecordStore::load_containers() const {
  return load_all<st::ContainerRecord>(root_ / "containers", "container.json");
}

}  // namespace frakti::cri
