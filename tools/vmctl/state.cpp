#include "tools/vmctl/state.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <sstream>
#include <fstream>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "tools/vmctl/context.hpp"

namespace frakti::vmctl {

namespace fs = std::filesystem;
using nlohmann::json;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}


namespace {

json proc_json(const ProcRef& p) { return {{"pid", p.pid}, {"start", p.start}}; }
ProcRef proc_from(const json& j) { return {j.value("pid", 0), j.value("start", uint64_t{0})}; }

json to_json(const ContainerRecord& r) {
  return {{"id", r.id},
          {"name", r.name},
          {"image", r.image},
          {"image_id", r.image_id},
          {"command", r.command},
          {"status", r.status},
          {"created_ns", r.created_ns},
          {"started_ns", r.started_ns},
          {"finished_ns", r.finished_ns},
          {"exit_code", r.exit_code},
          {"reason", r.reason},
          {"auto_remove", r.auto_remove},
          {"detached", r.detached},
          {"terminal", r.terminal},
          {"supervisor", proc_json(r.supervisor)},
          {"vmm", proc_json(r.vmm)},
          {"env", r.env},
          {"cwd", r.cwd},
          {"user", r.user},
          {"caps", r.caps},
          {"stop_signal", r.stop_signal}};
}

ContainerRecord from_json(const json& j) {
  ContainerRecord r;
  r.id = j.at("id").get<std::string>();
  r.name = j.value("name", "");
  r.image = j.value("image", "");
  r.image_id = j.value("image_id", "");
  r.command = j.value("command", std::vector<std::string>{});
  r.status = j.value("status", "created");
  r.created_ns = j.value("created_ns", int64_t{0});
  r.started_ns = j.value("started_ns", int64_t{0});
  r.finished_ns = j.value("finished_ns", int64_t{0});
  r.exit_code = j.value("exit_code", -1);
  r.reason = j.value("reason", "");
  r.auto_remove = j.value("auto_remove", false);
  r.detached = j.value("detached", false);
  r.terminal = j.value("terminal", false);
  r.supervisor = proc_from(j.value("supervisor", json::object()));
  r.vmm = proc_from(j.value("vmm", json::object()));
  r.env = j.value("env", std::vector<std::string>{});
  r.cwd = j.value("cwd", "");
  r.user = j.value("user", "");
  r.caps = j.value("caps", std::vector<std::string>{});
  r.stop_signal = j.value("stop_signal", "");
  return r;
}

std::string random_id() {
  std::random_device rd;
  std::string id;
  for (int i = 0; i < 8; ++i) id += fmt::format("{:08x}", rd());
  return id;
}

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 64 || !std::isalnum(static_cast<unsigned char>(n[0]))) return false;
  return std::all_of(n.begin(), n.end(), [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '.' || c == '-'; });
}

// An exclusive flock on <state>/lock for the life of the object.
class Lock {
 public:
  explicit Lock(const fs::path& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (!fd_) common::throw_errno("cannot open the state lock " + path.string());
    common::check(common::retry_eintr([&] { return ::flock(fd_.get(), LOCK_EX); }), "cannot lock {}", path.string());
  }

 private:
  common::Fd fd_;
};

}  // namespace

StateDir::StateDir(fs::path root) : root_(std::move(root)), containers_(root_ / "containers") {
  fs::create_directories(containers_);
  // Sockets and logs live here: root only.
  ::chmod(root_.c_str(), 0700);
  ::chmod(containers_.c_str(), 0700);
}

ContainerRecord StateDir::create(ContainerRecord rec) {
  Lock lock(root_ / "lock");
  do {
    rec.id = random_id();
  } while (fs::exists(dir(rec.id)));
  if (rec.name.empty()) {
    std::string base = rec.image.substr(rec.image.find_last_of('/') + 1);
    base = base.substr(0, base.find_first_of(":@"));
    if (!valid_name(base)) base = "vm";
    rec.name = base + "-" + rec.id.substr(0, 6);
  }
  if (!valid_name(rec.name)) {
    throw CommandError("name " + rec.name, "not a valid container name", "use letters, digits, '_', '.' and '-', starting with a letter or digit");
  }
  for (auto& other : list()) {
    if (other.name == rec.name) {
      throw CommandError("name " + rec.name, fmt::format("already in use by container {}", other.short_id()),
                         fmt::format("remove it with 'vmctl rm {}' or choose another --name", rec.name));
    }
  }
  if (vsock(rec.id).string().size() > 96) {  // frakti-vmm's limit: it adds _<port> for guest → host
    throw CommandError("state directory " + root_.string(), "too long a path for the VM's sockets", "use a shorter --state");
  }
  fs::create_directory(dir(rec.id));
  rec.created_ns = now_ns();
  save(rec);
  return rec;
}

void StateDir::save(const ContainerRecord& rec) const {
  fs::path final = dir(rec.id) / "state.json";
  fs::path tmp = dir(rec.id) / fmt::format(".state.json.{}", ::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << to_json(rec).dump(2) << "\n";
    if (!out.flush()) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, final);
}

std::optional<ContainerRecord> StateDir::load(const std::string& id) const {
  std::ifstream in(dir(id) / "state.json");
  if (!in) return std::nullopt;
  try {
    return from_json(json::parse(in));
  } catch (const std::exception&) {
    return std::nullopt;  // half-created by a vmctl killed before its first save
  }
}

std::vector<ContainerRecord> StateDir::list() const {
  std::vector<ContainerRecord> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(containers_, ec)) {
    if (auto r = load(e.path().filename().string())) out.push_back(std::move(*r));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.created_ns > b.created_ns; });
  return out;
}

ContainerRecord StateDir::find(const std::string& key) const {
  std::vector<ContainerRecord> hits;
  for (auto& r : list()) {
    if (r.name == key || r.id == key) return r;
    if (key.size() >= 3 && r.id.rfind(key, 0) == 0) hits.push_back(r);
  }
  if (hits.size() == 1) return hits[0];
  if (hits.empty()) throw CommandError("container " + key, "no such container", "see 'vmctl ps -a'");
  throw CommandError("container " + key, fmt::format("{} containers have IDs starting so", hits.size()), "give more of the ID, or the name");
}

void StateDir::remove(const std::string& id) const {
  std::error_code ec;
  fs::remove_all(dir(id), ec);
  if (ec) throw std::system_error(ec, "cannot remove " + dir(id).string());
}

void StateDir::collect_leftovers() const {
  Lock lock(root_ / "lock");
  std::error_code ec;
  for (auto& e : fs::directory_iterator(containers_, ec)) {
    auto rec = load(e.path().filename().string());
    if (!rec) {
      // No record at all: a vmctl killed between mkdir and its first save (older than a minute).
      auto age = fs::file_time_type::clock::now() - fs::last_write_time(e.path(), ec);
      if (!ec && age > std::chrono::minutes(1)) fs::remove_all(e.path(), ec);
      continue;
    }
    if (rec->status == "exited" || rec->supervisor.alive()) continue;
    if (rec->vmm.alive()) ::kill(rec->vmm.pid, SIGKILL);
    if (rec->auto_remove) {
      fs::remove_all(e.path(), ec);
      continue;
    }
    rec->status = "exited";
    rec->finished_ns = now_ns();
    if (rec->reason.empty()) rec->reason = "Error: vmctl was killed; the VM was stopped";
    save(*rec);
    fs::remove(vsock(rec->id), ec);
  }
}

}  // namespace frakti::vmctl
