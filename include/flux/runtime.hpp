#pragma once
/// \file
/// `flux::Runtime`: runs pipelines on an actor system and keeps their records.
///
/// ```cpp
/// flux::Runtime rt;                                // embedded: local actors, memory store
/// flux::RunResult r = rt.run(pipeline, 3);         // blocks until the run ends
/// if (r.ok()) use(r.output.as<std::int64_t>());    // or r.value<std::int64_t>(): throws if failed
/// flux::RunHandle h = rt.start(pipeline, 4);       // returns at once
/// flux::RunResult r2 = h.wait();
/// for (const flux::RunInfo& info : rt.list_runs()) { /* newest first */ }
/// ```
///
/// A failure inside a node fails only that run: `run()` returns a RunResult
/// whose `error` names the node, the step and the message, and the store says
/// the same. A run is reported ended only after all its records are in the store.
///
/// Thread safety: all member functions may be called from any thread at the
/// same time. The destructor waits for the runs in flight to end, so do not
/// destroy a Runtime from inside one of its nodes.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "flux/cluster.hpp"
#include "flux/codec.hpp"
#include "flux/node.hpp"
#include "flux/observer.hpp"
#include "flux/pipeline.hpp"
#include "flux/record.hpp"
#include "flux/storage.hpp"
#include "flux/value.hpp"

