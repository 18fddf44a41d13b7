#pragma once
// Internal: a run on the move — its job, where it stands (Cursor), and the functions that move
// it along its plan (advance, record_step, fail) from start_run to end_run; the actors that do
// the work (node executors, parallel coordinators, the persistence actor) and their messages.

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

#include "engine/engine.hpp"
#include "engine/failure.hpp"
#include "engine/plan.hpp"
#include "engine/services.hpp"
#include "run/run_state.hpp"

namespace flux::detail {

using exec_atom = caf::atom_constant<caf::atom("exec")>;         // run a node, then go on
using drain_atom = caf::atom_constant<caf::atom("drain")>;       // the journal has writes queued

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
  /// When the run must be over (RunOptions::deadline); every step's ctx.deadline() is at
  /// most this. Read-only once started.
  std::optional<Timestamp> deadline;
  /// The timer that cancels the run at its deadline (Services::timers), 0 if none.
  std::atomic<std::uint64_t> deadline_timer{0};
  /// Resume of a run that was undoing its steps (a `compensating` entry in its history): why
  /// it stopped, as that entry says; the resumed run goes on compensating, never forward.
  struct Stopped {
    RunFailure why;
    RunStatus cause = RunStatus::failed;  ///< failed or cancelled
  };
  std::optional<Stopped> compensating;

  std::uint32_t attempt_of(const std::string& step) const {
    if (attempts.empty()) return 1;
    auto it = attempts.find(step);
    return it == attempts.end() ? 1 : it->second + 1;
  }
};

extern const std::string k_run_input;
/// The node name recorded for a parallel as a whole.
extern const std::string k_parallel_name;

class ParallelJoin;  // engine/parallel.hpp

/// Where a run is in one sequence of its plan (the root, or a parallel's branch), and
/// whom to tell when that sequence ends. Execution is continuation passing: each step,
/// once done, starts the next one itself — a node actor sends straight to the next node
/// actor — so a chain costs one message per node and no round trip through a driver.
struct Cursor {
  std::shared_ptr<RunJob> job;
  const PlanStep* seq;    ///< the sequence being walked
  std::size_t index;      ///< the step to execute next
  /// The parallel whose branch this sequence is, told of its end; null for the root
  /// sequence, whose end ends the run.
  std::shared_ptr<ParallelJoin> join;
  std::uint32_t tag = 0;  ///< the branch index within that parallel

  const PlanStep& step() const { return seq->children[index]; }
};

/// The request a node actor serves: execute the step at `at`, then continue.
struct ExecRequest {
  Cursor at;
  Value input;
  const std::string* source;  // label of the step that produced `input`, or &k_run_input
  /// The attempt to make: 0 for the step's first in this process (RunJob::attempt_of), else
  /// a retry's number (Node::retry).
  std::uint32_t attempt = 0;
};

/// Continues `at` with `input` (the output of the step before, labelled `source`):
/// skips steps whose output a resume replays, then sends the next node its request,
/// starts the next parallel, or reports the sequence's output to `at.join`. Callable
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
///
/// A failed attempt whose retry policy (Node::retry, else Config::retry) allows another is
/// executed again after its backoff — holding no thread meanwhile (Services::timers) —
/// unless the run is stopping; `source` labels the input for the retry (null: derived from
/// the cursor). Once no attempt is left, the failure names how many were made.
void record_step(const Cursor& at, HistoryEntry entry, Value input, caf::expected<Value> outcome,
                 bool slow, const std::string* source = nullptr);
/// Executes the node step of `req` (again): hands it to its executors or the cluster, or fails
/// its sequence if the run is stopping.
void submit_step(ExecRequest req);
/// Cancels the run of `job` (see RunState::cancel) unless it has ended; false if it had.
bool cancel_run(const RunJob& job, const std::string& by, const std::string& reason,
                bool compensate = false);

/// Whether `policy` gives the failed attempt `e` (failed with `error`) another one.
bool retry_allowed(const RetryPolicy& policy, const HistoryEntry& e, const caf::error& error);
/// The wait before the attempt after failed attempt `failed_attempt`, jittered if asked.
std::chrono::nanoseconds backoff_of(const RetryPolicy& policy, std::uint32_t failed_attempt);

/// Records the run's end with `status` — its output, or why it failed — and completes it
/// once its records are stored (see end_run).
void conclude_run(const std::shared_ptr<RunJob>& job, RunStatus status, Value output,
                  std::optional<RunFailure> error);
/// Compensation (compensation.cpp, README "Compensation"): undoes the completed steps of the
/// stopped run of `job` whose nodes have a compensation, newest first, then concludes it
/// `compensated` or `compensation_failed`. False, doing nothing, if no step is to be undone.
bool begin_compensation(const std::shared_ptr<RunJob>& job, RunFailure why, RunStatus cause);
/// Goes on undoing the steps of a resumed run that was compensating (RunJob::compensating).
void resume_compensation(const std::shared_ptr<RunJob>& job);

/// Executor `index` of `def` (see node_executors.hpp): takes each request from `slot` (its
/// NodeExecutors::Slot) and tells `executors` when it is free again.
caf::behavior node_actor(caf::event_based_actor* self, const NodeDef* def, NodeExecutors* executors,
                         std::size_t index, std::optional<ExecRequest>* slot);

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
