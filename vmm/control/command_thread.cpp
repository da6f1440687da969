#include "vmm/control/command_thread.hpp"

#include <pthread.h>

#include <cstdlib>
#include <exception>

#include "common/log.hpp"
#include "vmm/seccomp/filters.hpp"

namespace frakti::vmm::control {

CommandThread::CommandThread() : thread_([this] { run(); }) {}

CommandThread::~CommandThread() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    jobs_.clear();
  }
  cv_.notify_all();
  thread_.join();
}

void CommandThread::post(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void CommandThread::run() {
  // Named so per-thread seccomp filters and `top -H` can tell it apart.
  pthread_setname_np(pthread_self(), "vmm-control");
  try {
    seccomp::install_configured_filter(seccomp::Role::control);
  } catch (const std::exception& e) {
    // Never run commands unfiltered; this cannot fail where the other threads' filters load.
    common::log::error("control", "{}", e.what());
    std::abort();
  }
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace frakti::vmm::control
