#pragma once
// The shim's record of one container (internal to PodVm).

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cri/shim/pod_vm.hpp"
#include "sandbox/cri_log.hpp"

namespace frakti::cri::shim {

/// Output of one container on its way to its CRI log file: the loop writes, ReopenLog comes
/// from a gRPC thread.
struct LogSink {
  std::mutex mu;
  std::unique_ptr<sandbox::CriLogWriter> writer;
  void write(sandbox::LogStream s, const std::string& data) {
    std::lock_guard lock(mu);
    if (writer) writer->write(s, data);
  }
  void finish(sandbox::LogStream s) {
    std::lock_guard lock(mu);
    if (writer) writer->finish(s);
  }
};

struct PodVm::Container {
  sv1::ContainerStatus status;
  v1::Process process;  ///< the template every exec starts from
  std::string image_id;
  std::vector<uint32_t> device_slots;  ///< VMM drive slots holding its host devices
  std::string log_path;
  std::shared_ptr<LogSink> log = std::make_shared<LogSink>();
};

}  // namespace frakti::cri::shim
