#include "vmm/kvm/eventfd_irq_line.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "common/log.hpp"
#include "vmm/kvm/vm_fd.hpp"

namespace frakti::vmm::kvm {

EventFdIrqLine::EventFdIrqLine(VmFd& vm, uint32_t gsi) : fd_(vm.register_irqfd(gsi)), gsi_(gsi) {}

void EventFdIrqLine::trigger() {
  uint64_t one = 1;
  ssize_t n = ::write(fd_.get(), &one, sizeof one);
  // EAGAIN means the counter is saturated: an interrupt is already pending, nothing is lost.
  if (n < 0 && errno != EAGAIN) {
    static common::log::RateLimiter limiter(5, std::chrono::seconds(10));
    if (limiter.allow())
      common::log::warn("irq", "raising GSI {} failed: errno {}", gsi_, errno);
  }
}

}  // namespace frakti::vmm::kvm
