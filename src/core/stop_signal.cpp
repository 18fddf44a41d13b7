#include "core/stop_signal.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace flux::detail {
namespace {
int g_stop_pipe[2] = {-1, -1};
extern "C" void on_stop_signal(int sig) {
  const char c = static_cast<char>(sig);
  [[maybe_unused]] auto n = ::write(g_stop_pipe[1], &c, 1);  // async-signal-safe
}
}  // namespace

namespace {
struct sigaction g_old_term {}, g_old_int{};
bool g_catching = false;
}  // namespace

bool catch_stop_signals() {
  if (g_catching) return true;
  if (g_stop_pipe[0] < 0 && ::pipe2(g_stop_pipe, O_CLOEXEC) != 0) return false;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGTERM, &action, &g_old_term);
  ::sigaction(SIGINT, &action, &g_old_int);
  g_catching = true;
  return true;
}

const char* wait_for_stop_signal() {
  if (!catch_stop_signals()) return "no signal pipe";
  char sig = 0;
  while (::read(g_stop_pipe[0], &sig, 1) < 0 && errno == EINTR) {
  }
  ::sigaction(SIGTERM, &g_old_term, nullptr);
  ::sigaction(SIGINT, &g_old_int, nullptr);
  g_catching = false;
  return sig == SIGTERM ? "SIGTERM" : "SIGINT";
}

}  // namespace flux::detail
