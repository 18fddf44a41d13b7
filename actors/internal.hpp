#pragma once
// Internal: what the actors share — message atoms, the compiled plan of a
// pipeline, the per-run job, and the error conventions. Never installed.

#include <atomic>
#include <caf/all.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "blocking_pool.hpp"
#include "engine.hpp"
#include "flux/observer.hpp"
#include "flux/pipeline.hpp"
#include "flux/storage.hpp"
#include "journal.hpp"
#include "run_state.hpp"

namespace flux::detail {

using exec_atom = caf::atom_constant<caf::atom("exec")>;         // run a node, then go on
using seq_done_atom = caf::atom_constant<caf::atom("seqdone")>;  // a sequence produced its output
using seq_fail_atom = caf::atom_constant<caf::atom("seqfail")>;  // a sequence failed
using drain_atom = caf::atom_constant<caf::atom("drain")>;       // the journal has writes queued

/// Error codes carried in caf::error (category "flux") between Flux's actors. The
/// error's context is (node, step, message).
enum class flux_errc : std::uint8_t { node_failed = 1, type_mismatch, cancelled };

caf::error make_failure(flux_errc code, const std::string& node, const std::string& step,
                        const std::string& message);
/// The failure described by `e`; for errors not made by make_failure, the CAF rendering.
RunFailure failure_of(const caf::error& e);
bool is_cancelled(const caf::error& e);

/// What produced a step's input, for messages: "the run input", "the output of 'inc'".
std::string source_text(const std::string* source);
/// The failure that the exception in flight stands for, thrown by node `node` at `step`
/// whose input is described by `source` (a type mismatch for an InputError). Call in a catch.
caf::error current_node_failure(const std::string& node, const std::string& step,
                                const std::string& source);
/// The failure of a node whose output nests deeper than a store can keep, if it does.
std::optional<caf::error> check_output_depth(const std::string& node, const std::string& step,
                                             const Value& output);

class NodeExecutors;
struct ExecRequest;

/// Executes node steps somewhere else than in this process: the cluster's dispatcher
/// (cluster/dispatcher.hpp) behind an interface, so that the engine does not depend on it.
class RemoteSteps {
 public:
  virtual ~RemoteSteps() = default;
  /// Places the node step of `req` on a worker; once it ends there, records it and continues
  /// the run (record_step) as a node actor does. Any thread.
  virtual void submit(ExecRequest req) = 0;
};

/// A pipeline compiled for one Engine: step ids computed and node executors resolved.
struct PlanStep {
  PipelineDef::Type type;
  std::string id;     ///< step id ("" for the root sequence and branch sequences)
  std::string label;  ///< node name or parallel label
  const NodeDef* node = nullptr;
  std::shared_ptr<NodeExecutors> executors;  ///< the node's executor actors, for local node steps
  bool remote = false;  ///< a node step executed by a cluster worker (Services::remote)
  std::vector<PlanStep> children;
};
struct Plan {
  std::shared_ptr<const PipelineDef> def;  // keeps node definitions alive
  PlanStep root;
};

/// Keeps the leases of this process's runs alive. Thread-safe.
class LeaseKeeper {
 public:
  /// `flush` is called at every renewal round (every third of `ttl`), before renewing: it
  /// returns true once the writes queued so far (the leases' claims) are in the store, false
  /// if that took too long (the round is then skipped).
  LeaseKeeper(Storage& storage, std::chrono::milliseconds ttl, std::function<bool()> flush);
  ~LeaseKeeper();  // stops renewing
  void add(const std::string& run_id, const Lease& lease, std::weak_ptr<RunState> run);
  void remove(const std::string& run_id);

 private:
  void loop();
  std::optional<std::string> holder_of(const std::string& run_id) const;
  Storage& storage_;
  const std::chrono::milliseconds ttl_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  struct Held {
    Lease lease;
    std::weak_ptr<RunState> run;
  };
  std::function<bool()> flush_;
  std::unordered_map<std::string, Held> held_;
  std::thread thread_;
};

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

/// Everything about one run that its actors need.
struct RunJob {
  std::shared_ptr<const Plan> plan;
  std::shared_ptr<RunState> run;
  const Services* services;  // owned by the Engine, which outlives every run and execution
  RunInfo info;              // metadata; written by end_run once the root sequence ends
  std::shared_ptr<RunCompletion> completion;
  Lease lease;  // this process's ownership of the run
  std::atomic<bool> ended{false};
  /// Resume: the recorded outputs of completed steps (by step id), reused instead of
  /// executing them, and the attempts already made per step. Read-only once started.
  std::unordered_map<std::string, Value> replay;
  std::unordered_map<std::string, std::uint32_t> attempts;

