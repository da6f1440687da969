#include "tools/vmctl/supervisor.hpp"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <deque>
#include <fstream>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>

#include "common/guest_abi.hpp"
#include "common/log.hpp"
#include "sandbox/agent_client.hpp"
#include "sandbox/cri_log.hpp"
#include "tools/vmctl/stdio.hpp"

namespace frakti::vmctl {

namespace v1 = agent::v1;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sandbox::AgentClient;
using sandbox::AgentError;

std::string tail_of(const fs::path& file, int lines) {
  std::ifstream in(file);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (static_cast<int>(last.size()) > lines) last.pop_front();
  }
  std::string out;
  for (auto& l : last) out += "\n    " + l;
  return out.empty() ? "\n    (empty)" : out;
}

namespace {

int exit_code_of(const v1::ProcessExited& e) { return e.signal() ? 128 + e.signal() : e.exit_code(); }

// Docker's codes for a command that could not be started.
int start_failure_code(const AgentError& e) {
  std::string m = e.what();
  if (m.find("No such file") != std::string::npos || m.find("not found") != std::string::npos) return 127;
  if (m.find("ermission denied") != std::string::npos || m.find("Exec format") != std::string::npos) return 126;
  return 125;
}

class Supervisor {
 public:
  // Signals are caught from the first moment: one that arrives before the container runs
  // cancels the start (nothing is left behind); later ones are forwarded to the container.
  Supervisor(const StateDir& state, RunPlan& plan)
      : state_(state), plan_(plan), rec_(plan.record), sigs_(io_, SIGINT, SIGTERM, SIGHUP) {
    sigs_.add(SIGQUIT);
    watch_signals();
  }

  int run() {
    try {
      boot();
      stop_if_interrupted();
      start_container();
      started_ = true;
      if (early_signal_) forward(early_signal_);  // it came while the start request was in flight
    } catch (const SupervisorError&) {
      teardown_failed();
      throw;
    } catch (const std::exception& e) {
      teardown_failed();
      throw SupervisorError(e.what(), 125);
    }
    notify("ok\n");
    return wait_and_finish();
  }

 private:
  fs::path dir() const { return state_.dir(rec_.id); }

  [[noreturn]] void vm_trouble(const std::string& step, const std::string& why) {
    if (early_signal_) interrupted();
    throw SupervisorError(trouble_message(step, why), 125);
  }

  // What went wrong, the VMM's exit and the last lines of the guest console and the VMM log.
  // Built before any teardown: those files go with the container directory (--rm).
  std::string trouble_message(const std::string& step, const std::string& why) {
    std::string msg = fmt::format("{}: {}", step, why);
    if (auto e = vm_->poll()) msg += fmt::format(" ({})", e->describe());
    msg += fmt::format("\n  guest console ({}):{}\n  frakti-vmm log ({}):{}", (dir() / "console.log").string(),
                       tail_of(dir() / "console.log", 15), (dir() / "vmm.log").string(), tail_of(dir() / "vmm.log", 10));
    return msg;
  }

  void boot() {
    sandbox::VmConfig vc;
    vc.assets = sandbox::GuestAssets::locate();
    vc.cpus = plan_.cpus;
    vc.memory_mib = plan_.memory_mib;
    vc.drives.push_back({plan_.fs_image, true, plan_.container.image_drive_serial});
    vc.vsock_uds = state_.vsock(rec_.id);
    vc.console_log = dir() / "console.log";
    vc.vmm_log = dir() / "vmm.log";
    vc.log_level = plan_.vmm_log_level;
    vm_.emplace(sandbox::VmProcess::spawn(vc));
    rec_.vmm = ProcRef::of(vm_->pid());
    rec_.supervisor = ProcRef::self();
    state_.save(rec_);
    common::Fd fd;
    try {
      fd = sandbox::connect_hybrid_vsock(vc.vsock_uds, guest_abi::kAgentVsockPort,
                                         std::chrono::steady_clock::now() + plan_.boot_timeout,
                                         [&] {
                                           io_.restart();
                                           io_.poll();  // runs the signal handler, if one came
                                           return !vm_->poll() && !early_signal_;
                                         });
    } catch (const AgentError& e) {
      vm_trouble("starting the micro-VM", e.what());
    }
    client_.emplace(io_, std::move(fd), "vm " + rec_.short_id());
    client_->on_event([this](const v1::Event& e) {
      if (e.has_oom() && e.oom().container_id() == rec_.id) oom_ = true;
    });
    client_->call(sandbox::make_request([](v1::Request& r) { r.mutable_set_time()->set_unix_time_ns(now_ns()); }), 10s,
                  "setting the guest clock");
  }

