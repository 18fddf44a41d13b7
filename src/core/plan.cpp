#include "core/plan.hpp"

namespace flux::detail {

namespace {

PlanStep plan_sequence(const PipelineDef& seq, const std::string& prefix, std::size_t& nodes) {
  PlanStep out{PipelineDef::Type::sequence, prefix, "", nullptr, 0, {}};
  out.children.reserve(seq.children.size());
  for (std::size_t i = 0; i < seq.children.size(); ++i) {
    const PipelineDef& d = *seq.children[i];
    std::string id = prefix.empty() ? std::to_string(i) : prefix + "." + std::to_string(i);
    if (d.type == PipelineDef::Type::node) {
      out.children.push_back(PlanStep{d.type, std::move(id), d.label, d.node.get(), nodes++, {}});
    } else {
      PlanStep par{d.type, id, d.label, nullptr, 0, {}};
      par.children.reserve(d.children.size());
      for (std::size_t b = 0; b < d.children.size(); ++b) {
        par.children.push_back(plan_sequence(*d.children[b], id + "." + std::to_string(b), nodes));
      }
      out.children.push_back(std::move(par));
    }
  }
  return out;
}

}  // namespace

PlanStep plan_steps(const PipelineDef& root, std::size_t& node_steps) {
  node_steps = 0;
  return plan_sequence(root, "", node_steps);
}

}  // namespace flux::detail
