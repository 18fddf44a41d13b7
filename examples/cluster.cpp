// Cluster: one binary, two roles. Workers serve the pipeline's nodes; a driver owns the runs
// and places each step on a worker that hosts its node (same name, same signature). Both find
// each other through the Redis store, so both roles build the same registry (make_registry).
//
//                             +--> count_words --+
//   sentence --> tokenize --> |                  | --> report --> "4 words, 16 letters: <sentence>"
//                             +--> count_chars --+
//
//   tokenize, count_words, count_chars: placed on workers; report: run by the driver itself
//   (Config::cluster.local_nodes).
//
// tokenize saves the sentence in the run's kv store from the worker (the call goes to the
// driver that owns the run); report, run by the driver itself, reads it back.
//
// main is one call, flux::main, which gives the binary the standard verbs (`cluster --help`):
//   cluster worker [--store URL] [--id ID] [--listen HOST] [--capacity N]
//     Serves the nodes until SIGTERM or Ctrl-C, then drains (finishes its steps) and exits 0.
//   cluster run wordcount --input '"the quick brown fox"' --cluster --wait
//     Runs the pipeline here, placing its steps on workers; prints the run id and the output.
//   cluster driver   /   cluster run wordcount --input '"..."' --submit --wait
//     A driver adopts submitted (and orphaned) runs and places their steps on workers.
// The store is --store, else the FLUX_STORE environment variable: redis://host:port. Every
// option has such a variable (see --help), so a container needs no flags.
// FLUX_EXAMPLE_STEP_MS makes each worker step take that long (the compose test sets it, so
// that steps are in flight when it kills a worker).
#include <chrono>
#include <cstdlib>
#include <flux/flux.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

/// FLUX_EXAMPLE_STEP_MS: how long each worker step takes (default: no delay).
void pace() {
  static const long ms = [] {
    const char* v = std::getenv("FLUX_EXAMPLE_STEP_MS");
    return v ? std::atol(v) : 0L;
  }();
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

flux::Pipeline make_pipeline() {
  auto tokenize = flux::node("tokenize", [](const std::string& text, flux::Context& ctx) {
    pace();
    ctx.save("sentence", text);  // on a worker: applied by the run's owner, the driver
    std::vector<std::string> words;
    std::istringstream in(text);
    for (std::string w; in >> w;) words.push_back(w);
    return words;
  });
  auto count_words = flux::node("count_words", [](const std::vector<std::string>& words) {
    pace();
    return static_cast<std::int64_t>(words.size());
  });
  auto count_chars = flux::node("count_chars", [](const std::vector<std::string>& words) {
    pace();
    std::int64_t n = 0;
    for (const std::string& w : words) n += static_cast<std::int64_t>(w.size());
    return n;
  });
  auto report =
      flux::node("report", [](std::int64_t words, std::int64_t chars, flux::Context& ctx) {
        return std::to_string(words) + " words, " + std::to_string(chars) +
               " letters: " + ctx.get<std::string>("sentence", "?");
      });
  return (tokenize | flux::parallel(count_words, count_chars) | report).named("wordcount");
}

/// What both roles agree on: the pipeline by name, and its nodes by name and signature.
flux::Registry make_registry() {
  flux::Registry registry;
  registry.add(make_pipeline());
  return registry;
}

}  // namespace

int main(int argc, char** argv) {
  flux::MainOptions options;
  options.config.cluster.local_nodes = {"report"};  // too cheap to be worth a network round trip
  return flux::main(argc, argv, make_registry(), options);
}