  // A signal before the container was created: give up the start, exit as if killed by it.
  void stop_if_interrupted() {
    io_.restart();
    io_.poll();
    if (early_signal_) interrupted();
  }

  [[noreturn]] void interrupted() {
    rec_.reason = fmt::format("Error: interrupted by signal {} while starting", early_signal_);
    throw SupervisorError(fmt::format("interrupted by SIG{} while starting the container; the VM was stopped",
                                      ::sigabbrev_np(early_signal_)),
                          128 + early_signal_);
  }

  void start_container() {
    auto create = sandbox::make_create_request(plan_.image_config, plan_.container);
    if (!plan_.detached || !rec_.auto_remove) log_.emplace(state_.log(rec_.id));
    StdioBridge::Options so;
    so.input = plan_.interactive && !plan_.detached;
    so.terminal = plan_.terminal;
    so.to_host = !plan_.detached;
    so.log = log_ ? &*log_ : nullptr;
    stdio_.emplace(*client_, so);
    stdio_->attach(*create.mutable_process());
    v1::Request req;
    *req.mutable_create_container() = create;
    try {
      client_->call(req, 60s, "creating the container");
      stdio_->start();
      client_->call(sandbox::make_request([&](v1::Request& r) { r.mutable_start_container()->set_container_id(rec_.id); }),
                    60s, "starting " + fmt::format("{}", fmt::join(rec_.command, " ")));
    } catch (const AgentError& e) {
      if (!client_->is_open()) vm_trouble("talking to the agent", e.what());
      throw SupervisorError(e.what(), start_failure_code(e));
    }
    rec_.status = "running";
    rec_.started_ns = now_ns();
    state_.save(rec_);
  }

  void forward(int sig) {
    client_->call_async(sandbox::make_request([&](v1::Request& r) {
                          r.mutable_signal_process()->set_container_id(rec_.id);
                          r.mutable_signal_process()->set_signal(sig);
                          r.mutable_signal_process()->set_all(sig == SIGKILL);
                        }),
                        10s, "forwarding a signal", [](std::exception_ptr, v1::Response) {});
  }

  void resize() {
    auto [rows, cols] = terminal_size(STDIN_FILENO);
    if (!rows) return;
    client_->call_async(sandbox::make_request([&](v1::Request& r) {
                          r.mutable_resize_terminal()->set_container_id(rec_.id);
                          r.mutable_resize_terminal()->set_rows(rows);
                          r.mutable_resize_terminal()->set_cols(cols);
                        }),
                        10s, "resizing the terminal", [](std::exception_ptr, v1::Response) {});
  }