namespace flux {

struct Config {
  /// Where runs are kept:
  /// - "memory" (also "memory://"): this Runtime's own memory, lost when it is destroyed;
  /// - "redis://[user:password@]host:port[/db]": a Redis server shared by every process
  ///   that uses it (a password not in the URL is taken from FLUX_REDIS_PASSWORD);
  /// - "" (the default): the FLUX_STORE environment variable, or "memory" if it is unset.
  std::string store{};
  /// A store object of your own; when set, `store` is ignored.
  std::shared_ptr<Storage> storage{};
  /// Prefix of every key in a shared store, so that applications can share one Redis.
  std::string key_prefix = "flux";
  /// Which finished runs the store keeps (see `Retention`). Unset: the store's default —
  /// the memory store keeps the newest 10,000 finished runs
  /// (`MemoryStorage::k_default_retention`), Redis keeps every run. Ignored for `storage`.
  std::optional<Retention> retention{};
  /// How long a shared store may stay unreachable before writes fail (and with them the
  /// runs that made them) instead of being retried.
  std::chrono::milliseconds store_retry_deadline{10000};
  /// The largest record a shared store is sent: an encoded history entry, kv value or run
  /// record (with its input and output). A larger one fails its own run, before anything is
  /// sent, with an error naming the run, the key and the limit; Redis's own
  /// `proto-max-bulk-len` lowers it further when it is smaller.
  std::size_t max_record_size = std::size_t{64} << 20;
  /// When a step's history record must be acknowledged by the store before the next step
  /// of its branch starts — what a crash can make a resumed run repeat (README, "Delivery
  /// guarantee"):
  /// - `slow_steps` (default): steps that did slow work (`.blocking()` or async) wait for
  ///   their record; fast sync steps are batched. A crash re-runs the steps that were
  ///   executing, plus sync steps whose records were still queued.
  /// - `strict`: every step waits for its record (one store round trip per step): a crash
  ///   re-runs only the steps that were executing, at most one per branch in flight.
  /// - `batched`: nothing waits, fastest; a crash may re-run up to 2,048 steps per process
  ///   (the journal holds at most 1,024 queued records, plus one batch in flight).
  enum class Durability : std::uint8_t {
    slow_steps,
    strict,
    batched
  } durability = Durability::slow_steps;
  /// What history keeps of values (the kv store and outputs are never cut).
  HistoryValues history_values = HistoryValues::full;
  std::size_t history_value_limit = 1024;
  /// How long a run stays owned by this process after its last lease renewal (renewed every
  /// third of it). If the process dies, its runs become orphans after this long.
  std::chrono::milliseconds lease_ttl{10000};
  /// Threads of the actor scheduler; 0 means one per core.
  std::size_t threads = 0;
  /// How idle scheduler threads find work: `sharing` (one shared queue) or `stealing`
  /// (per-thread queues, idle threads steal). See bench/README.md for the measurements
  /// behind the default.
  enum class Scheduler : std::uint8_t { sharing, stealing } scheduler = Scheduler::sharing;
  /// Executor actors per node (spawned as needed): how many executions of one node (for
  /// different runs, or parallel branches) proceed at the same time; 0 means one per
  /// scheduler thread. A sync node occupies a scheduler thread while it runs, so a sync
  /// node that blocks for long delays other runs by the threads it holds: mark such nodes
  /// `.blocking()`, or raise `threads` to the number of such executions you expect at once
  /// plus one per core.
  std::size_t node_executors = 0;
  /// Upper bound on threads running `.blocking()` nodes and awaiting async nodes' futures.
  std::size_t blocking_threads = 64;
  /// Notified of run and node events, in order of registration (also of steps executed by
  /// cluster workers).
  std::vector<std::shared_ptr<Observer>> observers{};
  /// Makes this Runtime a cluster driver: node steps go to workers (README, "Cluster").
  ClusterConfig cluster{};
  /// The retry policy of every node that has none of its own (`Node::retry`); unset: a
  /// failed step fails its run at once.
  std::optional<RetryPolicy> retry{};
  /// Every run's deadline, counted from its start, unless `RunOptions::deadline` gives one;
  /// zero: none. A run that reaches it is cancelled with reason "deadline exceeded".
  std::chrono::milliseconds deadline{0};
  /// How long `~Runtime` waits for the runs still going to end. When the last part of it
  /// (a second, or half of it if shorter) begins, the runs left are stopped: their steps see
  /// `ctx.cancelled()`, async and `.blocking()` steps are abandoned (recorded as failed
  /// attempts), no new step starts, and none of those runs is recorded as ended: they stay
  /// `running` in the store and their leases are given up, so they are orphans that
  /// `resume` (or an adopting driver) finishes. A step that ignores cancellation (a sync node,
  /// or a thread that never returns) is left behind with what it uses, so that the
  /// destructor returns within the grace; the process should then exit.
  std::chrono::milliseconds shutdown_grace{30000};
  /// Serve this process's Prometheus metrics (flux/metrics.hpp) at "host:port", e.g.
  /// "127.0.0.1:9464" (port 0: any free one, see `Runtime::metrics_port`), and count this
  /// Runtime's runs and steps there (`metrics_observer()` is added to `observers`); empty:
  /// off. Listen on loopback unless your Prometheus is elsewhere: there is no authentication.
  std::string metrics_listen{};
};

/// Options of one run (`Runtime::start(pipeline, input, {.deadline = 30s})`).
struct RunOptions {
  /// The run must end within this long of its start: every step sees it in
  /// `ctx.deadline()` (through parallels and child runs' parents alike), and when it passes
  /// the run is cancelled with reason "deadline exceeded". Unset: `Config::deadline`.
  std::optional<std::chrono::milliseconds> deadline{};
};

/// Options of `Runtime::resume`.
struct ResumeOptions {
  /// Resume a run that was cancelled (refused otherwise: someone meant it to stop).
  bool cancelled = false;
  /// A new deadline from now. Unset: an interrupted (running) run keeps the deadline it was
  /// started with; a failed or cancelled one is resumed without one.
  std::optional<std::chrono::milliseconds> deadline{};
};

/// Options of `Runtime::cancel` and `RunHandle::cancel`.
struct CancelOptions {
  /// Undo the run's completed steps (`Node::compensate`) once it has stopped, newest first;
  /// it then ends `compensated` or `compensation_failed` instead of `cancelled` (README,
  /// "Compensation"). A run with nothing to undo ends `cancelled`.
  bool compensate = false;
};

/// The outcome of a run.
struct RunResult {
  std::string run_id;
  RunStatus status = RunStatus::running;
  Value output;                     ///< null unless completed
  std::optional<RunFailure> error;  ///< set when failed

