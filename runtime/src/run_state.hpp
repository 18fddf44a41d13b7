#pragma once
// Internal: the in-process state of one run, shared by its Contexts and actors.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "flux/context.hpp"
#include "flux/record.hpp"
#include "flux/storage.hpp"
#include "flux/value.hpp"

namespace flux::detail {

/// Starts child runs for nodes (Context::start); implemented by the engine.
class ChildStarter {
 public:
  virtual ~ChildStarter() = default;
  /// Starts `pipeline` on `input` as a child of `parent_run`'s step `parent_step`.
  virtual ChildRun start_child(const Pipeline& pipeline, Value input, const std::string& parent_run,
                               const std::string& parent_step) = 0;
};

/// The node execution running on this thread (its Context), if any: waiting for a run
/// here is refused, since the thread may be one the awaited run needs.
const Context* executing_node() noexcept;
/// Marks the calling thread as executing `ctx`'s node for the guard's lifetime.
class ExecutingNode {
 public:
  explicit ExecutingNode(const Context& ctx) noexcept;
  ~ExecutingNode();
  ExecutingNode(const ExecutingNode&) = delete;
  ExecutingNode& operator=(const ExecutingNode&) = delete;

 private:
  const Context* outer_;
};

/// Where a run's writes go, in order. Implemented by the persistence actor's client;
/// `write` must not block (it enqueues).
class Journal {
 public:
  virtual ~Journal() = default;
  virtual void write(Write w) = 0;
};

/// The live view of a run: kv, shared state and history as this process has written
/// them. Every mutation is applied here and forwarded to the journal under one lock,
/// so the store sees the run's writes in the order nodes observed them.
class RunState {
 public:
  /// `fence`: the fencing token every write of this run carries (0: unfenced). The other
  /// arguments restore a resumed run's state as stored.
  RunState(std::string run_id, std::shared_ptr<Journal> journal, std::uint64_t fence = 0,
           std::vector<HistoryEntry> history = {}, Value::Map kv = {}, Value::Map shared = {})
      : run_id_(std::move(run_id)),
        journal_(std::move(journal)),
        fence_(fence),
        kv_(std::move(kv)),
        shared_(std::move(shared)),
        history_(std::move(history)) {}

  const std::string& run_id() const noexcept { return run_id_; }
  /// Who starts the run's child runs (set once, before the run starts).
  void set_child_starter(ChildStarter* starter) noexcept { child_starter_ = starter; }
  ChildStarter* child_starter() const noexcept { return child_starter_; }

  void put(Scope scope, std::string_view key, Value value);
  std::optional<Value> get(Scope scope, std::string_view key) const;
  bool erase(Scope scope, std::string_view key);
  Value update(Scope scope, std::string_view key, const std::function<Value(const Value&)>& fn);
  Value::Map snapshot(Scope scope) const;

  /// Journals the run's metadata, ordered with the run's other writes.
  void journal_run(const RunInfo& info);
  /// Journals claiming a new run's lease (token 1) for `owner`: its first write.
  void journal_claim(const std::string& owner, std::chrono::milliseconds ttl);
  /// Journals giving up `owner`'s lease on the run: its last write.
  void journal_release(const std::string& owner);

  /// Ownership lasts while the run is going or any of its steps is still executing here
  /// (after a fail-fast, steps already running finish). `on_released` is called once,
  /// when the last of them ends; it gives the lease up.
  void set_on_released(std::function<void()> f) { on_released_ = std::move(f); }
  void begin_step() noexcept { holds_.fetch_add(1, std::memory_order_relaxed); }
  void end_step() { drop_hold(); }
  void end_run() { drop_hold(); }
  std::uint64_t fence() const noexcept { return fence_; }

  /// Assigns the entry its sequence number, keeps it and journals it.
  void append(HistoryEntry entry);
  std::vector<HistoryEntry> history() const;

  /// Set once any step fails, so that parallel branches stop starting new steps.
  std::atomic<bool> failing{false};
  /// Stops the run from starting new steps for a reason of its own (not a step's failure):
  /// the steps it would have started fail with `why`.
  void stop(std::string why) {
    {
      std::lock_guard lock(mu_);
      if (stop_reason_.empty()) stop_reason_ = std::move(why);
    }
    failing = true;
  }
  /// Why the run stopped starting steps: the reason given to `stop`, or that a step failed.
  std::string stop_reason() const {
    std::lock_guard lock(mu_);
    return stop_reason_.empty() ? "cancelled: another step of the run failed" : stop_reason_;
  }

 private:
  Value::Map& space(Scope scope) { return scope == Scope::kv ? kv_ : shared_; }
  const Value::Map& space(Scope scope) const { return scope == Scope::kv ? kv_ : shared_; }

  void journal(Write w) {
    w.fence = fence_;
    journal_->write(std::move(w));
  }

  void drop_hold() {
    // A step that was queued before the run ended may begin after the release: the lease
    // is given up once only.
    if (holds_.fetch_sub(1, std::memory_order_acq_rel) == 1 && on_released_ &&
        !released_.exchange(true)) {
      on_released_();
    }
  }

  std::atomic<bool> released_{false};
  ChildStarter* child_starter_ = nullptr;

  std::atomic<int> holds_{1};  // the run itself + each step executing
  std::function<void()> on_released_;
  const std::string run_id_;
  const std::shared_ptr<Journal> journal_;
  const std::uint64_t fence_;
  mutable std::mutex mu_;
  Value::Map kv_;
  Value::Map shared_;
  std::vector<HistoryEntry> history_;
  std::string stop_reason_;  // guarded by mu_
};

}  // namespace flux::detail
