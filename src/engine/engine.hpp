#pragma once
// Internal: the actor side of a Runtime. Owns the CAF actor system, the node
// actors (one per node definition), the persistence actor and the blocking pool,
// and starts runs (each moves from node actor to node actor by continuation passing).

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "flux/pipeline.hpp"
#include "flux/runtime.hpp"
#include "run/run_state.hpp"
#include "store/open_storage.hpp"

namespace caf {
class actor_system;
class actor_system_config;
}  // namespace caf

namespace flux::detail {

/// Where a run's outcome is delivered; shared by end_run's completion and RunHandles.
struct RunCompletion {
  std::string run_id;
  std::mutex mu;
  std::condition_variable cv;
  std::optional<RunResult> result;
  std::vector<std::function<void(const RunResult&)>> continuations;  // guarded by mu
  /// RunHandle::cancel: cancels the run (false if it had ended). Set before the run starts.
  std::function<bool(const std::string& reason, bool compensate)> cancel;

  void complete(RunResult r);
  /// Calls `f` with the result once there is one (at once, if there is one already), on the
  /// thread that completes the run. Nothing waits: this is how a parent awaits a child.
  void then(std::function<void(const RunResult&)> f);
};

struct RunJob;

class RemoteSteps;

/// A new identity for something in this process ("host:pid:nonce", the nonce random and
/// fork-safe): a runtime's lease owner id, a worker's default id.
std::string process_identity();

/// How a cluster driver's Engine reaches the cluster. Supplied by the runtime facade, the one
/// place that picks roles, so that the engine does not depend on the cluster layer above it.
struct ClusterHooks {
  /// Prepares the actor system's configuration (network layer, wire messages, TLS).
  std::function<void(caf::actor_system_config&, const std::string& owner)> configure;
  /// Where node steps not in Config::cluster.local_nodes go (the dispatcher).
  std::function<std::unique_ptr<RemoteSteps>(caf::actor_system&, const std::string& owner)>
      remote_steps;
};

class Engine final : public ChildStarter {
 public:
  /// An engine running node steps here, or (cluster drivers) where `cluster` says.
  explicit Engine(Config config, ClusterHooks cluster = {});
  ~Engine() override;  // waits for runs in flight, within Config::shutdown_grace
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  std::shared_ptr<RunCompletion> start(const Pipeline& pipeline, Value input,
                                       const RunOptions& options = {});
  ChildRun start_child(const Pipeline& pipeline, Value input, const std::string& parent_run,
                       const std::string& parent_step) override;
  /// Loads `run_id` and finishes it (see Runtime::resume); throws for refusals.
  std::shared_ptr<RunCompletion> resume(std::string_view run_id, const Pipeline& pipeline,
                                        const ResumeOptions& options = {});
  /// As `resume`, for the run's resume request (Storage::request_resume), read when the run's
  /// record had update time `seen`: refused with Error(run_owned) if the record changed since
  /// (another driver honoured the request meanwhile). (Every resume clears the run's request
  /// once the lease is taken, before the run's first write — so that whoever reads the record
  /// after the resumed run wrote to it no longer finds the request.)
  std::shared_ptr<RunCompletion> resume_requested(std::string_view run_id, const Pipeline& pipeline,
                                                  const ResumeOptions& options, Timestamp seen);
  /// See Runtime::cancel.
  bool cancel(std::string_view run_id, const std::string& reason, bool compensate = false);
  /// One page of the running runs (`filter`), keeping those whose lease has expired:
  /// two calls to the store (a page of runs, then their lease holders at once).
  RunPage list_orphans(const RunFilter& filter) const;
  const std::string& owner_id() const noexcept;
  Storage& storage() const noexcept;

 private:
  /// Waits for the runs in flight within Config::shutdown_grace, stopping those left when its
  /// last part begins (RunState::shut_down); false if steps ignored that, in which case the
  /// engine's state must be left to them.
  bool shut_down_within_grace();
  std::shared_ptr<RunCompletion> start(const Pipeline& pipeline, Value input,
                                       const std::string& parent_run,
                                       const std::string& parent_step, const RunOptions& options);
  /// Records an orphan (running, no live owner) as cancelled; false if someone took it first.
  bool cancel_orphan(const std::string& id, const std::string& reason);
  std::shared_ptr<RunCompletion> launch(std::shared_ptr<RunJob> job);
  std::shared_ptr<RunCompletion> resume(std::string_view run_id, const Pipeline& pipeline,
                                        const ResumeOptions& options,
                                        const std::optional<Timestamp>& requested_at_update);
  /// Config::cluster.adopt: resumes orphans whose pipeline is registered, and honours the
  /// resume requests of those pipelines, until destroyed.
  void adopt_orphans();
  /// One pass over the pending resume requests (adopt_orphans). `reported`: requests whose
  /// pipeline is not adopted here, said once.
  void take_resume_requests(std::set<std::string>& reported);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flux::detail
