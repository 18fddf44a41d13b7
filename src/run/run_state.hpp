#pragma once
// Internal: the in-process state of one run, shared by its Contexts and actors.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
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

/// How many distinct step ids `steps` holds: `flux::completed_steps`' count, shared with
/// RunState's (whose history holds shared entries).
std::uint32_t distinct_steps(std::vector<std::string_view> steps);

/// Throws Error(invalid_argument) naming the key if `value` nests deeper than
/// k_max_value_depth: what a node stores must be storable.
void check_depth(Scope scope, std::string_view key, const Value& value);

/// Where a run's writes go, in order. Implemented by the persistence actor's client;
/// `write` must not block (it enqueues).
class Journal {
 public:
  virtual ~Journal() = default;
  virtual void write(Write w) = 0;
};

/// What a node's Context reaches of its run: the run's kv store, shared state and history.
/// On the run's owner it is the RunState itself; on a worker, calls to the owner
/// (cluster/remote_run.hpp). Thread-safe; every call is atomic.
class RunAccess {
 public:
  virtual ~RunAccess() = default;
  virtual const std::string& run_id() const noexcept = 0;
  virtual void put(Scope scope, std::string_view key, Value value) = 0;
  virtual std::optional<Value> get(Scope scope, std::string_view key) const = 0;
  virtual bool erase(Scope scope, std::string_view key) = 0;
  /// Replaces the value at `key` by `fn(old)` atomically. A remote run may call `fn` more
  /// than once (optimistic: retried when another write came first).
  virtual Value update(Scope scope, std::string_view key,
                       const std::function<Value(const Value&)>& fn) = 0;
  virtual Value::Map snapshot(Scope scope) const = 0;
  virtual std::vector<HistoryEntry> history() const = 0;
  /// Who starts the run's child runs; nullptr where children cannot be started.
  virtual ChildStarter* child_starter() const noexcept = 0;
  /// Whether the run was cancelled (or its deadline passed): Context::cancelled().
  virtual bool cancelled() const noexcept { return false; }
};

/// The live view of a run: kv, shared state and history as this process has written
/// them. Every mutation is applied here and forwarded to the journal under one lock,
/// so the store sees the run's writes in the order nodes observed them.
class RunState final : public RunAccess {
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
        history_(share_entries(std::move(history))) {}

  const std::string& run_id() const noexcept override { return run_id_; }
  /// Who starts the run's child runs (set once, before the run starts).
  void set_child_starter(ChildStarter* starter) noexcept { child_starter_ = starter; }
  ChildStarter* child_starter() const noexcept override { return child_starter_; }

  void put(Scope scope, std::string_view key, Value value) override;
  std::optional<Value> get(Scope scope, std::string_view key) const override;
  bool erase(Scope scope, std::string_view key) override;
  Value update(Scope scope, std::string_view key,
               const std::function<Value(const Value&)>& fn) override;
  Value::Map snapshot(Scope scope) const override;
  /// Stores `value` at `key` if the value there equals `expected` (nullopt: absent); returns
  /// the value there now otherwise. What a remote `update` commits with.
  std::optional<std::optional<Value>> compare_and_set(Scope scope, std::string_view key,
                                                      const std::optional<Value>& expected,
                                                      Value value);

  /// Sizes the history for `n` entries (a new run: its plan's steps), so that recording a
  /// step does not grow it.
  void expect_entries(std::size_t n) {
    std::lock_guard lock(mu_);
    history_.reserve(n);
  }
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
  /// Calls `f` once no step of the run is executing here any more (at once, here, if none
  /// is): a failed run's parallel branches may still be finishing steps, which compensation
  /// must see completed before it decides what to undo. Once per run.
  void when_steps_done(std::function<void()> f) {
    {
      std::lock_guard lock(mu_);
      if (holds_.load(std::memory_order_acquire) > 1) {
        steps_done_ = std::move(f);
        return;
      }
    }
    f();
  }
  std::uint64_t fence() const noexcept { return fence_; }

  /// Assigns the entry its sequence number, keeps it and journals it.
  void append(HistoryEntry entry);
  std::vector<HistoryEntry> history() const override;
  /// `flux::completed_steps` of the history, without copying it (at the run's end).
  std::uint32_t completed_steps() const;

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
  /// The run's lease went to another owner: stops it (as `stop`), and from now on results
  /// of its steps that arrive from workers are dropped, never recorded (fencing).
  void lose_lease(std::string why) {
    lease_lost_ = true;
    stop(std::move(why));
  }
  bool lease_lost() const noexcept { return lease_lost_; }

