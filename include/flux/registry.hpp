#pragma once
/// \file
/// `flux::Registry`: nodes and pipelines by name — how processes agree on them.
///
/// A C++ function cannot travel between machines, so a driver and its workers agree on a node
/// by its *name* (and its type signature): a worker serves the nodes of its registry, and a
/// driver configured to adopt orphans finds their pipelines in its registry by name.
///
/// ```cpp
/// flux::Registry registry;
/// registry.add(inc).add(dbl);                  // nodes
/// registry.add(pipeline.named("double-inc"));  // a pipeline, and every node in it
/// const flux::Pipeline* p = registry.pipeline("double-inc");
/// ```
///
/// Thread safety: build a Registry on one thread, then share it read-only (every const member
/// function may be called concurrently).

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "flux/node.hpp"
#include "flux/pipeline.hpp"

namespace flux {

/// A node's type signature as a driver and a worker compare it: "(int64) -> int64",
/// "(list<string>, int64) -> map<string, float64>". Two nodes of one name must have the
/// same signature to stand for each other.
std::string signature(const Node& node);
namespace detail {
std::string signature(const NodeDef& def);
}

class Registry {
 public:
  /// Registers `node` under its name. Adding the same node again is a no-op, and so is a
  /// node of the same name, signature and kind (sync, async, blocking) — built again by the
  /// same code, as pipelines made by functions are: the first one registered serves the name.
  /// A node under a taken name with another signature or kind throws Error(invalid_argument)
  /// naming the name and both signatures.
  Registry& add(const Node& node);
  /// Registers `pipeline` under its name (`Pipeline::named`) and every node in it. A different
  /// pipeline (another fingerprint) under a taken name throws Error(invalid_argument); so does
  /// a node of it that clashes as above. Nothing is registered when it throws.
  Registry& add(const Pipeline& pipeline);

  /// The node or pipeline registered under `name`, or nullptr.
  const Node* node(std::string_view name) const;
  const Pipeline* pipeline(std::string_view name) const;
  /// Names in ascending order.
  std::vector<std::string> node_names() const;
  std::vector<std::string> pipeline_names() const;
  bool empty() const noexcept { return nodes_.empty() && pipelines_.empty(); }

 private:
  std::map<std::string, Node, std::less<>> nodes_;
  std::map<std::string, Pipeline, std::less<>> pipelines_;
};

}  // namespace flux
