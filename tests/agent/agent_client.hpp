#pragma once
// Helpers shared by the agent's end-to-end tests: a blocking protocol client on its own
// io_context, a busybox rootfs, and the requests a CRI runtime would send.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/protocol/session.hpp"
#include "common/fd.hpp"

namespace frakti::agent::test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using common::Fd;

/// A rootfs from Debian's busybox-static: /bin/<applet> links, /etc/passwd with root and
/// user (1000), /etc/group with user in users (100), and an image symlink /escape pointing
/// outside (for the mount path-safety test).
inline void make_busybox_rootfs(const std::string& root) {
  for (const char* d : {"bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/user", "data"})
    fs::create_directories(root + "/" + d);
  fs::permissions(root + "/tmp", fs::perms::all | fs::perms::sticky_bit);
  fs::copy_file("/bin/busybox", root + "/bin/busybox");
  // One relative link per applet (busybox --install -s would link to the host's own path).
  FILE* list = ::popen("/bin/busybox --list", "r");
  REQUIRE(list != nullptr);
  char name[256];
  while (std::fgets(name, sizeof name, list)) {
    std::string applet(name);
    while (!applet.empty() && applet.back() == '\n') applet.pop_back();
    if (applet.empty() || applet == "busybox") continue;
    fs::create_symlink("busybox", root + "/bin/" + applet);
  }
  REQUIRE(::pclose(list) == 0);
  std::ofstream(root + "/etc/passwd")
      << "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:A User:/home/user:/bin/sh\n";
  std::ofstream(root + "/etc/group") << "root:x:0:\nusers:x:100:user\nuser:x:1000:\n";
  REQUIRE(::chown((root + "/home/user").c_str(), 1000, 1000) == 0);
  // An image symlink that tries to point a mount outside the rootfs.
  fs::create_symlink("/../../../../../../../tmp", root + "/escape");
}

struct Stream {
  std::string data;
  bool eof = false;
};

// A host-side client on the io_context this test drives.
class Client {
 public:
  /// Runs the handshake on a connected stream socket (the agent's Unix socket in host test
  /// mode, or the VMM's hybrid vsock socket after "OK <port>").
  explicit Client(Fd fd) {
    REQUIRE(fd.valid());
    session_ = protocol::Session::create(protocol::adopt_socket(io_, std::move(fd)),
                                         protocol::Session::Role::client);
    session_->set_event_handler([this](const v1::Event& e) { events.push_back(e); });
    bool ready = false;
    session_->start_client(v1::Hello{}, [&](std::error_code ec, const v1::HelloReply& reply) {
      REQUIRE_FALSE(ec);
      hello = reply;
      ready = true;
    });
    REQUIRE(run_until([&] { return ready; }));
  }

  template <typename Pred>
  bool run_until(Pred pred, std::chrono::milliseconds limit = 30s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > end) return false;
      io_.restart();
      io_.run_one_for(5ms);
    }
    return true;
  }

  v1::Response call(const v1::Request& request) {
    std::optional<v1::Response> got;
    session_->call(request, 30s, [&](std::error_code ec, v1::Response r) {
      REQUIRE_FALSE(ec);
      got = std::move(r);
    });
    REQUIRE(run_until([&] { return got.has_value(); }, 40s));
    return *got;
  }
  // Calls and requires success.
  v1::Response ok(const v1::Request& request) {
    auto r = call(request);
    INFO(r.error().message());
    REQUIRE(r.kind_case() != v1::Response::kError);
    return r;
  }

  /// A stream for process output; read_now = false leaves it unread (no credit granted back)
  /// until start_reading().
  uint32_t output_stream(bool read_now = true) {
    uint32_t id = session_->new_stream_id();
    session_->open_receive_stream(id);
    if (read_now) read(id);
    return id;
  }
  void start_reading(uint32_t id) { read(id); }
  uint32_t input_stream() { return session_->new_stream_id(); }
  void send(uint32_t id, const std::string& data) {
    bool done = false;
    session_->async_write_stream(id, data, [&](std::error_code ec) {
      REQUIRE_FALSE(ec);
      done = true;
    });
    REQUIRE(run_until([&] { return done; }));
  }
  void finish(uint32_t id) { session_->finish_stream(id); }
  const Stream& stream(uint32_t id) { return streams_[id]; }
  bool wait_eof(uint32_t id) {
    return run_until([&] { return streams_[id].eof; });
  }
  bool wait_output(uint32_t id, const std::string& text) {
    return run_until([&] { return streams_[id].data.find(text) != std::string::npos; });
  }

  v1::HelloReply hello;
  std::vector<v1::Event> events;

 private:
  void read(uint32_t id) {
    session_->async_read_stream(id, [this, id](std::error_code ec, std::string data) {
      if (ec) {
        streams_[id].eof = true;
        return;
      }
      streams_[id].data += data;
      read(id);
    });
  }
  boost::asio::io_context io_;
  std::shared_ptr<protocol::Session> session_;
  std::map<uint32_t, Stream> streams_;
};