  /// Cancels the run: appends a `cancel` history entry naming `by` and `reason`, stops it
  /// from starting steps (as `stop`, with `message`) and calls every `on_cancel` callback
  /// (each abandons an execution or cuts a wait short). Once only: false if it was already.
  /// The run's error then reads `run <id> was cancelled by <by>: <reason>`, or for `by`
  /// "deadline", `run <id> was cancelled: deadline exceeded`.
  /// `compensate`: the run's completed steps are to be undone once it stops
  /// (CancelOptions::compensate); the `cancel` entry's input then also has "compensate": true.
  bool cancel(const std::string& by, const std::string& reason, bool compensate = false);
  /// Whether the cancellation asked for compensation.
  bool compensate_requested() const noexcept { return compensate_.load(); }
  /// The run began undoing its completed steps: `cancelled()` is false from now on, so that
  /// compensations that check `ctx.cancelled()` do their work.
  void begin_compensation() noexcept { compensating_ = true; }
  /// Also true once the run lost its lease: another owner runs it now, so its steps here
  /// should stop as well.
  bool cancelled() const noexcept override {
    return (cancelled_.load(std::memory_order_relaxed) &&
            !compensating_.load(std::memory_order_relaxed)) ||
           lease_lost_.load(std::memory_order_relaxed) ||
           shut_down_.load(std::memory_order_relaxed);
  }
  /// The Runtime is shutting down and its grace ran out before this run ended: stops the run
  /// (as `stop`, with `why`), turns its steps' ctx.cancelled() true and abandons its
  /// executions (the `on_cancel` callbacks), but records no cancellation: the run's end is
  /// not stored, so it stays `running` in the store, an orphan that resume finishes.
  void shut_down(std::string why);
  bool shutting_down() const noexcept { return shut_down_.load(std::memory_order_relaxed); }
  /// Who cancelled the run and why, once cancelled.
  std::optional<std::pair<std::string, std::string>> cancellation() const;
  /// Calls `f` when the run is cancelled (at once, here, if it is already); returns the id
  /// that `off_cancel` takes (0 if `f` was called at once). `f` must not call on_cancel.
  std::uint64_t on_cancel(std::function<void()> f);
  void off_cancel(std::uint64_t id);
  /// The run ended: it can no longer be cancelled, and every `on_cancel` callback is
  /// forgotten (nothing is left to cut short).
  void mark_ended();
  /// Why the run stopped starting steps: the reason given to `stop`, or that a step failed.
  std::string stop_reason() const {
    std::lock_guard lock(mu_);
    return stop_reason_.empty() ? "cancelled: another step of the run failed" : stop_reason_;
  }

 private:
  static std::vector<std::shared_ptr<const HistoryEntry>> share_entries(std::vector<HistoryEntry> in) {
    std::vector<std::shared_ptr<const HistoryEntry>> out;
    out.reserve(in.size());
    for (auto& e : in) out.push_back(std::make_shared<const HistoryEntry>(std::move(e)));
    return out;
  }
  Value::Map& space(Scope scope) { return scope == Scope::kv ? kv_ : shared_; }
  const Value::Map& space(Scope scope) const { return scope == Scope::kv ? kv_ : shared_; }

  void journal(Write w) {
    w.fence = fence_;
    journal_->write(std::move(w));
  }

  void drop_hold() {
    // A step that was queued before the run ended may begin after the release: the lease
    // is given up once only.
    const int before = holds_.fetch_sub(1, std::memory_order_acq_rel);
    if (before == 1 && on_released_ && !released_.exchange(true)) {
      on_released_();
    } else if (before == 2) {  // only the run's own hold is left (see when_steps_done)
      std::function<void()> f;
      {
        std::lock_guard lock(mu_);
        f.swap(steps_done_);
      }
      if (f) f();
    }
  }

  std::atomic<bool> released_{false};
  std::atomic<bool> lease_lost_{false};
  ChildStarter* child_starter_ = nullptr;

  std::atomic<int> holds_{1};  // the run itself + each step executing
  std::function<void()> on_released_;
  const std::string run_id_;
  const std::shared_ptr<Journal> journal_;
  const std::uint64_t fence_;
  mutable std::mutex mu_;
  Value::Map kv_;
  Value::Map shared_;
  // Each entry is immutable once appended and shared with the write that stores it.
  std::vector<std::shared_ptr<const HistoryEntry>> history_;
  std::string stop_reason_;  // guarded by mu_
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> shut_down_{false};
  std::atomic<bool> compensate_{false}, compensating_{false};
  // Guarded by mu_: who cancelled and why, and what to call on cancellation.
  std::optional<std::pair<std::string, std::string>> cancellation_;
  std::map<std::uint64_t, std::function<void()>> on_cancel_;
  std::uint64_t next_on_cancel_ = 1;
  std::function<void()> steps_done_;  // guarded by mu_: see when_steps_done
  bool ended_ = false;
};

}  // namespace flux::detail
