#pragma once
// Internal: a pipeline compiled for one Engine — its steps (computed by core/plan.hpp), and
// for each node step where it executes (this process's executor actors, or the cluster
// through RemoteSteps).

#include <memory>
#include <string>
#include <vector>

#include "core/plan.hpp"
#include "flux/pipeline.hpp"

namespace flux::detail {

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

/// Where a node step executes.
struct NodePlacement {
  std::shared_ptr<NodeExecutors> executors;  ///< this process's executor actors, when local
  bool remote = false;                       ///< executed by a cluster worker (Services::remote)
};

/// A pipeline compiled for one Engine: its steps (core/plan.hpp) and, for each node step
/// (by `PlanStep::node_index`), where it executes.
struct Plan {
  std::shared_ptr<const PipelineDef> def;  // keeps node definitions alive
  PlanStep root;
  std::vector<NodePlacement> nodes;
  /// Whether any node step has a compensation (Node::compensate): a failed run then waits
  /// for its steps still executing before it ends, to undo what they complete.
  bool compensates = false;
  /// The history entries of a run in which every step succeeds at once (its node and
  /// parallel steps): what a run's history is sized for when it starts.
  std::size_t entries = 0;
  const NodePlacement& placement(const PlanStep& node_step) const {
    return nodes[node_step.node_index];
  }
};

}  // namespace flux::detail