/// Connects to a Unix socket, retrying while it does not exist yet.
inline Fd connect_unix(const std::string& path, std::chrono::milliseconds limit = 5s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path.c_str());
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    std::this_thread::sleep_for(10ms);
  }
  return Fd();
}

inline const char* kDefaultCaps[] = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE"};

inline void add_mount(v1::CreateContainerRequest& r, const std::string& dest,
                      const std::string& type, const std::string& source,
                      std::initializer_list<const char*> options) {
  auto* m = r.add_mounts();
  m->set_destination(dest);
  m->set_type(type);
  m->set_path(source);
  for (const char* o : options) m->add_options(o);
}

// What a CRI runtime sends for an ordinary container (containerd's defaults).
inline v1::Request create_request(const std::string& id, std::vector<std::string> args) {
  v1::Request req;
  auto& r = *req.mutable_create_container();
  r.set_container_id(id);
  r.mutable_rootfs()->set_drive_serial("img1");
  for (auto& a : args) r.mutable_process()->add_args(a);
  r.mutable_process()->add_env("PATH=/bin");
  auto* caps = r.mutable_process()->mutable_capabilities();
  for (const char* c : kDefaultCaps) {
    caps->add_bounding(c);
    caps->add_effective(c);
    caps->add_permitted(c);
  }
  for (auto t : {v1::Namespace::TYPE_PID, v1::Namespace::TYPE_IPC, v1::Namespace::TYPE_UTS,
                 v1::Namespace::TYPE_MOUNT}) {
    r.add_namespaces()->set_type(t);
  }
  add_mount(r, "/proc", "proc", "proc", {"nosuid", "noexec", "nodev"});
  add_mount(r, "/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"});
  add_mount(r, "/dev/pts", "devpts", "devpts",
            {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"});
  add_mount(r, "/dev/shm", "tmpfs", "shm",
            {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"});
  add_mount(r, "/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"});
  add_mount(r, "/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"});
  add_mount(r, "/tmp", "tmpfs", "tmpfs", {"nosuid", "nodev", "mode=1777"});
  r.add_masked_paths("/proc/kcore");
  r.add_masked_paths("/proc/keys");
  r.add_readonly_paths("/proc/sys");
  return req;
}

inline v1::Request start_request(const std::string& id) {
  v1::Request r;
  r.mutable_start_container()->set_container_id(id);
  return r;
}

inline v1::Request wait_request(const std::string& id, const std::string& exec_id = "") {
  v1::Request r;
  r.mutable_wait_process()->set_container_id(id);
  r.mutable_wait_process()->set_exec_id(exec_id);
  return r;
}

inline v1::Request remove_request(const std::string& id) {
  v1::Request r;
  r.mutable_remove_container()->set_container_id(id);
  return r;
}

struct Result {
  v1::ProcessExited status;
  std::string out, err;
};

// create (with stdout/stderr streams) -> start -> wait -> output -> remove.
inline Result run_container(Client& c, v1::Request create) {
  auto* p = create.mutable_create_container()->mutable_process();
  uint32_t out = c.output_stream();
  uint32_t err = p->terminal() ? 0 : c.output_stream();
  p->set_stdout_stream(out);
  p->set_stderr_stream(err);
  std::string id = create.create_container().container_id();
  c.ok(create);
  c.ok(start_request(id));
  Result r;
  r.status = c.ok(wait_request(id)).wait_process().status();
  REQUIRE(c.wait_eof(out));
  if (err) REQUIRE(c.wait_eof(err));
  r.out = c.stream(out).data;
  r.err = err ? c.stream(err).data : "";
  c.ok(remove_request(id));
  return r;
}

inline Result run_sh(Client& c, const std::string& id, const std::string& script) {
  return run_container(c, create_request(id, {"sh", "-c", script}));
}

}  // namespace frakti::agent::test
