#include "flux/registry.hpp"

#include "flux/error.hpp"

namespace flux {

std::string detail::signature(const NodeDef& def) {
  std::string out = "(";
  for (std::size_t i = 0; i < def.params.size(); ++i) {
    if (i) out += ", ";
    out += def.params[i].name;
  }
  return out + ") -> " + def.result.name;
}

std::string signature(const Node& node) { return detail::signature(*node.def()); }

namespace {

// Collects the nodes of a pipeline's tree, in order.
void collect_nodes(const detail::PipelineDef& def, std::vector<Node>& out) {
  if (def.type == detail::PipelineDef::Type::node) {
    out.emplace_back(def.node);
    return;
  }
  for (const auto& child : def.children) collect_nodes(*child, out);
}

}  // namespace

Registry& Registry::add(const Node& node) {
  auto it = nodes_.find(node.name());
  if (it != nodes_.end()) {
    // The same node, or one built again the same way (pipelines made by functions that each
    // call flux::node): the first registered serves the name.
    if (it->second.def() == node.def() ||
        (signature(it->second) == signature(node) && it->second.def()->mode == node.def()->mode)) {
      return *this;
    }
    throw Error(Errc::invalid_argument,
                "registry: a different node named '" + node.name() +
                    "' is already registered (registered: " + signature(it->second) +
                    ", this one: " + signature(node) + "); node names must be unique");
  }
  nodes_.emplace(node.name(), node);
  return *this;
}

Registry& Registry::add(const Pipeline& pipeline) {
  auto it = pipelines_.find(pipeline.name());
  if (it != pipelines_.end() && it->second.fingerprint() != pipeline.fingerprint()) {
    throw Error(Errc::invalid_argument, "registry: a different pipeline named '" + pipeline.name() +
                                            "' is already registered (" + it->second.describe() +
                                            ", not " + pipeline.describe() +
                                            "); give it another name with Pipeline::named");
  }
  std::vector<Node> nodes;
  collect_nodes(*pipeline.def(), nodes);
  // Checked before anything is registered, so that a refusal leaves the registry unchanged.
  Registry staged = *this;
  for (const Node& node : nodes) staged.add(node);
  staged.pipelines_.insert_or_assign(pipeline.name(), pipeline);
  *this = std::move(staged);
  return *this;
}

const Node* Registry::node(std::string_view name) const {
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : &it->second;
}

const Pipeline* Registry::pipeline(std::string_view name) const {
  auto it = pipelines_.find(name);
  return it == pipelines_.end() ? nullptr : &it->second;
}

std::vector<std::string> Registry::node_names() const {
  std::vector<std::string> out;
  for (const auto& [name, node] : nodes_) out.push_back(name);
  return out;
}

std::vector<std::string> Registry::pipeline_names() const {
  std::vector<std::string> out;
  for (const auto& [name, pipeline] : pipelines_) out.push_back(name);
  return out;
}

}  // namespace flux
