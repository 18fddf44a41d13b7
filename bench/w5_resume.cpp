// W5 resume: a 10,000-node chain whose driver process is SIGKILLed at node 5,000; a new
// Runtime resumes the run from Redis.
//
// Each repetition forks a driver (before this process has any thread of its own), which
// runs the chain on Config{.store = "redis://127.0.0.1:PORT"} and kills itself inside
// node 5,000. The parent waits until the run is an orphan (its lease expired), then
// resumes it and reports:
//   - load: from the resume() call until the first node executes again (the target:
//     "loads and continues in <= 100 ms");
//   - resume and finish: until resume() returns the run's result;
//   - re-executed: nodes recorded before the kill that ran again (must be 0);
//   - unrecorded: nodes executed before the kill whose records had not reached the store
//     (they run again: the durability window of Config::durability).
// Baseline, same sitting and store: a fresh run of the remaining 5,000-node chain — the
// work the resume has to do anyway — so the ratio is what loading and replay cost.
//
//   bench_w5_resume --port PORT [--reps 5] [--nodes 10000] [--kill-at 5000]

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <flux/flux.hpp>
#include <mutex>
#include <set>

#include "bench_common.hpp"

namespace {

using namespace bench;

const Result k_load{"W5",        "W5 resume: load until the first node runs again (ms)",
                    "flux",      "Flux: resume() until the first remaining node executes",
                    "ms",        "lower",
                    "value<=100"};
const Result k_finish{"W5",   "W5 resume and finish (ms)",
                      "flux", "Flux: resume() of a 10,000-node chain killed at node 5,000",
                      "ms",   "lower",
                      ""};
const Result k_fresh{"W5",       "W5 resume and finish (ms)",
                     "baseline", "a fresh run of the remaining 5,000-node chain, same store",
                     "ms",       "lower",
                     ""};
const Result k_reexec{"W5",      "W5 completed nodes re-executed",
                      "flux",    "nodes recorded before the kill that ran again",
                      "nodes",   "lower",
                      "value<=0"};

// The durability window (Config::durability, default slow_steps: this chain's sync steps
// are batched, bounded by the journal at 2,048 steps per process).
const Result k_unrecorded{"W5",   "W5 steps executed before the kill but not recorded",
                          "flux", "run again on resume (default durability, sync chain)",
                          "steps", "lower",
                          "value<=2048"};

std::atomic<int> g_kill_at{-1};
std::atomic<bool> g_first_seen{false};
Clock::time_point g_first_at;
std::mutex g_mu;
std::vector<std::string> g_executed;  // step ids executed in this process (parent side)

flux::Pipeline chain(int nodes) {
  std::vector<flux::Pipeline> steps;
  steps.reserve(static_cast<std::size_t>(nodes));
  for (int i = 0; i < nodes; ++i) {
    steps.push_back(flux::node("n" + std::to_string(i), [i](std::int64_t x, flux::Context& ctx) {
      if (i == g_kill_at.load(std::memory_order_relaxed)) ::raise(SIGKILL);
      if (!g_first_seen.exchange(true)) g_first_at = Clock::now();
      {
        std::lock_guard lock(g_mu);
        g_executed.push_back(ctx.step_id());
      }
      return x + 1;
    }));
  }
  return flux::sequence(steps).named("w5");
}

flux::Config config(int port, const std::string& prefix) {
  flux::Config c;
  c.store = "redis://127.0.0.1:" + std::to_string(port);
  c.key_prefix = prefix;
  c.lease_ttl = std::chrono::milliseconds(300);
  return c;
}

/// Forks the driver; returns the run id it printed before it died.
std::string crashed_run(int port, const std::string& prefix, int nodes, int kill_at) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    g_kill_at = kill_at;
    flux::Runtime rt(config(port, prefix));
    auto handle = rt.start(chain(nodes), std::int64_t{0});
    std::string line = handle.run_id() + "\n";
    if (::write(fds[1], line.data(), line.size()) < 0) std::_Exit(3);
    handle.wait();
    std::_Exit(4);  // not reached: node kill_at kills the process
  }
  ::close(fds[1]);
  std::string id;
  char c;
  while (::read(fds[0], &c, 1) == 1 && c != '\n') id += c;
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL || id.empty()) {
    throw std::runtime_error("W5: the driver was meant to die of SIGKILL at node " +
                             std::to_string(kill_at));
  }
  return id;
}

}  // namespace

int main(int argc, char** argv) try {
  Args args(argc, argv);
  const int port = static_cast<int>(args.num("port", 0));
  if (port <= 0) throw std::invalid_argument("--port PORT of a running redis-server is required");
  const int reps = static_cast<int>(args.num("reps", 5));
  const int nodes = static_cast<int>(args.num("nodes", 10000));
  const int kill_at = static_cast<int>(args.num("kill-at", 5000));
  emit_meta("bench_w5_resume");
  const flux::Pipeline pipeline = chain(nodes);
  for (int rep = 1; rep <= reps; ++rep) {
    const std::string prefix = "w5r" + std::to_string(rep) + "p" + std::to_string(::getpid());
    // Fork first: this process has no Runtime (no thread) alive at this point.
    std::string id = crashed_run(port, prefix, nodes, kill_at);

    flux::Runtime rt(config(port, prefix));
    auto deadline = Clock::now() + std::chrono::seconds(10);
    for (;;) {
      bool orphan = false;
      for (const auto& info : rt.list_orphans()) orphan |= info.id == id;
      if (orphan) break;
      if (Clock::now() > deadline) throw std::runtime_error("W5: the run never became an orphan");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::set<std::string> recorded;
    for (const auto& e : rt.history(id)) {
      if (e.ok()) recorded.insert(e.step);
    }
    g_executed.clear();
    g_first_seen = false;
    auto t0 = Clock::now();
    flux::RunResult r = rt.resume(id, pipeline);
    auto t1 = Clock::now();
    if (!r.ok() || r.value<std::int64_t>() != nodes) {
      throw std::runtime_error("W5: the resumed run did not give " + std::to_string(nodes));
    }
    int reexecuted = 0;
    for (const auto& step : g_executed) reexecuted += recorded.count(step) ? 1 : 0;
    result_line(k_load, rep, micros_between(t0, g_first_at) / 1000)
        .num("recorded_before_kill", static_cast<double>(recorded.size()))
        .emit();
    result_line(k_finish, rep, micros_between(t0, t1) / 1000)
        .num("executed_on_resume", static_cast<double>(g_executed.size()))
        .emit();
    result_line(k_reexec, rep, reexecuted).emit();
    // Nodes 0..kill_at executed (the last one is where the driver died).
    result_line(k_unrecorded, rep, static_cast<double>(kill_at + 1 - recorded.size())).emit();

    // Baseline: the remaining work as a fresh run, on the same store.
    const flux::Pipeline rest = chain(nodes - kill_at);
    auto t2 = Clock::now();
    auto fresh = rt.run(rest, std::int64_t{0});
    auto t3 = Clock::now();
    if (!fresh.ok()) throw std::runtime_error("W5 baseline run failed: " + fresh.error->message);
    result_line(k_fresh, rep, micros_between(t2, t3) / 1000).emit();
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_w5_resume: %s\n", e.what());
  return 1;
}
