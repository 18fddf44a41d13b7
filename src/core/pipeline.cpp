#include "flux/pipeline.hpp"

#include <cstdio>
#include <mutex>

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

std::string hex(std::uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

std::string describe(const PipelineDef& def) {
  std::string out;
  append_description(out, def);
  return out;
}

/// A sequence of steps as `|` builds it: either a *leaf*, a flat sequence made by
/// Pipeline's constructors, `sequence()` or `parallel()`, or the *join* of two chains,
/// left then right.
///
/// Why not copy the steps into one vector at each `|`: a program that builds its
/// pipeline with `p = p | next` in a loop would copy 1 + 2 + ... + n steps, quadratic
/// (0.35 s for 10,000 nodes). A join costs O(1) and shares both sides, which also
/// keeps `a | b` from touching `a` or `b`. The flat sequence the engine runs, and its
/// hash, are built once, on first use, by walking the leaves in order: O(n).
///
/// Everything but `flat_` and `fingerprint_` of a join is set in the constructor and
/// never changes, so walking a chain needs no lock even while another thread
/// flattens one of its parts; the lazily built members are guarded by `flattened_`.
class Chain {
 public:
  explicit Chain(DefPtr sequence)
      : size_(sequence->children.size()),
        first_(sequence->children.front()),
        last_(sequence->children.back()),
        flat_(std::move(sequence)),
        fingerprint_(hex(flat_->hash)) {}

  Chain(std::shared_ptr<const Chain> left, std::shared_ptr<const Chain> right)
      : size_(left->size_ + right->size_),
        first_(left->first_),
        last_(right->last_),
        left_(std::move(left)),
        right_(std::move(right)) {}

  Chain(const Chain&) = delete;
  Chain& operator=(const Chain&) = delete;

  // A chain built by `p = p | next` in a loop is a list as long as the pipeline;
  // destroying it recursively would take a stack frame per step and overflow on long
  // chains. Instead, unlink iteratively the parts no one else holds.
  ~Chain() {
    std::vector<std::shared_ptr<const Chain>> doomed;
    auto adopt = [&doomed](std::shared_ptr<const Chain>& part) {
      // use_count() == 1: we hold the only reference (there are no weak_ptrs), so no
      // other thread can start sharing it while we unlink it.
      if (part && part.use_count() == 1) doomed.push_back(std::move(part));
    };
    adopt(left_);
    adopt(right_);
    while (!doomed.empty()) {
      std::shared_ptr<const Chain> part = std::move(doomed.back());
      doomed.pop_back();
      // Only we hold `part`, so detaching its parts is invisible to anyone else; every
      // Chain is created non-const (make_shared<Chain>), so the cast is allowed.
      Chain& owned = const_cast<Chain&>(*part);
      adopt(owned.left_);
      adopt(owned.right_);
    }  // `part` dies here with no parts left: no recursion
  }

  std::size_t size() const noexcept { return size_; }
  /// The first and last top-level steps: what composition type-checks.
  const PipelineDef& first_step() const noexcept { return *first_; }
  const PipelineDef& last_step() const noexcept { return *last_; }

  const DefPtr& flat() const {
    if (is_join()) std::call_once(flattened_, [this] { flatten(); });
    return flat_;
  }
  const std::string& fingerprint() const {
    flat();
    return fingerprint_;
  }

 private:
  bool is_join() const noexcept { return left_ != nullptr; }

  // Concatenates the steps of the leaves, left to right. Iterative (an explicit stack
  // of parts still to visit) because a chain can be as deep as it is long. Reads only
  // what the constructors set: a leaf's flat_ and a join's parts.
  void flatten() const {
    std::vector<DefPtr> steps;
    steps.reserve(size_);
    std::vector<const Chain*> todo{this};
    while (!todo.empty()) {
      const Chain* c = todo.back();
      todo.pop_back();
      if (c->is_join()) {
        todo.push_back(c->right_.get());  // visited after everything on the left
        todo.push_back(c->left_.get());
      } else {
        const auto& leaf_steps = c->flat_->children;
        steps.insert(steps.end(), leaf_steps.begin(), leaf_steps.end());
      }
    }
    flat_ = make_sequence(std::move(steps));
    fingerprint_ = hex(flat_->hash);
  }

  std::size_t size_;
  DefPtr first_, last_;
  std::shared_ptr<const Chain> left_, right_;  ///< a join's parts; null for a leaf
  mutable std::once_flag flattened_;
  mutable DefPtr flat_;  ///< a leaf's steps; a join's once flattened
  mutable std::string fingerprint_;
};

}  // namespace detail

Pipeline::Pipeline(const Node& node)
    : Pipeline(detail::make_sequence({detail::make_node_step(node.def())})) {}

Pipeline::Pipeline(std::shared_ptr<const detail::PipelineDef> def, std::string name)
    : name_(name.empty() ? "pipeline" : std::move(name)) {
  if (!def || def->type != detail::PipelineDef::Type::sequence || def->children.empty()) {
    throw Error(Errc::invalid_argument, "an empty pipeline has nothing to run");
  }
  chain_ = std::make_shared<detail::Chain>(std::move(def));
}

Pipeline::Pipeline(std::shared_ptr<const detail::Chain> chain) noexcept
    : chain_(std::move(chain)), name_("pipeline") {}

Pipeline Pipeline::named(std::string name) const {
  Pipeline p = *this;
  p.name_ = name.empty() ? "pipeline" : std::move(name);
  return p;
}

std::size_t Pipeline::size() const noexcept { return chain_->size(); }
const std::string& Pipeline::fingerprint() const { return chain_->fingerprint(); }
const TypeInfo& Pipeline::output_type() const noexcept { return chain_->last_step().output; }
const std::shared_ptr<const detail::PipelineDef>& Pipeline::def() const { return chain_->flat(); }

std::size_t Pipeline::node_count() const {
  std::size_t n = 0;
  auto count = [&n](auto& self, const detail::PipelineDef& d) -> void {
    if (d.type == detail::PipelineDef::Type::node) ++n;
    for (const auto& c : d.children) self(self, *c);
  };
  count(count, *def());
  return n;
}

Pipeline operator|(const Pipeline& a, const Pipeline& b) {
  const detail::PipelineDef& producer = a.chain_->last_step();
  detail::check_feed(producer.output, detail::last_label(producer), b.chain_->first_step());
  return Pipeline(std::make_shared<detail::Chain>(a.chain_, b.chain_));
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
