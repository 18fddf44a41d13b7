#include "core/stop_signal.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "flux/error.hpp"

namespace flux::detail {
namespace {
int g_stop_pipe[2] = {-1, -1};
struct sigaction g_old_term {
}, g_old_int{};
extern "C" void on_stop_signal(int sig) {
  const char c = static_cast<char>(sig);
  [[maybe_unused]] auto n = ::write(g_stop_pipe[1], &c, 1);  // async-signal-safe
}
}  // namespace

StopSignal::StopSignal() {
  if (g_stop_pipe[0] < 0 && ::pipe2(g_stop_pipe, O_CLOEXEC) != 0) {
    throw Error(Errc::invalid_argument,
                std::string("cannot create a pipe for stop signals: ") + std::strerror(errno));
  }
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGTERM, &action, &g_old_term);
  ::sigaction(SIGINT, &action, &g_old_int);
}

StopSignal::~StopSignal() {
  ::sigaction(SIGTERM, &g_old_term, nullptr);
  ::sigaction(SIGINT, &g_old_int, nullptr);
}

const char* StopSignal::wait() {
  char sig = 0;
  while (::read(g_stop_pipe[0], &sig, 1) < 0 && errno == EINTR) {
  }
  return sig == SIGTERM ? "SIGTERM" : "SIGINT";
}

}  // namespace flux::detail
