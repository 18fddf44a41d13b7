#include "flux/pipeline.hpp"

#include <cstdio>

namespace flux {
namespace detail {
namespace {

using DefPtr = std::shared_ptr<const PipelineDef>;

// FNV-1a over the bytes of `s`, continuing from `h`.
std::uint64_t fnv1a(std::uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}
constexpr std::uint64_t k_fnv_offset = 14695981039346656037ull;

std::uint64_t mix(std::uint64_t h, std::uint64_t x) {
  // Order-sensitive combination (boost::hash_combine, 64-bit constant).
  return h ^ (x + 0x9e3779b97f4a7c15ull + (h << 12) + (h >> 4));
}

std::uint64_t combine(char tag, const std::vector<DefPtr>& children) {
  std::uint64_t h = fnv1a(k_fnv_offset, std::string_view(&tag, 1));
  h = mix(h, children.size());
  for (const auto& c : children) h = mix(h, c->hash);
  return h;
}

DefPtr make_node_step(std::shared_ptr<const NodeDef> node) {
  auto d = std::make_shared<PipelineDef>();
  d->type = PipelineDef::Type::node;
  d->output = node->result;
  d->label = node->name;
  d->hash = fnv1a(fnv1a(k_fnv_offset, "n:"), node->name);
  d->node = std::move(node);
  return d;
}

DefPtr make_sequence(std::vector<DefPtr> steps) {
  auto d = std::make_shared<PipelineDef>();
  d->type = PipelineDef::Type::sequence;
  d->output = steps.back()->output;
  d->hash = combine('s', steps);
  d->children = std::move(steps);
  return d;
}

std::string join_types(const std::vector<TypeInfo>& ts) {
  std::string s;
  for (const auto& t : ts) s += (s.empty() ? "" : ", ") + t.name;
  return s;
}

std::string quoted(const std::string& label) { return "'" + label + "'"; }

// Checks that what `producer` outputs can feed `consumer` (the first step that receives it).
void check_feed(const TypeInfo& produced, const std::string& producer,
                const PipelineDef& consumer) {
  switch (consumer.type) {
    case PipelineDef::Type::sequence:
      check_feed(produced, producer, *consumer.children.front());
      return;
    case PipelineDef::Type::parallel:
      for (const auto& branch : consumer.children) check_feed(produced, producer, *branch);
      return;
    case PipelineDef::Type::node:
      break;
  }
  const NodeDef& node = *consumer.node;
  const auto& params = node.params;
  std::string head = "type mismatch: " + quoted(producer) + " produces ";
  if (params.size() == 1) {
    if (!compatible(produced, params[0])) {
      throw TypeError(head + produced.name + " but " + quoted(node.name) + " expects " +
                      params[0].name);
    }
  } else if (params.size() >= 2) {
    std::string takes = quoted(node.name) + " takes " + std::to_string(params.size()) +
                        " parameters (" + join_types(params) + ")";
    if (!produced.branches.empty()) {
      if (produced.branches.size() != params.size()) {
        throw TypeError(head + std::to_string(produced.branches.size()) + " values (" +
                        join_types(produced.branches) + ") but " + takes);
      }
      for (std::size_t i = 0; i < params.size(); ++i) {
        if (!compatible(produced.branches[i], params[i])) {
          throw TypeError(head + produced.branches[i].name + " as value " + std::to_string(i + 1) +
                          " but " + quoted(node.name) + " expects " + params[i].name +
                          " for parameter " + std::to_string(i + 1));
        }
      }
    } else if (produced.kind && *produced.kind != Kind::list) {
      throw TypeError(head + produced.name + " but " + takes + ", which need a list of " +
                      std::to_string(params.size()) + " values");
    }
  }
}

// The label of the step whose output flows out of `def`.
const std::string& last_label(const PipelineDef& def) {
  return def.type == PipelineDef::Type::sequence ? last_label(*def.children.back()) : def.label;
}

void append_description(std::string& out, const PipelineDef& def) {
  if (def.type == PipelineDef::Type::sequence) {
    for (std::size_t i = 0; i < def.children.size(); ++i) {
      if (i) out += " | ";
      append_description(out, *def.children[i]);
    }
  } else {
    out += def.label;
  }
}

}  // namespace

std::string describe(const PipelineDef& def) {
  std::string out;
  append_description(out, def);
  return out;
}

}  // namespace detail

namespace {
std::string hex(std::uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}
}  // namespace

Pipeline::Pipeline(const Node& node)
    : Pipeline(detail::make_sequence({detail::make_node_step(node.def())})) {}

Pipeline::Pipeline(std::shared_ptr<const detail::PipelineDef> def, std::string name)
    : def_(std::move(def)), name_(name.empty() ? "pipeline" : std::move(name)) {
  if (!def_ || def_->type != detail::PipelineDef::Type::sequence || def_->children.empty()) {
    throw Error(Errc::invalid_argument, "an empty pipeline has nothing to run");
  }
  fingerprint_ = hex(def_->hash);
}

Pipeline Pipeline::named(std::string name) const { return Pipeline(def_, std::move(name)); }

std::size_t Pipeline::node_count() const noexcept {
  std::size_t n = 0;
  auto count = [&n](auto& self, const detail::PipelineDef& d) -> void {
    if (d.type == detail::PipelineDef::Type::node) ++n;
    for (const auto& c : d.children) self(self, *c);
  };
  count(count, *def_);
  return n;
}

Pipeline operator|(const Pipeline& a, const Pipeline& b) {
  detail::check_feed(a.output_type(), detail::last_label(*a.def()), *b.def());
  std::vector<detail::DefPtr> steps;
  steps.reserve(a.size() + b.size());
  steps.insert(steps.end(), a.def()->children.begin(), a.def()->children.end());
  steps.insert(steps.end(), b.def()->children.begin(), b.def()->children.end());
  return Pipeline(detail::make_sequence(std::move(steps)));
}

Pipeline sequence(const std::vector<Pipeline>& steps) {
  if (steps.empty()) throw Error(Errc::invalid_argument, "an empty pipeline has nothing to run");
  std::vector<detail::DefPtr> all;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (i) {
      detail::check_feed(steps[i - 1].output_type(), detail::last_label(*steps[i - 1].def()),
                         *steps[i].def());
    }
    all.insert(all.end(), steps[i].def()->children.begin(), steps[i].def()->children.end());
  }
  return Pipeline(detail::make_sequence(std::move(all)));
}

Pipeline parallel(const std::vector<Pipeline>& branches) {
  if (branches.empty()) {
    throw Error(Errc::invalid_argument, "flux::parallel needs at least one branch, got none");
  }
  auto d = std::make_shared<detail::PipelineDef>();
  d->type = detail::PipelineDef::Type::parallel;
  d->output = TypeInfo{Kind::list, "("};
  d->label = "parallel(";
  for (std::size_t i = 0; i < branches.size(); ++i) {
    const auto& b = branches[i];
    d->children.push_back(b.def());
    d->output.branches.push_back(b.output_type());
    d->output.name += (i ? ", " : "") + b.output_type().name;
    d->label += (i ? ", " : "") + b.describe();
  }
  d->output.name += ")";
  d->label += ")";
  d->hash = detail::combine('p', d->children);
  return Pipeline(detail::make_sequence({d}));
}

}  // namespace flux
