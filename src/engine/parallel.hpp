#pragma once
// Internal: a parallel execution's fan-out and fan-in, without an actor of its own.
//
// A parallel starts its branches from the thread that reached it, and each branch, once its
// last step is done, reports to the ParallelJoin on whichever thread ran that step; the
// report that completes the parallel (the last branch, or the first real failure, or the
// run's cancellation) records the parallel and continues the run from there. The same
// continuation passing as node steps (see Cursor in run_driver.hpp): no actor is spawned
// per parallel execution and no message carries a branch's output. (DESIGN.md's Parallel
// coordinator actor was one, spawned per execution: a spawn, a mailbox and one message per
// branch for state that fits in one shared object and two atomics — bench/README.md.)

#include <atomic>
#include <caf/error.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/run_driver.hpp"

namespace flux::detail {

class ParallelJoin : public std::enable_shared_from_this<ParallelJoin> {
 public:
  /// Starts the parallel step at `at` on `input` (the output of the step labelled `source`).
  static void start(Cursor at, Value input, const std::string* source);

  /// Branch `branch` produced `output`. Any thread.
  void branch_done(std::uint32_t branch, Value output);
  /// Branch `branch` failed with `error`. Any thread.
  void branch_failed(std::uint32_t branch, caf::error error);

  ParallelJoin(Cursor at, Value input, std::size_t branches);

 private:
  /// Records the parallel with `out` and continues the run: once, by whoever comes first.
  void conclude(caf::expected<Value> out);

  const Cursor at_;   // the parallel step itself
  Value input_;  // what every branch got: recorded with the parallel (taken by conclude)
  const std::uint32_t attempt_;
  const Timestamp start_;
  const std::chrono::steady_clock::time_point started_;
  // Each branch writes its own slot before it counts itself done (release), and whoever
  // counts the last one reads them all (acquire).
  Value::List outputs_;
  std::atomic<std::size_t> pending_;
  std::atomic<bool> concluded_{false};
  std::atomic<std::uint64_t> cancel_hook_{0};
};

}  // namespace flux::detail
