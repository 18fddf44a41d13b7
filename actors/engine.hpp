#pragma once
// Internal: the actor side of a Runtime. Owns the CAF actor system, the node
// actors (one per node definition), the persistence actor and the blocking pool,
// and starts runs (each moves from node actor to node actor by continuation passing).

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "flux/pipeline.hpp"
#include "flux/runtime.hpp"
#include "open_storage.hpp"

namespace flux::detail {

/// Where a run's outcome is delivered; shared by end_run's completion and RunHandles.
struct RunCompletion {
  std::string run_id;
  std::mutex mu;
  std::condition_variable cv;
  std::optional<RunResult> result;

  void complete(RunResult r);
};

struct RunJob;

class Engine {
 public:
  explicit Engine(Config config);
  ~Engine();  // waits for runs in flight
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  std::shared_ptr<RunCompletion> start(const Pipeline& pipeline, Value input);
  /// Loads `run_id` and finishes it (see Runtime::resume); throws for refusals.
  std::shared_ptr<RunCompletion> resume(std::string_view run_id, const Pipeline& pipeline);
  /// One page of the running runs (`filter`), keeping those whose lease has expired:
  /// two calls to the store (a page of runs, then their lease holders at once).
  RunPage list_orphans(const RunFilter& filter) const;
  const std::string& owner_id() const noexcept;
  Storage& storage() const noexcept;

 private:
  std::shared_ptr<RunCompletion> launch(std::shared_ptr<RunJob> job);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flux::detail
