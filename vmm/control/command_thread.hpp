#pragma once
// CommandThread: the control server's one worker thread ("vmm-control"). Runs jobs one at a
// time in the order they were posted, so the VM sees control commands serialised and the
// event loop never waits for a slow one (stop blocks up to its timeout).

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace frakti::vmm::control {

class CommandThread {
 public:
  CommandThread();
  /// Drops jobs not yet started and waits for the running one to return.
  ~CommandThread();
  CommandThread(const CommandThread&) = delete;
  CommandThread& operator=(const CommandThread&) = delete;

  /// Queues job; it must not throw (an escaping exception ends the process, as a "cannot
  /// happen" should).
  void post(std::function<void()> job);

 private:
  void run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace frakti::vmm::control
