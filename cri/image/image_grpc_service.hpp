#pragma once
// ImageGrpcService: the protocol edge of the CRI ImageService. It checks requests, turns
// runtime.v1 messages into the image library's CRI shapes (image/image_service.hpp) and back,
// and turns every failure into a gRPC status (cri/image/status.hpp) with the RPC and the image
// named in the message. No image logic lives here.
//
// Threads: gRPC's sync server calls these from its pool, in parallel. image::ImageService is
// safe for that (per-blob and store flocks, one curl handle per request); this class keeps no
// state of its own.

#include <grpcpp/grpcpp.h>

#include "image/image_service.hpp"
#include "proto/cri/api.grpc.pb.h"

namespace frakti::cri {

/// runtime.v1.ImageService over an image::ImageService (which must outlive it).
class ImageGrpcService final : public runtime::v1::ImageService::Service {
 public:
  explicit ImageGrpcService(image::ImageService& images) : images_(images) {}

  /// All images, or the one the filter's spec names (none when it names no local image).
  grpc::Status ListImages(grpc::ServerContext* ctx, const runtime::v1::ListImagesRequest* req,
                          runtime::v1::ListImagesResponse* resp) override;
  /// OK without an image when it is not present; verbose adds info["info"] (JSON).
  grpc::Status ImageStatus(grpc::ServerContext* ctx, const runtime::v1::ImageStatusRequest* req,
                           runtime::v1::ImageStatusResponse* resp) override;
  /// Pulls and answers the image ID. The call's deadline and cancellation stop the pull.
  grpc::Status PullImage(grpc::ServerContext* ctx, const runtime::v1::PullImageRequest* req,
                         runtime::v1::PullImageResponse* resp) override;
  /// Removes the image whatever name it is given by; OK when it is already gone.
  grpc::Status RemoveImage(grpc::ServerContext* ctx, const runtime::v1::RemoveImageRequest* req,
                           runtime::v1::RemoveImageResponse* resp) override;
  /// Space and inodes used by the image store.
  grpc::Status ImageFsInfo(grpc::ServerContext* ctx, const runtime::v1::ImageFsInfoRequest* req,
                           runtime::v1::ImageFsInfoResponse* resp) override;

 private:
  image::ImageService& images_;
};

}  // namespace frakti::cri
