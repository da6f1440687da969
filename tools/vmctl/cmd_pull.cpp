// vmctl pull: fetch an image from a registry, with a live display on a terminal and one line
// per event otherwise (logs, CI).

#include <map>
#include <mutex>

#include <fmt/format.h>

#include "image/reference.hpp"
#include "tools/vmctl/context.hpp"

namespace frakti::vmctl {

namespace {

using image::PullProgress;

// Keeps one status line at the bottom of the terminal; finished blobs scroll above it.
class ProgressDisplay {
 public:
  ProgressDisplay(FILE* out, bool tty) : out_(out), tty_(tty) {}

  void on(const PullProgress& p) {
    std::string id = std::string(p.digest.hex().substr(0, 12));
    switch (p.kind) {
      case PullProgress::Kind::resolved:
        line(fmt::format("resolved {}", p.text));
        break;
      case PullProgress::Kind::blob_start:
        blobs_[id] = {0, p.total};
        if (!tty_) line(fmt::format("{}: downloading ({})", id, human_size(p.total)));
        break;
      case PullProgress::Kind::blob_bytes:
        blobs_[id] = {p.current, p.total};
        break;
      case PullProgress::Kind::blob_done:
        blobs_.erase(id);
        line(fmt::format("{}: done ({})", id, human_size(p.total)));
        break;
      case PullProgress::Kind::blob_cached:
        line(fmt::format("{}: already present", id));
        break;
      case PullProgress::Kind::building:
        line(fmt::format("building {} filesystem image", p.text));
        break;
      case PullProgress::Kind::done:
        break;
    }
    status();
  }

  void clear() {
    if (tty_) fmt::print(out_, "\r\033[K");
    std::fflush(out_);
  }

 private:
  void line(const std::string& s) {
    if (tty_) fmt::print(out_, "\r\033[K");
    fmt::print(out_, "{}\n", s);
  }
  void status() {
    if (!tty_) {
      std::fflush(out_);
      return;
    }
    if (blobs_.empty()) return;
    uint64_t cur = 0, total = 0;
    for (auto& [id, b] : blobs_) {
      cur += b.first;
      total += b.second;
    }
    fmt::print(out_, "\r\033[Kdownloading {} blob{}: {} / {}", blobs_.size(), blobs_.size() == 1 ? "" : "s", human_size(cur),
               human_size(total));
    std::fflush(out_);
  }

  FILE* out_;
  bool tty_;
  std::map<std::string, std::pair<uint64_t, uint64_t>> blobs_;
};

}  // namespace

int cmd_pull(Context& ctx) {
  Args args(ctx.args, {"--platform", "--creds"}, {"--quiet", "-q"});
  if (args.positional().size() != 1) throw UsageError("expected exactly one image reference");
  const std::string& ref = args.positional()[0];
  ctx.action = "pull " + ref;
  image::PullOptions opts;
  if (auto p = args.value("--platform")) opts.platform = image::Platform::parse(*p);
  if (auto c = args.value("--creds")) {
    auto colon = c->find(':');
    if (colon == std::string::npos) throw UsageError("--creds wants USER:PASSWORD");
    image::Credentials cred;
    cred.username = c->substr(0, colon);
    cred.password = c->substr(colon + 1);
    opts.credentials = cred;
  }
  bool quiet = args.flag("--quiet") || args.flag("-q");
  ProgressDisplay display(ctx.out, ctx.out_is_tty);
  if (!quiet) opts.progress = [&](const PullProgress& p) { display.on(p); };
  image::PullResult r;
  try {
    r = ctx.images().pull(ref, opts);
  } catch (...) {
    display.clear();
    throw;
  }
  display.clear();
  if (quiet) {
    fmt::print(ctx.out, "{}\n", r.image.id.str());
  } else {
    fmt::print(ctx.out, "pulled {} as {} ({} blobs downloaded, {})\n", image::Reference::parse(ref).str(), r.image.id.str(),
               r.blobs_fetched, human_size(r.bytes_fetched));
  }
  return 0;
}

}  // namespace frakti::vmctl