  bool ok() const noexcept { return status == RunStatus::completed; }
  /// The output decoded as T; throws flux::Error(node_failed) with the failure's message
  /// if the run failed.
  template <class T>
  T value() const {
    throw_if_failed();
    return codec<T>::decode(output);
  }
  void throw_if_failed() const;
};

namespace detail {
class Engine;
struct RunCompletion;
}  // namespace detail

/// A run in flight. Copyable; all copies refer to the same run. Thread-safe.
class RunHandle {
 public:
  explicit RunHandle(std::shared_ptr<detail::RunCompletion> completion) noexcept;
  const std::string& run_id() const noexcept;
  /// Blocks until the run has ended and all its records are stored. Inside a node it
  /// throws Error(invalid_argument) instead (so does `Runtime::run`): the thread may be one
  /// the run needs; start a child with `ctx.start` and return it (see flux::ChildRun).
  RunResult wait() const;
  /// As `wait`, giving up after `timeout` (returns nullopt; the run goes on).
  std::optional<RunResult> wait_for(std::chrono::milliseconds timeout) const;
  bool done() const;
  /// Cancels the run (see `Runtime::cancel`); false if it had already ended or been
  /// cancelled (a run undoing its steps, `Node::compensate`, is no longer cancelled).
  bool cancel(const std::string& reason = "", const CancelOptions& options = {}) const;

 private:
  std::shared_ptr<detail::RunCompletion> completion_;
};

class Runtime {
 public:
  /// Embedded runtime with the default Config. Throws Error if the store cannot be opened.
  Runtime();
  explicit Runtime(Config config);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Runs `pipeline` and waits for it. The input is `input` for one argument, a list of the
  /// arguments for several (spread over the first node's parameters), null for none.
  /// An input nested deeper than `flux::k_max_value_depth` throws Error(invalid_argument)
  /// naming its depth and the limit; nothing runs or is stored then (also for `start`).
  template <class... In>
  requires(!std::is_same_v<In, RunOptions> && ...) RunResult
      run(const Pipeline& pipeline, const In&... input) {
    return start(pipeline, input...).wait();
  }
  /// As `run`, with options: `rt.run(pipeline, 3, {.deadline = 30s})`.
  template <class In>
  RunResult run(const Pipeline& pipeline, const In& input, const RunOptions& options) {
    return start(pipeline, input, options).wait();
  }
  /// Starts a run and returns at once. The run's id is known at once; the run becomes
  /// visible in the store (to `get_run`, other processes and `resume`) with its first
  /// batch of records, about a millisecond later.
  template <class... In>
  requires(!std::is_same_v<In, RunOptions> && ...) RunHandle
      start(const Pipeline& pipeline, const In&... input) {
    return start_value(pipeline, encode_arguments(input...));
  }
  /// As `start`, with options: `rt.start(pipeline, 3, {.deadline = 30s})`.
  template <class In>
  RunHandle start(const Pipeline& pipeline, const In& input, const RunOptions& options) {
    return start_value(pipeline, encode_arguments(input), options);
  }
  /// Starts a run on an already encoded input.
  RunHandle start_value(const Pipeline& pipeline, Value input, const RunOptions& options = {});

  /// Cancels a running run, wherever it runs. The run starts no new step; its running steps
  /// see `ctx.cancelled()` (async and `.blocking()` ones are abandoned at once, their late
  /// results ignored; a sync one is waited for); it ends with status `cancelled`, its error
  /// `run <id> was cancelled by <this runtime's owner_id()>: <reason>`, and a `cancel` entry
  /// in its history. A run owned by this Runtime is cancelled at once; one owned by another
  /// process sharing the store gets a cancel request in the store, which its owner picks up
  /// at its next lease renewal (within `Config::lease_ttl` / 3 plus a store round trip);
  /// an orphan (its owner gone) is recorded cancelled here. Returns false if the run had
  /// already ended; throws Error(not_found) for a run the store does not know (after looking
  /// for it for up to 2 s: a run another process has just started is stored with its owner's
  /// first write batch, which may still be on its way).
  ///
  /// `options.compensate`: the run's completed steps are then undone (`Node::compensate`)
  /// and it ends `compensated` or `compensation_failed`. An orphan cancelled so is not
  /// compensated here (this Runtime may not have its pipeline): the request stays in the
  /// store, and whoever resumes or adopts the run undoes its steps instead of going on.
  bool cancel(std::string_view run_id, const std::string& reason = "",
              const CancelOptions& options = {});

