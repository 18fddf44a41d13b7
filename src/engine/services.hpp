#pragma once
// Internal: what every actor of an Engine shares — the actor system, the blocking pool, the
// journal, the lease keeper, observers, the history policy and where remote steps go.

#include <atomic>
#include <caf/all.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/blocking_pool.hpp"
#include "engine/journal.hpp"
#include "engine/lease_keeper.hpp"
#include "engine/plan.hpp"
#include "engine/timers.hpp"
#include "flux/node.hpp"
#include "flux/observer.hpp"
#include "flux/runtime.hpp"

namespace flux::detail {

/// Counts work in flight so that shutdown can wait for it. Thread-safe.
class InFlight {
 public:
  void add() {
    std::lock_guard lock(mu_);
    ++n_;
  }
  void done() {
    {
      std::lock_guard lock(mu_);
      --n_;
    }
    cv_.notify_all();
  }
  void wait_idle() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return n_ == 0; });
  }
  /// Whether nothing is in flight within `limit`.
  bool wait_idle_for(std::chrono::steady_clock::duration limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [this] { return n_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t n_ = 0;
};

/// Per-engine services shared by all actors.
struct Services {
  explicit Services(std::size_t blocking_threads) : pool(blocking_threads) {}
  caf::actor_system* system = nullptr;
  /// Runs, and node executions (which may outlive a run that failed fast).
  mutable InFlight runs, executions;
  std::vector<std::shared_ptr<Observer>> observers;
  mutable BlockingPool pool;  // thread-safe
  std::unique_ptr<LeaseKeeper> leases;
  std::shared_ptr<ActorJournal> journal;  // where every run's writes go
  HistoryValues history_values = HistoryValues::full;
  std::size_t history_value_limit = 0;
  Config::Durability durability = Config::Durability::slow_steps;
  RemoteSteps* remote = nullptr;  ///< where remote node steps go (cluster drivers only)
  /// Backoffs, timeouts and deadlines wait here, holding no thread.
  std::unique_ptr<Timers> timers;
  /// Config::retry: the policy of nodes without one of their own.
  std::optional<RetryPolicy> retry;

  /// The retry policy of a node step, if any.
  const RetryPolicy* retry_policy(const NodeDef* node) const {
    if (node && node->retry) return &*node->retry;
    return retry ? &*retry : nullptr;
  }

  /// Whether a step's record must be acknowledged before its branch goes on.
  bool waits_for_store(bool slow_step) const {
    return durability == Config::Durability::strict ||
           (slow_step && durability == Config::Durability::slow_steps);
  }

  /// What history records of `v` under the configured policy.
  Value for_history(const Value& v) const;
  /// As above, taking `v` over when it is kept whole (no copy of a large input).
  Value for_history(Value&& v) const {
    return history_values == HistoryValues::full ? std::move(v) : for_history(std::as_const(v));
  }

  /// Calls `f(observer)` for each observer; an observer's exception is reported, not thrown.
  template <class F>
  void notify(F&& f) const {
    for (const auto& o : observers) {
      try {
        f(*o);
      } catch (const std::exception& e) {
        report_observer_error(e.what());
      } catch (...) {
        report_observer_error("unknown exception");
      }
    }
  }
  static void report_observer_error(const char* what);
};

}  // namespace flux::detail
