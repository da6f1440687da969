// frakti-vmm: boots one micro-VM and exits with a status saying how the guest ended
// (see config::usage()). Errors become one log line and exit status 1.

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "common/log.hpp"
#include "vmm/config/cli.hpp"
#include "vmm/seccomp/filters.hpp"
#include "vmm/vcpu/stop_reason.hpp"
#include "vmm/vm/vm.hpp"

namespace {

// Taken during static initialisation, as close to exec as we can get without parsing
// /proc/self/stat: the boot timer measures from here.
const auto g_process_start = std::chrono::steady_clock::now();

}  // namespace

int main(int argc, char** argv) {
  using namespace frakti;
  namespace log = common::log;
  std::vector<std::string> args(argv + 1, argv + argc);
  vmm::config::VmConfig config;
  try {
    auto parsed = vmm::config::parse_args(args);
    if (std::holds_alternative<vmm::config::HelpRequested>(parsed)) {
      std::fputs(vmm::config::usage().c_str(), stdout);
      return 0;
    }
    config = std::get<vmm::config::VmConfig>(parsed);
  } catch (const vmm::config::UsageError& e) {
    std::fprintf(stderr, "frakti-vmm: %s\n(frakti-vmm --help shows the options)\n", e.what());
    return vmm::vcpu::exit_status(vmm::vcpu::StopReason::vmm_error);
  }
  log::set_level(config.log_level);
  // Each thread installs its own filter when it starts (vmm/seccomp/filters.hpp).
  vmm::seccomp::set_enabled(config.seccomp);
  // A console reader that went away must not kill the VMM; writes fail with EPIPE instead.
  ::signal(SIGPIPE, SIG_IGN);
  // SIGINT/SIGTERM stay pending until the event loop is ready to handle them (Vm::run
  // unblocks them on the loop thread); before that their default action would kill the VMM
  // with no clean exit status. Every thread created from here on inherits the block.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    auto vm = vmm::vm::Vm::create(config, g_process_start);
    auto reason = vm->run();
    auto status = vmm::vcpu::exit_status(reason);
    log::info("vmm", "{} (exit status {})", vmm::vcpu::to_string(reason), status);
    return status;
  } catch (const std::exception& e) {
    log::error("vmm", "{}", e.what());
    return vmm::vcpu::exit_status(vmm::vcpu::StopReason::vmm_error);
  }
}