  std::uint32_t attempt_of(const std::string& step) const {
    if (attempts.empty()) return 1;
    auto it = attempts.find(step);
    return it == attempts.end() ? 1 : it->second + 1;
  }
};

extern const std::string k_run_input;
/// The node name recorded for a parallel as a whole.
extern const std::string k_parallel_name;

/// Where a run is in one sequence of its plan (the root, or a parallel's branch), and
/// whom to tell when that sequence ends. Execution is continuation passing: each step,
/// once done, starts the next one itself — a node actor sends straight to the next node
/// actor — so a chain costs one message per node and no round trip through a driver.
struct Cursor {
  std::shared_ptr<RunJob> job;
  const PlanStep* seq;    ///< the sequence being walked
  std::size_t index;      ///< the step to execute next
  caf::actor reply_to;    ///< gets (seq_done_atom | seq_fail_atom, tag, ...) at the end
  std::uint32_t tag = 0;  ///< the branch index, for a parallel coordinator

  const PlanStep& step() const { return seq->children[index]; }
};

/// The request a node actor serves: execute the step at `at`, then continue.
struct ExecRequest {
  Cursor at;
  Value input;
  const std::string* source;  // label of the step that produced `input`, or &k_run_input
};

/// Continues `at` with `input` (the output of the step before, labelled `source`):
/// skips steps whose output a resume replays, then sends the next node its request,
/// starts the next parallel, or reports the sequence's output to `at.reply_to`. Callable
/// from any thread (actors and the blocking pool).
void advance(Cursor at, Value input, const std::string* source);
/// As `advance`, once the records the run has journaled so far are acknowledged by the store
/// if `wait_for_store` (Config::durability); a refused record fails the sequence instead.
/// Holds no thread while it waits: the persistence actor continues the run.
void advance_when_stored(Cursor at, Value input, const std::string* source, bool wait_for_store);
/// Reports that the sequence of `at` failed with `error`.
void fail(const Cursor& at, caf::error error);

/// Records the execution of the node step at `at` — `entry` filled in but for its input,
/// output and error — notifies observers, ends the step's hold on the run, then continues
/// the run with the output or fails the sequence. `slow`: the step did slow work (its record
/// may have to be stored before the run goes on, Config::durability).
void record_step(const Cursor& at, HistoryEntry entry, Value input, caf::expected<Value> outcome,
                 bool slow);

/// One executor of `def` (see node_executors.hpp); tells `executors` when it is free again.
caf::behavior node_actor(caf::event_based_actor* self, const NodeDef* def, NodeExecutors* executors,
                         std::size_t index);

caf::behavior parallel_actor(caf::event_based_actor* self, Cursor at, Value input,
                             const std::string* source);

/// Starts a run: its first step, from the calling thread.
void start_run(std::shared_ptr<RunJob> job);
/// Records a run's outcome when its root sequence ends, and completes it once stored.
void end_run(const std::shared_ptr<RunJob>& job, caf::expected<Value> out);

class ActorJournal;
caf::behavior persistence_actor(caf::event_based_actor* self, std::shared_ptr<Storage> storage,
                                std::shared_ptr<ActorJournal> journal);

/// Wall-clock now, in the resolution history records.
Timestamp wall_now();

/// A Value as the sealed record bytes a message carries (record_codec), and back.
std::string encode_value_for_message(const Value& v);
Value decode_value_from_message(const std::string& bytes);

}  // namespace flux::detail

namespace flux {

/// A Value in a CAF message is serialized (when it leaves the process, or is printed) as the
/// sealed Cap'n Proto record the store keeps: one encoding for store and wire, and no
/// `CAF_ALLOW_UNSAFE_MESSAGE_TYPE`, under which CAF would silently send a Value as nothing
/// (notes/distribution.md §1). Found by ADL; declared here, where Flux's messages are sent,
/// so that the public header stays free of CAF.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, Value& x) {
  if constexpr (Inspector::reads_state) {
    std::string bytes = detail::encode_value_for_message(x);
    return f(caf::meta::type_name("flux.Value"), bytes);
  } else {
    std::string bytes;
    auto load = caf::meta::load_callback([&]() -> caf::error {
      try {
        x = detail::decode_value_from_message(bytes);
      } catch (const std::exception& e) {
        return caf::make_error(caf::sec::invalid_argument, e.what());
      }
      return caf::none;
    });
    return f(caf::meta::type_name("flux.Value"), bytes, load);
  }
}

}  // namespace flux
