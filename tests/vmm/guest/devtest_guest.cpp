// frakti-devtest: /init of the device-test initrd. It runs inside a frakti-vmm guest and
// exercises every device for real; the host side (devices_kvm_test.cpp) drives the other end
// and reads the verdicts from the console.
//
// The kernel command line selects the checks: devtest.checks=cpus,blk,blk-ro,vsock-out,net,
// media,vsock-in (run in that order), with parameters:
//   devtest.cpus=N             expected online CPUs
//   devtest.vsock_port=P       host port the vsock-out echo server listens on (guest → host)
//   devtest.listen_port=P      guest port for vsock-in (host → guest echo)
//   devtest.ip=A.B.C.D devtest.peer=A.B.C.D   guest and host addresses for net (/24)
//   devtest.host_pings=N       echo requests from the host that net waits to answer (default 0)
//   devtest.bytes=N            bytes to echo over vsock (default 1 MiB)
//   devtest.linger=1           after "done", stay up (the host stops the VM) instead of
//                              powering off
// Each check prints "devtest: <check> PASS <detail>" or "devtest: <check> FAIL <why>".
// Synchronisation points the host waits for: "devtest: net-ready", "devtest: media-waiting",
// "devtest: vsock-listening". At the end "devtest: done", then the guest powers off.

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <linux/vm_sockets.h>
#include <net/if.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/guest_abi.hpp"

