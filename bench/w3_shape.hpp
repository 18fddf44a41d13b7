#pragma once
// The W3/W4 run shape on Flux: `a | parallel(b, c) | d` on ints, driven from the
// calling thread with rt.start() and RunHandle::wait() in a window of at most
// `window` runs in flight (FIFO: when the window is full, wait for the oldest).
//
// Counting: each run executes 4 nodes (a, b, c, d) and writes 5 history records
// (those 4 plus one for the parallel as a whole).

#include <cstdint>
#include <deque>
#include <flux/flux.hpp>
#include <functional>
#include <stdexcept>

#include "bench_common.hpp"

namespace bench {

constexpr int k_w3_nodes_per_run = 4;
constexpr int k_w3_records_per_run = 5;

inline std::int64_t w3_expected(std::int64_t x) { return 5 * (x + 1); }  // 2y + 3y, y = x + 1

inline flux::Pipeline make_w3_pipeline() {
  auto a = flux::node("a", [](std::int64_t x) { return x + 1; });
  auto b = flux::node("b", [](std::int64_t x) { return x * 2; });
  auto c = flux::node("c", [](std::int64_t x) { return x * 3; });
  auto d = flux::node("d", [](std::int64_t x, std::int64_t y) { return x + y; });
  return (a | flux::parallel(b, c) | d).named("w3");
}

/// Where the calling thread spent a windowed pass.
struct WindowStats {
  double seconds = 0;        ///< wall time of the whole pass
  double start_seconds = 0;  ///< inside rt.start() (for a networked store: includes its I/O)
  double wait_seconds = 0;   ///< inside RunHandle::wait() (window full, or draining)
};

/// Runs `runs` runs with at most `window` in flight; checks every result.
/// `after_start(i)` is called after run i was started (for sampling), if set.
inline WindowStats run_window(flux::Runtime& rt, const flux::Pipeline& p, int runs, int window,
                              const std::function<void(int)>& after_start = {}) {
  WindowStats stats;
  std::deque<flux::RunHandle> inflight;
  std::deque<std::int64_t> inputs;
  auto retire = [&] {
    auto w0 = Clock::now();
    flux::RunResult r = inflight.front().wait();
    stats.wait_seconds += seconds_since(w0);
    if (!r.ok()) throw std::runtime_error("W3 flux: run failed: " + r.error->message);
    if (r.value<std::int64_t>() != w3_expected(inputs.front())) {
      throw std::runtime_error("W3 flux: wrong result");
    }
    inflight.pop_front();
    inputs.pop_front();
  };
  auto t0 = Clock::now();
  for (int i = 0; i < runs; ++i) {
    if (static_cast<int>(inflight.size()) == window) retire();
    auto s0 = Clock::now();
    inflight.push_back(rt.start(p, std::int64_t{i}));
    stats.start_seconds += seconds_since(s0);
    inputs.push_back(i);
    if (after_start) after_start(i);
  }
  while (!inflight.empty()) retire();
  stats.seconds = seconds_since(t0);
  return stats;
}

}  // namespace bench