  /// Finishes an interrupted or failed run from the store and waits for it.
  ///
  /// Completed steps are never executed again: their recorded outputs are reused (also
  /// inside a parallel whose other branches did not finish). The run's kv store and
  /// shared state are restored, a `resume` entry is appended to its history, and the
  /// result is what an uninterrupted run gives. A failed run is retried from the step that
  /// failed (attempt 2, 3, ...). Delivery: a step that was executing when its process died
  /// has no record and runs again (at least once); a recorded step never does.
  ///
  /// Refusals, each an Error that leaves the store untouched: an unknown run id
  /// (not_found); a pipeline whose fingerprint differs (invalid_argument); a run whose
  /// lease is live, i.e. still owned by a running process (run_owned, naming the owner);
  /// a record that cannot be decoded (storage). A completed run returns its stored result
  /// and executes nothing.
  ///
  /// A cancelled run (or one with a cancel request pending) is refused (invalid_argument)
  /// unless `options.cancelled` says to resume it anyway. A pending resume request of the run
  /// (`Storage::request_resume`) is honoured by any resume, and cleared.
  ///
  /// Compensation (`Node::compensate`): a run that was undoing its steps when it was
  /// interrupted, or whose compensation failed, goes on undoing them — never forward; a
  /// `compensated` run returns its stored result and executes nothing; one with a cancel
  /// request asking for compensation is undone instead of resumed.
  RunResult resume(std::string_view run_id, const Pipeline& pipeline,
                   const ResumeOptions& options = {});
  /// As `resume`, returning at once (the refusals above are still thrown here).
  RunHandle start_resume(std::string_view run_id, const Pipeline& pipeline,
                         const ResumeOptions& options = {});
  /// Runs with status running whose owner's lease has expired — interrupted by a crash —
  /// newest first; a service can resume them on start-up. A record that cannot be decoded
  /// is left out (`list_orphans_page` reports it). Costs a constant number of round trips
  /// to the store, O(running runs).
  std::vector<RunInfo> list_orphans() const;
  /// As `list_orphans`, one page of the running runs at a time (`filter.status` is ignored;
  /// `limit` and `cursor` page through the running runs, so a page may hold fewer orphans
  /// than `limit`), with the keys of the running runs' records that could not be decoded.
  RunPage list_orphans_page(const RunFilter& filter = {}) const;
  /// This runtime's identity as a lease owner: "host:pid:nonce".
  const std::string& owner_id() const noexcept;

  /// Runs known to the store, newest first. A record that cannot be decoded is left out
  /// (`list_runs_page` reports it); with no `limit`, every run is read: page instead.
  std::vector<RunInfo> list_runs(const RunFilter& filter = {}) const;
  /// One page of runs, newest first, and the cursor of the next:
  /// ```cpp
  /// flux::Runtime rt;
  /// flux::RunFilter filter{.status = flux::RunStatus::failed, .limit = 100};
  /// do {
  ///   flux::RunPage page = rt.list_runs_page(filter);
  ///   for (const flux::RunInfo& run : page.runs) use(run);
  ///   for (const std::string& key : page.corrupt_keys) use(key);  // unreadable records
  ///   filter.cursor = page.next_cursor;
  /// } while (!filter.cursor.empty());
  /// ```
  /// A page costs O(limit + log runs) in Flux's stores, whatever their size.
  RunPage list_runs_page(const RunFilter& filter) const;
  /// One run with its full history, or nullopt if the store does not know it.
  std::optional<RunInfo> get_run(std::string_view run_id) const;
  /// A run's history from position `from` (its `seq`) on: call again with the next position
  /// to follow a run live.
  std::vector<HistoryEntry> history(std::string_view run_id, std::size_t from = 0) const;
  /// A run's kv store (Scope::kv) or shared state (Scope::shared) as stored.
  Value::Map run_keys(std::string_view run_id, Scope scope = Scope::kv) const;

  /// The store this runtime writes to.
  Storage& storage() const noexcept;
  /// The port of its metrics endpoint (`Config::metrics_listen`); 0 when off.
  std::uint16_t metrics_port() const noexcept;

 private:
  std::unique_ptr<MetricsServer> metrics_;  // destroyed after the engine: it may be scraped
  std::unique_ptr<detail::Engine> engine_;  // until the engine is gone
};

}  // namespace flux
