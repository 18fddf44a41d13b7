#pragma once
// Internal: the steps of a pipeline as its runs execute and record them — step ids, labels
// and nodes — computed once per pipeline, free of any actor system. The engine adds where
// each node step executes (engine/plan.hpp), indexed by `node_index`.
//
// Step ids: the i-th step of the root sequence is "i"; inside the parallel with id P, step j
// of branch b is "P.b.j". So `inc | parallel(dbl, sq) | add` has steps 0 (inc), 1 (the
// parallel), 1.0.0 (dbl), 1.1.0 (sq) and 2 (add). They name steps in history, in resume
// (a recorded step id is a step not to execute again) and in error messages: they never
// change for a pipeline of the same shape (its fingerprint).

#include <cstddef>
#include <string>
#include <vector>

#include "flux/pipeline.hpp"

namespace flux::detail {

struct PlanStep {
  PipelineDef::Type type;
  std::string id;                 ///< step id ("" for the root sequence and branch sequences)
  std::string label;              ///< node name or parallel label
  const NodeDef* node = nullptr;  ///< node steps only
  std::size_t node_index = 0;     ///< node steps: 0, 1, ... in depth-first order
  std::vector<PlanStep> children;
};

/// The steps of `root` (a sequence), with their ids; `node_steps` is set to the number of
/// node steps.
PlanStep plan_steps(const PipelineDef& root, std::size_t& node_steps);

}  // namespace flux::detail