namespace {

std::map<std::string, std::string> g_args;

void say(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::string line = std::string("devtest: ") + buf + "\n";
  (void)!write(1, line.data(), line.size());
}

std::string arg(const std::string& k, const std::string& def = "") {
  auto it = g_args.find(k);
  return it == g_args.end() ? def : it->second;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// FNV-1a over a buffer: both sides compute it over the same deterministic byte stream.
uint64_t fnv(const uint8_t* p, size_t n, uint64_t h = 1469598103934665603ull) {
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
uint8_t pattern_byte(size_t i) { return static_cast<uint8_t>((i * 131 + (i >> 9)) & 0xff); }

// The /dev/vdX whose virtio serial (from GET_ID) is `serial`, or "".
std::string disk_by_serial(const std::string& serial) {
  DIR* d = opendir("/sys/block");
  if (!d) return "";
  std::string found;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("vd", 0) != 0) continue;
    if (read_file("/sys/block/" + name + "/serial") == serial) found = "/dev/" + name;
  }
  closedir(d);
  return found;
}

bool write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void check_cpus() {
  // /sys/devices/system/cpu/online looks like "0-3".
  std::string online = read_file("/sys/devices/system/cpu/online");
  int n = 1;
  if (auto dash = online.find('-'); dash != std::string::npos)
    n = std::stoi(online.substr(dash + 1)) + 1;
  int want = std::stoi(arg("devtest.cpus", "1"));
  if (n == want) say("cpus PASS online=%s", online.c_str());
  else say("cpus FAIL online=%s want %d", online.c_str(), want);
}

void check_blk() {
  std::string dev = disk_by_serial("devtest-rw");
  if (dev.empty()) return say("blk FAIL no disk with serial devtest-rw");
  int fd = open(dev.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  if (fd < 0) return say("blk FAIL open %s: %s", dev.c_str(), strerror(errno));
  // The host filled sector 0..7 with "host-data"; the guest writes sectors 8..15.
  alignas(4096) static uint8_t buf[4096];
  if (pread(fd, buf, 4096, 0) != 4096 || memcmp(buf, "host-data", 9) != 0) {
    close(fd);
    return say("blk FAIL first block does not hold the host's data");
  }
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = pattern_byte(i);
  if (pwrite(fd, buf, 4096, 4096) != 4096 || fsync(fd) != 0) {
    close(fd);
    return say("blk FAIL write/flush: %s", strerror(errno));
  }
  memset(buf, 0, sizeof buf);
  if (pread(fd, buf, 4096, 4096) != 4096) {
    close(fd);
    return say("blk FAIL read back: %s", strerror(errno));
  }
  close(fd);
  say("blk PASS dev=%s sum=%016llx", dev.c_str(), (unsigned long long)fnv(buf, sizeof buf));
}

void check_blk_ro() {
  std::string dev = disk_by_serial("devtest-ro");
  if (dev.empty()) return say("blk-ro FAIL no disk with serial devtest-ro");
  std::string ro = read_file("/sys/block/" + dev.substr(5) + "/ro");
  int fd = open(dev.c_str(), O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    alignas(512) static uint8_t buf[512] = {1};
    ssize_t w = pwrite(fd, buf, 512, 0);
    int sync_rc = w == 512 ? fsync(fd) : -1;
    close(fd);
    if (w == 512 && sync_rc == 0) return say("blk-ro FAIL write to a read-only disk succeeded");
  }
  say("blk-ro PASS dev=%s ro=%s", dev.c_str(), ro.c_str());
}

int vsock_socket() { return socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0); }

// Streams `total` pattern bytes to fd while reading the echo; returns the echo's checksum.
bool echo_exchange(int fd, size_t total, uint64_t* sum) {
  std::vector<uint8_t> out(total), in(total);
  for (size_t i = 0; i < total; i++) out[i] = pattern_byte(i);
  std::thread writer([&] {
    write_all(fd, out.data(), out.size());
    shutdown(fd, SHUT_WR);
  });
  size_t got = 0;
  while (got < total) {
    ssize_t r = read(fd, in.data() + got, total - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  writer.join();
  *sum = fnv(in.data(), got);
  return got == total && in == out;
}

void check_vsock_out() {
  unsigned port = std::stoul(arg("devtest.vsock_port", "5000"));
  size_t bytes = std::stoul(arg("devtest.bytes", "1048576"));
  int fd = vsock_socket();
  sockaddr_vm a{};
  a.svm_family = AF_VSOCK;
  a.svm_cid = VMADDR_CID_HOST;
  a.svm_port = port;
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    say("vsock-out FAIL connect host:%u: %s", port, strerror(errno));
    if (fd >= 0) close(fd);
    return;
  }
  uint64_t sum = 0;
  bool ok = echo_exchange(fd, bytes, &sum);
  close(fd);
  if (ok) say("vsock-out PASS bytes=%zu sum=%016llx", bytes, (unsigned long long)sum);
  else say("vsock-out FAIL echo differs (sum=%016llx)", (unsigned long long)sum);
}

void check_vsock_in() {
  unsigned port = std::stoul(arg("devtest.listen_port", "6000"));
  int ls = vsock_socket();
  sockaddr_vm a{};
  a.svm_family = AF_VSOCK;
  a.svm_cid = VMADDR_CID_ANY;
  a.svm_port = port;
  if (ls < 0 || bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(ls, 4) != 0)
    return say("vsock-in FAIL listen on %u: %s", port, strerror(errno));
  say("vsock-listening %u", port);
  pollfd p{ls, POLLIN, 0};
  if (poll(&p, 1, 120000) != 1) return say("vsock-in FAIL no connection within 120 s");
  int fd = accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
  close(ls);
  if (fd < 0) return say("vsock-in FAIL accept: %s", strerror(errno));
  // Echo everything back until the host closes its side.
  std::vector<uint8_t> buf(65536);
  size_t total = 0;
  for (;;) {
    ssize_t r = read(fd, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (!write_all(fd, buf.data(), static_cast<size_t>(r))) break;
    total += static_cast<size_t>(r);
  }
  close(fd);
  say("vsock-in PASS echoed=%zu", total);
}

bool set_if(const char* name, const char* ip) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq r{};
  strncpy(r.ifr_name, name, IFNAMSIZ - 1);
  auto* sin = reinterpret_cast<sockaddr_in*>(&r.ifr_addr);
  sin->sin_family = AF_INET;
  bool ok = true;
  if (ip) {
    inet_pton(AF_INET, ip, &sin->sin_addr);
    ok = ioctl(s, SIOCSIFADDR, &r) == 0;
    inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
    ok = ok && ioctl(s, SIOCSIFNETMASK, &r) == 0;
  }
  ok = ok && ioctl(s, SIOCGIFFLAGS, &r) == 0;
  r.ifr_flags |= IFF_UP;
  ok = ok && ioctl(s, SIOCSIFFLAGS, &r) == 0;
  close(s);
  return ok;
}

uint16_t inet_checksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += (p[i] << 8) | p[i + 1];
  if (n & 1) sum += p[n - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(static_cast<uint16_t>(~sum));
}

// A counter from the "Icmp:" lines of /proc/net/snmp (a header line, then a value line), or -1.
long icmp_counter(const std::string& name) {
  std::istringstream in(read_file("/proc/net/snmp"));
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Icmp: ", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    std::vector<std::string> row;
    for (std::string f; fields >> f;) row.push_back(f);
    if (names.empty()) {
      names = row;
      continue;
    }
    for (size_t i = 0; i < names.size() && i < row.size(); i++)
      if (names[i] == name) return std::stol(row[i]);
    return -1;
  }
  return -1;
}

// The host pings us once it sees net-ready. Stay until we have answered its echo requests:
// going on to the next checks (and powering off) first would fail its ping for us.
bool wait_for_host_pings(long want, long* answered) {
  for (int i = 0; i < 600; i++) {  // up to 60 s
    *answered = icmp_counter("OutEchoReps");
    if (*answered >= want) return true;
    usleep(100000);
  }
  return false;
}

void check_net() {
  std::string ip = arg("devtest.ip", "10.0.2.15"), peer = arg("devtest.peer", "10.0.2.1");
  set_if("lo", nullptr);
  if (!set_if("eth0", ip.c_str())) return say("net FAIL configure eth0: %s", strerror(errno));
  say("net-ready %s", ip.c_str());
  int s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (s < 0) return say("net FAIL raw socket: %s", strerror(errno));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  inet_pton(AF_INET, peer.c_str(), &to.sin_addr);
  // Retry for a while: the host side's link may come up a moment after ours.
  for (int attempt = 0; attempt < 40; attempt++) {
    uint8_t pkt[64] = {};
    auto* h = reinterpret_cast<icmphdr*>(pkt);
    h->type = ICMP_ECHO;
    h->un.echo.id = htons(0x1234);
    h->un.echo.sequence = htons(static_cast<uint16_t>(attempt));
    h->checksum = inet_checksum(pkt, sizeof pkt);
    sendto(s, pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    pollfd p{s, POLLIN, 0};
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    while (std::chrono::steady_clock::now() < deadline && poll(&p, 1, 100) >= 0) {
      if (!(p.revents & POLLIN)) continue;
      uint8_t in[1500];
      ssize_t r = recv(s, in, sizeof in, 0);
      if (r < 28) continue;
      size_t ihl = (in[0] & 0xf) * 4;
      auto* rh = reinterpret_cast<icmphdr*>(in + ihl);
      if (rh->type == ICMP_ECHOREPLY && rh->un.echo.id == htons(0x1234)) {
        close(s);
        long want = std::stol(arg("devtest.host_pings", "0")), answered = 0;
        if (!wait_for_host_pings(want, &answered))
          return say("net FAIL answered %ld of %ld echo requests from the host within 60 s",
                     answered, want);
        return say("net PASS ping %s after %d tries, answered %ld host pings", peer.c_str(),
                   attempt + 1, answered);
      }
    }
  }
  close(s);
  say("net FAIL no echo reply from %s", peer.c_str());
}

void check_media() {
  say("media-waiting devtest-media");
  for (int i = 0; i < 600; i++) {  // up to 60 s
    std::string dev = disk_by_serial("devtest-media");
    if (!dev.empty()) {
      std::string size = read_file("/sys/block/" + dev.substr(5) + "/size");
      if (!size.empty() && size != "0") {
        int fd = open(dev.c_str(), O_RDONLY | O_CLOEXEC);
        char buf[16] = {};
        bool ok = fd >= 0 && pread(fd, buf, 11, 0) == 11 && memcmp(buf, "media-bytes", 11) == 0;
        if (fd >= 0) close(fd);
        if (ok) return say("media PASS dev=%s sectors=%s", dev.c_str(), size.c_str());
        return say("media FAIL %s has %s sectors but not the host's data", dev.c_str(), size.c_str());
      }
    }
    usleep(100000);
  }
  say("media FAIL no disk with serial devtest-media and a size after 60 s");
}

void power_off() {
  sync();
  // write() to the console returns once the bytes are in the serial driver's buffer; the
  // UART sends them afterwards. Powering off before it has would lose the last verdicts.
  tcdrain(1);
  if (ioperm(frakti::guest_abi::kPowerOffPort, 1, 1) == 0)
    outb(frakti::guest_abi::kPowerOffMagic, frakti::guest_abi::kPowerOffPort);
  reboot(LINUX_REBOOT_CMD_POWER_OFF);
}

}  // namespace

int main() {
  mount("proc", "/proc", "proc", 0, nullptr);
  mount("sysfs", "/sys", "sysfs", 0, nullptr);
  mount("devtmpfs", "/dev", "devtmpfs", 0, nullptr);
  int con = open("/dev/console", O_RDWR | O_CLOEXEC);
  if (con >= 0) {
    dup2(con, 1);
    dup2(con, 2);
  }
  std::istringstream cmdline(read_file("/proc/cmdline"));
  for (std::string tok; cmdline >> tok;) {
    auto eq = tok.find('=');
    if (eq != std::string::npos) g_args[tok.substr(0, eq)] = tok.substr(eq + 1);
  }
  // Tell the VMM we are up (its control socket reports the boot time from this write).
  if (ioperm(frakti::guest_abi::kBootTimerPort, 1, 1) == 0)
    outb(frakti::guest_abi::kBootTimerMagic, frakti::guest_abi::kBootTimerPort);
  else
    say("boot-timer unavailable: ioperm: %s", strerror(errno));
  std::string checks = arg("devtest.checks", "cpus") + ",";
  const std::vector<std::pair<std::string, void (*)()>> order = {
      {"cpus", check_cpus}, {"blk", check_blk},     {"blk-ro", check_blk_ro},
      {"vsock-out", check_vsock_out}, {"net", check_net}, {"media", check_media},
      {"vsock-in", check_vsock_in}};
  for (auto& [name, fn] : order)
    if (checks.find(name + ",") != std::string::npos) fn();
  say("done");
  if (arg("devtest.linger") == "1") {
    // A guest that will not stop: Ctrl-Alt-Del (the host's graceful stop) becomes a SIGINT
    // that PID 1 without a handler ignores, so the host has to hard-stop it.
    reboot(LINUX_REBOOT_CMD_CAD_OFF);
    tcdrain(1);
    for (;;) pause();
  }
  power_off();
  return 0;
}
