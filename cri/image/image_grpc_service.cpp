#include "cri/image/image_grpc_service.hpp"

#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "common/log.hpp"
#include "cri/image/status.hpp"
#include "image/error.hpp"

namespace frakti::cri {

namespace v1 = runtime::v1;

namespace {

// How much of a requested image name a status message or log line repeats.
constexpr size_t kMaxName = 256;

// The image name a request names, or an INVALID_ARGUMENT status when it names none.
bool image_name(const char* rpc, bool has_spec, const v1::ImageSpec& spec, grpc::Status* bad) {
  if (has_spec && !spec.image().empty()) return true;
  *bad =
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                   fmt::format("{}: the image spec names no image (set ImageSpec.image to a name, "
                               "digest or image ID)",
                               rpc));
  return false;
}

image::ImageSpec from_proto(const v1::ImageSpec& s) {
  image::ImageSpec out;
  out.image = s.image();
  out.annotations.insert(s.annotations().begin(), s.annotations().end());
  return out;
}

void to_proto(const image::CriImage& in, v1::Image* out) {
  out->set_id(in.id);
  for (auto& t : in.repo_tags) out->add_repo_tags(t);
  for (auto& d : in.repo_digests) out->add_repo_digests(d);
  out->set_size(in.size);
  if (in.uid) out->mutable_uid()->set_value(*in.uid);
  out->set_username(in.username);
  out->mutable_spec()->set_image(in.spec.image);
  out->mutable_spec()->mutable_annotations()->insert(in.spec.annotations.begin(),
                                                     in.spec.annotations.end());
  out->set_pinned(in.pinned);
}

// The status of a failed call: the mapped code, the RPC and what it was about in front.
grpc::Status failed(const char* rpc, const std::string& about, const std::exception& e) {
  grpc::Status st = to_status(e);
  std::string msg =
      about.empty() ? fmt::format("{}: {}", rpc, st.error_message())
                    : fmt::format("{} \"{}\": {}", rpc, clip(about, kMaxName), st.error_message());
  common::log::warn("cri", "{} (code {})", msg, static_cast<int>(st.error_code()));
  return {st.error_code(), msg};
}

// Cancels `token` when the gRPC call is cancelled by the client (the sync API has no callback
// for it, so a watcher polls; pulls are few and long, so the thread is cheap).
class CancelWatch {
 public:
  CancelWatch(grpc::ServerContext* ctx, image::CancelToken& token)
      : thread_([this, ctx, &token] {
          std::unique_lock lock(mu_);
          while (!done_) {
            if (ctx->IsCancelled()) {
              token.cancel();
              return;
            }
            cv_.wait_for(lock, std::chrono::milliseconds(50));
          }
        }) {}
  ~CancelWatch() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace

grpc::Status ImageGrpcService::ListImages(grpc::ServerContext*, const v1::ListImagesRequest* req,
                                          v1::ListImagesResponse* resp) {
  try {
    image::ImageFilter filter;
    if (req->has_filter() && req->filter().has_image())
      filter.image = from_proto(req->filter().image());
    for (auto& img : images_.list_images(filter)) to_proto(img, resp->add_images());
    return grpc::Status::OK;
  } catch (const std::exception& e) {
    return failed("ListImages", {}, e);
  }
}

grpc::Status ImageGrpcService::ImageStatus(grpc::ServerContext*, const v1::ImageStatusRequest* req,
                                           v1::ImageStatusResponse* resp) {
  grpc::Status bad;
  if (!image_name("ImageStatus", req->has_image(), req->image(), &bad)) return bad;
  try {
    image::ImageStatusResult r = images_.image_status(from_proto(req->image()), req->verbose());
    if (r.image) to_proto(*r.image, resp->mutable_image());
    resp->mutable_info()->insert(r.info.begin(), r.info.end());
    return grpc::Status::OK;
  } catch (const std::exception& e) {
    return failed("ImageStatus", req->image().image(), e);
  }
}

grpc::Status ImageGrpcService::PullImage(grpc::ServerContext* ctx, const v1::PullImageRequest* req,
                                         v1::PullImageResponse* resp) {
  grpc::Status bad;
  if (!image_name("PullImage", req->has_image(), req->image(), &bad)) return bad;
  const std::string& name = req->image().image();
  image::CancelToken cancel;
  // The client's deadline, moved from the system clock to the token's steady clock.
  auto deadline = ctx->deadline();
  bool has_deadline = deadline != std::chrono::system_clock::time_point::max();
  if (has_deadline)
    cancel.set_deadline(image::CancelToken::Clock::now() +
                        (deadline - std::chrono::system_clock::now()));
  try {
    std::optional<image::AuthConfig> auth;
    if (req->has_auth()) {
      const v1::AuthConfig& a = req->auth();
      auth = image::AuthConfig{a.username(),       a.password(),       a.auth(),
                               a.server_address(), a.identity_token(), a.registry_token()};
    }
    std::optional<image::SandboxInfo> sandbox;
    if (req->has_sandbox_config() && req->sandbox_config().has_metadata()) {
      const v1::PodSandboxMetadata& m = req->sandbox_config().metadata();
      sandbox = image::SandboxInfo{m.name(), m.namespace_(), m.uid(), {}};
      sandbox->annotations.insert(req->sandbox_config().annotations().begin(),
                                  req->sandbox_config().annotations().end());
    }
    CancelWatch watch(ctx, cancel);
    resp->set_image_ref(images_.pull_image(from_proto(req->image()), auth, sandbox, &cancel));
    return grpc::Status::OK;
  } catch (const image::ImageError& e) {
    // gRPC marks a call past its deadline as cancelled too: the clock tells the two apart.
    if (e.kind() == image::ErrorKind::cancelled && has_deadline &&
        std::chrono::system_clock::now() >= deadline) {
      std::string msg = fmt::format(
          "PullImage \"{}\": the call's deadline passed before the pull finished ({}); pull again "
          "with a longer timeout",
          clip(name, kMaxName), clip(e.what(), kMaxErrorText));
      common::log::warn("cri", "{}", msg);
      return {grpc::StatusCode::DEADLINE_EXCEEDED, msg};
    }
    return failed("PullImage", name, e);
  } catch (const std::exception& e) {
    return failed("PullImage", name, e);
  }
}

grpc::Status ImageGrpcService::RemoveImage(grpc::ServerContext*, const v1::RemoveImageRequest* req,
                                           v1::RemoveImageResponse*) {
  grpc::Status bad;
  if (!image_name("RemoveImage", req->has_image(), req->image(), &bad)) return bad;
  try {
    images_.remove_image(from_proto(req->image()));
    return grpc::Status::OK;
  } catch (const std::exception& e) {
    return failed("RemoveImage", req->image().image(), e);
  }
}

grpc::Status ImageGrpcService::ImageFsInfo(grpc::ServerContext*, const v1::ImageFsInfoRequest*,
                                           v1::ImageFsInfoResponse* resp) {
  try {
    for (auto& u : images_.image_fs_info()) {
      v1::FilesystemUsage* out = resp->add_image_filesystems();
      out->set_timestamp(u.timestamp_ns);
      out->mutable_fs_id()->set_mountpoint(u.mountpoint);
      out->mutable_used_bytes()->set_value(u.used_bytes);
      out->mutable_inodes_used()->set_value(u.inodes_used);
    }
    return grpc::Status::OK;
  } catch (const std::exception& e) {
    return failed("ImageFsInfo", {}, e);
  }
}

}  // namespace frakti::cri
