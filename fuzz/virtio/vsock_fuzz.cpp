// libFuzzer target: arbitrary bytes as guest tx packets into the vsock packet parser and muxer.
//
// Input: a sequence of records [flags u8][len u16 le][len bytes]. Each record is one guest
// packet. flags bit 0 patches the header's CIDs and type to valid values (so the fuzzer
// reaches the connection state machine instead of bouncing off the address checks), bit 1
// points dst_port at a host port that has a listener, bits 2-4 choose the rx buffer size used
// when draining packets for the guest. After every packet the loop runs and all packets for the
// guest are drained, as the device would. Invariants checked: every packet for the guest is
// well-formed (addresses, type, len == payload, payload within the buffer).

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/log.hpp"
#include "vmm/virtio/vsock/handshake.hpp"
#include "vmm/virtio/vsock/muxer.hpp"
#include "vmm/virtio/vsock/packet.hpp"

namespace vs = frakti::vmm::virtio::vsock;

namespace {

constexpr uint64_t kGuestCid = 3;
constexpr uint32_t kListeningPort = 1024;

struct Env {
  Env() {
    frakti::common::log::set_level(frakti::common::log::Level::off);
    char tmpl[] = "/tmp/frakti-vsock-fuzz-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    dir = tmpl;
    path = dir + "/v.sock";
    std::string lpath = path + "_" + std::to_string(kListeningPort);
    listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, lpath.c_str(), lpath.size() + 1);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();
    if (::listen(listener, 512) != 0) std::abort();
  }
  ~Env() {
    ::close(listener);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string dir, path;
  int listener = -1;
};

Env& env() {
  static Env e;
  return e;
}

void drain(vs::Muxer& mux, size_t room) {
  for (int i = 0; i < 10000; ++i) {
    auto p = mux.next_packet_for_guest(room);
    if (!p) return;
    if (p->hdr.src_cid != vs::kHostCid || p->hdr.dst_cid != kGuestCid ||
        p->hdr.type != vs::kTypeStream || p->hdr.len != p->payload.size() ||
        p->payload.size() > room) {
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Env& e = env();
  // The handshake scanner sees the raw input as a host's first bytes.
  vs::scan_handshake(std::string_view(reinterpret_cast<const char*>(data), size));

  boost::asio::io_context io;
  std::vector<int> accepted;
  {
    vs::MuxerLimits limits;
    limits.max_connections = 16;
    limits.max_pending_rsts = 16;
    vs::Muxer mux(io, kGuestCid, e.path, limits);  // not started: guest side only
    size_t at = 0;
    std::vector<uint8_t> pkt;
    while (at + 3 <= size) {
      uint8_t flags = data[at];
      size_t len = data[at + 1] | (size_t{data[at + 2]} << 8);
      at += 3;
      len = std::min(len, size - at);
      pkt.assign(data + at, data + at + len);
      at += len;
      if ((flags & 1) && pkt.size() >= vs::kHeaderSize) {
        vs::Header h = vs::decode_header(
            std::span<const uint8_t, vs::kHeaderSize>(pkt.data(), vs::kHeaderSize));
        h.src_cid = kGuestCid;
        h.dst_cid = vs::kHostCid;
        h.type = vs::kTypeStream;
        h.op = static_cast<uint16_t>(h.op % 8);
        if (flags & 2) h.dst_port = kListeningPort;
        if (h.op != static_cast<uint16_t>(vs::Op::rw))
          h.len = 0;
        else
          h.len = std::min<uint32_t>(h.len, static_cast<uint32_t>(pkt.size() - vs::kHeaderSize));
        vs::encode_header(h, std::span<uint8_t, vs::kHeaderSize>(pkt.data(), vs::kHeaderSize));
      }
      mux.on_guest_packet(pkt);
      io.poll();
      static const size_t kRooms[] = {1, 16, 100, 4096, 65536, 0, 7, 1 << 20};
      drain(mux, kRooms[(flags >> 2) & 7] ? kRooms[(flags >> 2) & 7] : 1);
      // Host side: accept what the muxer connected and talk back once.
      for (;;) {
        int fd = ::accept4(e.listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) break;
        accepted.push_back(fd);
        [[maybe_unused]] ssize_t n = ::send(fd, "host says hi", 12, MSG_NOSIGNAL);
      }
      if (flags & 0x20 && !accepted.empty()) {
        ::close(accepted.back());  // the host hangs up
        accepted.pop_back();
      }
      io.poll();
      drain(mux, 4096);
    }
  }
  io.poll();
  for (int fd : accepted) ::close(fd);
  for (;;) {  // connections the muxer made but nobody accepted yet
    int fd = ::accept4(e.listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) break;
    ::close(fd);
  }
  return 0;
}
