#pragma once
// Internal: a pipeline compiled for one Engine — its step ids, and for each node step where
// it executes (this process's executor actors, or the cluster through RemoteSteps).

#include <memory>
#include <string>
#include <vector>

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

}  // namespace flux::detail
