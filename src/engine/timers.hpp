#pragma once
// Internal: callbacks after a delay, without a thread that sleeps — retry backoffs, step
// timeouts and run deadlines.
//
// Why an actor and delayed messages: a backoff of 10 s must not hold a scheduler or pool
// thread for 10 s (the rule, and with thousands of runs in backoff there would be
// no threads left). CAF's clock delivers a delayed message to one small actor, which runs
// the callback; the callback itself stays in this process (a message holds only an id),
// so that a cancelled timer is simply forgotten.

#include <caf/all.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace flux::detail {

/// Thread-safe. Callbacks run one at a time on a scheduler thread: keep them short (they
/// hand work on, as `advance` does). A callback pending when the Timers are destroyed is
/// dropped without being called.
class Timers {
 public:
  explicit Timers(caf::actor_system& system);
  ~Timers();
  Timers(const Timers&) = delete;
  Timers& operator=(const Timers&) = delete;

  /// Calls `f` once `delay` has passed; returns an id for `cancel` (never 0).
  std::uint64_t after(std::chrono::nanoseconds delay, std::function<void()> f);
  /// Forgets a pending callback; false if it already ran (or is running) or was cancelled.
  bool cancel(std::uint64_t id);

  struct State;  // shared with the actor, which may see a message after the destructor ran

 private:
  std::shared_ptr<State> state_;
  caf::actor actor_;
};

}  // namespace flux::detail
