// C1 compose: building a 10,000-node chain with `|` in a loop, as a program that
// generates its pipeline would (`p = p | next;`).
//
// Flux: `p = p | node` 10,000 times, then `p.fingerprint()` and `p.def()`, which is
// what a run asks for first, so the figure includes whatever `|` deferred.
// Baseline: `flux::sequence(steps)` over the same nodes, which builds the chain in one
// call; the ratio shows what composing step by step costs on top. Nodes are made
// before timing starts: only composition is measured.
//
//   bench_compose [--reps 5] [--nodes 10000]

#include <flux/flux.hpp>

#include "bench_common.hpp"

namespace {

using namespace bench;

const Result k_loop{"C1",       "C1 compose a 10,000-node chain (ms)",
                    "flux",     "Flux: p = p | node, 10,000 times, then fingerprint()",
                    "ms",       "lower",
                    "value<=20"};
const Result k_once{"C1",       "C1 compose a 10,000-node chain (ms)",
                    "baseline", "flux::sequence() over the same nodes in one call",
                    "ms",       "lower",
                    ""};

std::vector<flux::Node> make_nodes(long count) {
  std::vector<flux::Node> nodes;
  nodes.reserve(static_cast<std::size_t>(count));
  for (long i = 0; i < count; ++i) {
    nodes.push_back(flux::node("n" + std::to_string(i), [](std::int64_t x) { return x + 1; }));
  }
  return nodes;
}

double compose_with_pipe(const std::vector<flux::Node>& nodes) {
  auto t0 = Clock::now();
  flux::Pipeline p = nodes.front();
  for (std::size_t i = 1; i < nodes.size(); ++i) p = p | nodes[i];
  // Forces anything composition deferred; a wrong size would mean a broken chain.
  if (p.fingerprint().empty() || !p.def() || p.size() != nodes.size()) std::abort();
  return seconds_since(t0) * 1e3;
}

double compose_in_one_call(const std::vector<flux::Node>& nodes) {
  auto t0 = Clock::now();
  std::vector<flux::Pipeline> steps(nodes.begin(), nodes.end());
  flux::Pipeline p = flux::sequence(steps);
  if (p.fingerprint().empty() || !p.def() || p.size() != nodes.size()) std::abort();
  return seconds_since(t0) * 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  Args args(argc, argv);
  int reps = static_cast<int>(args.num("reps", 5));
  long count = args.num("nodes", 10000);
  emit_meta("bench_compose");
  auto nodes = make_nodes(count);
  for (int rep = 1; rep <= reps; ++rep) {
    if (args.side_enabled("flux")) {
      double ms = compose_with_pipe(nodes);
      note("C1 rep %d: | loop %.2f ms", rep, ms);
      result_line(k_loop, rep, ms).num("nodes", static_cast<double>(count)).emit();
    }
    if (args.side_enabled("baseline")) {
      double ms = compose_in_one_call(nodes);
      note("C1 rep %d: sequence() %.2f ms", rep, ms);
      result_line(k_once, rep, ms).num("nodes", static_cast<double>(count)).emit();
    }
  }
}