  void watch_signals() {
    sigs_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (!started_) {
        if (!early_signal_) early_signal_ = sig;
      } else if (sig == SIGWINCH) {
        resize();
      } else if (sig == SIGINT && ++interrupts_ >= 3) {
        fmt::print(stderr, "vmctl: third interrupt: killing the container\n");
        forward(SIGKILL);
      } else {
        forward(sig);
      }
      watch_signals();
    });
  }

  int wait_and_finish() {
    if (plan_.terminal && !plan_.detached) {
      if (::isatty(STDIN_FILENO)) raw_.emplace(STDIN_FILENO);
      sigs_.add(SIGWINCH);
      resize();  // the size may have changed while the VM booted
    }

    std::optional<v1::ProcessExited> exited;
    std::exception_ptr failure;
    client_->call_async(sandbox::make_request([&](v1::Request& r) { r.mutable_wait_process()->set_container_id(rec_.id); }),
                        std::chrono::hours(24 * 40), "waiting for the container", [&](std::exception_ptr e, v1::Response r) {
                          failure = e;
                          if (!e) exited = r.wait_process().status();
                        });
    client_->run_until([&] { return exited || failure; }, std::chrono::hours(24 * 40));
    sigs_.cancel();
    if (failure) {
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        rec_.reason = "Error: the VM stopped unexpectedly";
        // A guest that lost its agent panics and reboots within a second (panic=1): let the
        // console and the VMM's exit say so before the message quotes them.
        vm_->wait_for(2s);
        std::string msg = trouble_message("the container's VM", e.what());
        teardown_failed();
        throw SupervisorError(msg, 125);
      }
    }
    // Output written just before the exit may still be on its way.
    client_->run_until([&] { return stdio_->output_done(); }, 3s);
    // OOM events race the exit: give a late one a moment.
    if ((exited->signal() == SIGKILL || exited->exit_code() == 128 + SIGKILL) && !oom_) client_->run_until([&] { return oom_; }, 300ms);

    int code = exit_code_of(*exited);
    rec_.exit_code = code;
    rec_.reason = oom_ ? "OOMKilled" : (code == 0 ? "Completed" : "Error");
    raw_.reset();
    shutdown_vm();
    finish_record();
    if (oom_ && !plan_.detached) fmt::print(stderr, "vmctl: the container ran out of memory and was killed (OOMKilled)\n");
    return code;
  }

  void shutdown_vm() {
    stdio_.reset();
    try {
      client_->call(sandbox::make_request([](v1::Request& r) { r.mutable_shutdown()->set_grace_period_ms(500); }), 10s,
                    "shutting the VM down");
    } catch (const std::exception& e) {
      common::log::warn("vmctl", "{}; stopping the VMM", e.what());
    }
    client_.reset();
    if (!vm_->wait_for(10s)) vm_->kill();
  }

  void finish_record() {
    std::error_code ec;
    fs::remove(state_.vsock(rec_.id), ec);
    if (rec_.auto_remove) {
      state_.remove(rec_.id);
      return;
    }
    rec_.status = "exited";
    rec_.finished_ns = now_ns();
    state_.save(rec_);
  }

  // A start that failed: nothing may stay behind but an "exited" record (none with --rm).
  void teardown_failed() {
    raw_.reset();
    stdio_.reset();
    client_.reset();
    if (vm_) vm_->kill();
    if (rec_.reason.empty()) rec_.reason = "Error: could not start";
    try {
      finish_record();
    } catch (const std::exception& e) {
      common::log::warn("vmctl", "cleaning up {}: {}", rec_.short_id(), e.what());
    }
  }

  void notify(const std::string& text) {
    if (plan_.notify_fd < 0) return;
    (void)!::write(plan_.notify_fd, text.data(), text.size());
    ::close(plan_.notify_fd);
    plan_.notify_fd = -1;
  }

  const StateDir& state_;
  RunPlan& plan_;
  ContainerRecord& rec_;
  boost::asio::io_context io_;
  boost::asio::signal_set sigs_;
  int early_signal_ = 0;  // the first signal that came before the container was started
  bool started_ = false;
  std::optional<sandbox::VmProcess> vm_;
  std::optional<AgentClient> client_;
  std::optional<sandbox::CriLogWriter> log_;
  std::optional<StdioBridge> stdio_;
  std::optional<RawTerminal> raw_;
  bool oom_ = false;
  int interrupts_ = 0;
};

}  // namespace

int supervise(const StateDir& state, RunPlan& plan) {
  Supervisor s(state, plan);
  return s.run();
}

}  // namespace frakti::vmctl
