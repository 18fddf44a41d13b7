#pragma once
// Internal: what the actors share — message atoms, the compiled plan of a
// pipeline, the per-run job, and the error conventions. Never installed.

#include <caf/all.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "blocking_pool.hpp"
#include "engine.hpp"
#include "flux/observer.hpp"
#include "flux/pipeline.hpp"
#include "flux/storage.hpp"
#include "run_state.hpp"

namespace flux::detail {

using exec_atom = caf::atom_constant<caf::atom("exec")>;    // run a node
using done_atom = caf::atom_constant<caf::atom("done")>;    // off-scheduler work finished
using go_atom = caf::atom_constant<caf::atom("go")>;        // start a parallel
using write_atom = caf::atom_constant<caf::atom("write")>;  // journal one write
using flush_atom = caf::atom_constant<caf::atom("flush")>;  // apply the buffered writes
using sync_atom = caf::atom_constant<caf::atom("sync")>;    // reply once earlier writes are stored

/// Error codes carried in caf::error (category "flux") between Flux's actors. The
/// error's context is (node, step, message).
enum class flux_errc : std::uint8_t { node_failed = 1, type_mismatch, cancelled, storage };

caf::error make_failure(flux_errc code, const std::string& node, const std::string& step,
                        const std::string& message);
/// The failure described by `e`; for errors not made by make_failure, the CAF rendering.
RunFailure failure_of(const caf::error& e);
bool is_cancelled(const caf::error& e);

/// A pipeline compiled for one Engine: step ids computed and node actors resolved.
struct PlanStep {
  PipelineDef::Type type;
  std::string id;     ///< step id ("" for the root sequence and branch sequences)
  std::string label;  ///< node name or parallel label
  const NodeDef* node = nullptr;
  caf::actor actor;   ///< the node actor, for node steps
  std::vector<PlanStep> children;
};
struct Plan {
  std::shared_ptr<const PipelineDef> def;  // keeps node definitions alive
  PlanStep root;
};

/// Keeps the leases of this process's runs alive. Thread-safe.
class LeaseKeeper {
 public:
  LeaseKeeper(Storage& storage, std::chrono::milliseconds ttl);
  ~LeaseKeeper();  // stops renewing
  void add(const std::string& run_id, const Lease& lease, std::weak_ptr<RunState> run);
  void remove(const std::string& run_id);

 private:
  void loop();
  Storage& storage_;
  const std::chrono::milliseconds ttl_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  struct Held {
    Lease lease;
    std::weak_ptr<RunState> run;
  };
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
  /// Runs, and node executions (which may outlive a run that failed fast).
  mutable InFlight runs, executions;
  std::vector<std::shared_ptr<Observer>> observers;
  mutable BlockingPool pool;  // thread-safe
  std::unique_ptr<LeaseKeeper> leases;
  HistoryValues history_values = HistoryValues::full;
  std::size_t history_value_limit = 0;

  /// What history records of `v` under the configured policy.
  Value for_history(const Value& v) const;
  caf::actor persistence;

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
  RunInfo info;  // metadata; owned by the run actor once started
  std::shared_ptr<RunCompletion> completion;
  Lease lease;  // this process's ownership of the run
  /// Resume: the recorded outputs of completed steps (by step id), reused instead of
  /// executing them, and the attempts already made per step. Read-only once started.
  std::unordered_map<std::string, Value> replay;
  std::unordered_map<std::string, std::uint32_t> attempts;

  std::uint32_t attempt_of(const std::string& step) const {
    auto it = attempts.find(step);
    return it == attempts.end() ? 1 : it->second + 1;
  }
};

/// The request a node actor serves.
struct ExecRequest {
  std::shared_ptr<RunJob> job;
  const PlanStep* step;
  Value input;
  const std::string* source;  // label of the step that produced `input`, or &k_run_input
  std::uint32_t attempt = 1;
};
extern const std::string k_run_input;
/// The node name recorded for a parallel as a whole.
extern const std::string k_parallel_name;

using Done = std::function<void(caf::expected<Value>)>;

/// Runs the steps of `seq` from index `i` on `input` from inside actor `self`, then calls
/// `done` with the last output or the first error. Stops before each step once the run is
/// failing.
void run_sequence(caf::event_based_actor* self, const std::shared_ptr<RunJob>& job,
                  const PlanStep& seq, std::size_t i, Value input, const std::string* source,
                  Done done);

struct NodeActorState {
  std::uint64_t next_token = 0;
  std::unordered_map<std::uint64_t, caf::response_promise> pending;
};
caf::behavior node_actor(caf::stateful_actor<NodeActorState>* self, const NodeDef* def);

caf::behavior parallel_actor(caf::event_based_actor* self, std::shared_ptr<RunJob> job,
                             const PlanStep* step, Value input, const std::string* source);

caf::behavior run_actor(caf::event_based_actor* self, std::shared_ptr<RunJob> job);

struct PersistenceState {
  std::vector<Write> buffer;
  bool flush_scheduled = false;
  /// Runs whose writes the store refused, by "<run id>/<fencing token>" (a resumed run is a
  /// new owner: a refusal of its predecessor's late writes is not its failure), with the
  /// reason; reported to their sync.
  std::unordered_map<std::string, std::string> failed_runs;
};
caf::behavior persistence_actor(caf::stateful_actor<PersistenceState>* self,
                                std::shared_ptr<Storage> storage);

/// Wall-clock now, in the resolution history records.
Timestamp wall_now();

}  // namespace flux::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flux::Value)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flux::Write)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flux::detail::ExecRequest)
