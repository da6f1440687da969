#pragma once
// CRI calls the end-to-end tests share (VM pods and runc pods): each REQUIREs success and
// shows the error (and the daemon's log where it helps) when it fails.

#include <filesystem>
#include <string>

#include "tests/cri/cri_daemon.hpp"

namespace frakti::test {

/// RunPodSandbox; returns the pod ID.
std::string run_pod(CriDaemon& d, const rt::PodSandboxConfig& cfg);
/// CreateContainer without checking the outcome (id gets the new ID when not null).
grpc::Status create(CriDaemon& d, const std::string& pod, const rt::PodSandboxConfig& pcfg,
                    const rt::ContainerConfig& cfg, std::string* id);
/// CreateContainer + StartContainer; returns the container ID.
std::string start_container(CriDaemon& d, const std::string& pod, const rt::PodSandboxConfig& pcfg,
                            const rt::ContainerConfig& cfg);
rt::ContainerStatus status_of(CriDaemon& d, const std::string& id);
/// Safe from many threads at once (no REQUIRE): RunPodSandbox, CreateContainer, StartContainer,
/// then ExecSync `echo <tag>`. "" on success, else which step failed and why.
std::string run_and_probe(CriDaemon& d, const rt::PodSandboxConfig& pcfg, const rt::ContainerConfig& ccfg,
                          const std::string& tag);
/// RemovePodSandbox of every listed pod, all at once; the failures' messages ("" when none).
std::string remove_all_pods_concurrently(CriDaemon& d);
/// A whole file ("" when missing).
std::string read_file(const std::filesystem::path& p);

}  // namespace frakti::test
