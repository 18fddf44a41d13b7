#pragma once
/// \file
/// Pipelines: nodes composed with `|` (sequence) and `parallel(...)` (fan-out, fan-in).
///
/// ```cpp
/// auto pipeline = inc | flux::parallel(dbl, sq | half) | add;
/// //   step ids:  "0"   "1" (dbl "1.0.0", sq "1.1.0", half "1.1.1")  "2"
/// ```
///
/// `parallel(a, b, ...)` sends the same input to every branch (a node or a
/// whole sub-pipeline) and outputs the list of their outputs in branch order.
/// Composition checks types where both sides are known and throws a
/// `flux::TypeError` naming both nodes and both types; what cannot be known
/// until run time is checked then, and fails the run with the same kind of message.
///
/// Every step has a stable id, its path in the tree: the index in the top-level
/// sequence, then for a parallel's branch `<parallel id>.<branch>.<index>`.
/// The fingerprint hashes the shape and the node names; resume uses it to
/// refuse a different pipeline.
///
/// Composing is linear: `a | b` shares the steps of `a` and `b` instead of copying
/// them, so building a chain of n nodes with `p = p | next` in a loop costs O(n)
/// (bench/compose.cpp). The flat list of steps is built once, on first use (a
/// run, `fingerprint()`, `describe()`), and `a | b` never changes `a` or `b`.
///
/// Thread safety: a Pipeline is immutable; copies share the definition, and one
/// pipeline may be run by any number of concurrent runs and Runtimes. Building the
/// flat list on first use is itself thread-safe.

#include <memory>
#include <string>
#include <vector>

#include "flux/codec.hpp"
#include "flux/node.hpp"

namespace flux {

namespace detail {
/// A tree of steps. A Pipeline's root is always a sequence; a parallel's
/// children are always sequences (its branches).
struct PipelineDef {
  enum class Type : std::uint8_t { node, sequence, parallel };
  Type type = Type::sequence;
  std::shared_ptr<const NodeDef> node;                       ///< when type == node
  std::vector<std::shared_ptr<const PipelineDef>> children;  ///< sequence steps / branches
  TypeInfo output;                                           ///< what this step produces
  std::string label;       ///< nodes and parallels: "inc", "parallel(dbl, sq)"; empty for sequences
  std::uint64_t hash = 0;  ///< of the shape and node names; combined bottom-up in O(children)
};
/// "inc | parallel(dbl, sq) | add"
std::string describe(const PipelineDef& def);
/// The sequence a Pipeline stands for, as built by `|` (pipeline.cpp).
class Chain;
}  // namespace detail

class Pipeline {
 public:
  /// A one-step pipeline; implicit so that nodes compose with `|`.
  Pipeline(const Node& node);  // NOLINT(google-explicit-constructor)
  explicit Pipeline(std::shared_ptr<const detail::PipelineDef> def, std::string name = {});

  /// The name recorded with each run ("pipeline" unless set with `named`).
  const std::string& name() const noexcept { return name_; }
  /// A copy of this pipeline with another name.
  Pipeline named(std::string name) const;

  /// Number of top-level steps.
  std::size_t size() const noexcept;
  /// Number of nodes in the whole tree.
  std::size_t node_count() const;
  /// Hex hash of the shape and node names (not the name of the pipeline).
  const std::string& fingerprint() const;
  /// Readable form: "inc | parallel(dbl, sq) | add".
  std::string describe() const { return detail::describe(*def()); }
  /// The type the pipeline produces.
  const TypeInfo& output_type() const noexcept;

  /// The tree of steps; the engine runs this. A top-level sequence with `size()` children.
  const std::shared_ptr<const detail::PipelineDef>& def() const;

 private:
  friend Pipeline operator|(const Pipeline& a, const Pipeline& b);
  explicit Pipeline(std::shared_ptr<const detail::Chain> chain) noexcept;

  std::shared_ptr<const detail::Chain> chain_;
  std::string name_;
};

/// Runs `a`, then `b` on its output. Throws TypeError when the output type of `a` is known
/// not to fit the input of `b` (naming both nodes and both types).
Pipeline operator|(const Pipeline& a, const Pipeline& b);
inline Pipeline operator|(const Node& a, const Node& b) { return Pipeline(a) | Pipeline(b); }

/// A sequence of steps, equivalent to `steps[0] | steps[1] | ...`; throws
/// Error(invalid_argument) when empty ("an empty pipeline has nothing to run").
Pipeline sequence(const std::vector<Pipeline>& steps);

/// Fan-out/fan-in over `branches`; throws Error(invalid_argument) when empty.
Pipeline parallel(const std::vector<Pipeline>& branches);

/// Fan-out/fan-in over nodes and sub-pipelines; at least one branch is required.
template <class... B>
Pipeline parallel(const B&... branches) {
  static_assert(sizeof...(B) > 0, "flux::parallel() needs at least one branch");
  return parallel(std::vector<Pipeline>{Pipeline(branches)...});
}

}  // namespace flux
