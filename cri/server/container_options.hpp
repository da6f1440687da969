#pragma once
// CRI ContainerConfig (+ the pod's config) -> sandbox::ContainerOptions, the shape vmctl and
// the agent request builder already share. Throws CriError(INVALID_ARGUMENT) for what cannot
// be honoured.

#include "cri/server/backend.hpp"
#include "sandbox/container_spec.hpp"

namespace frakti::cri {

sandbox::ContainerOptions container_options(const st::SandboxRecord& pod, const st::ContainerRecord& c);

/// The signal StopContainer sends first: the image's StopSignal, else SIGTERM.
int stop_signal_of(const image::ImageConfig& config);

}  // namespace frakti::cri
