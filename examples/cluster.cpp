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
//   cluster worker [--store URL] [--id ID] [--listen HOST]
//     Serves the nodes until SIGTERM or Ctrl-C, then drains (finishes its steps) and exits 0.
//   cluster driver [--store URL] [--runs N]
//     Runs the pipeline N times (default 3) and prints each output and, per step, the worker
//     that ran it; exits 0 if every output is as expected.
// The store is --store, else the FLUX_STORE environment variable: redis://host:port.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <flux/flux.hpp>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

flux::Pipeline make_pipeline() {
  auto tokenize = flux::node("tokenize", [](const std::string& text, flux::Context& ctx) {
    ctx.save("sentence", text);  // on a worker: applied by the run's owner, the driver
    std::vector<std::string> words;
    std::istringstream in(text);
    for (std::string w; in >> w;) words.push_back(w);
    return words;
  });
  auto count_words = flux::node("count_words", [](const std::vector<std::string>& words) {
    return static_cast<std::int64_t>(words.size());
  });
  auto count_chars = flux::node("count_chars", [](const std::vector<std::string>& words) {
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

const char* const k_sentences[] = {"the quick brown fox", "jumps over the lazy dog",
                                   "flux runs pipelines on a cluster"};

std::string expected_output(const std::string& sentence) {
  std::istringstream in(sentence);
  std::int64_t words = 0, chars = 0;
  for (std::string w; in >> w;) ++words, chars += static_cast<std::int64_t>(w.size());
  return std::to_string(words) + " words, " + std::to_string(chars) + " letters: " + sentence;
}

int usage() {
  std::fprintf(stderr,
               "usage: cluster worker [--store URL] [--id ID] [--listen HOST]\n"
               "       cluster driver [--store URL] [--runs N]\n");
  return 2;
}

int worker(const std::string& store, const std::string& id, const std::string& listen) {
  flux::WorkerConfig config;
  config.store = store;  // "": FLUX_STORE
  config.id = id;        // "": host:pid:nonce
  if (!listen.empty()) config.listen_host = listen;
  flux::Registry registry = make_registry();
  flux::Worker worker(registry, config);
  std::printf("worker %s serving", worker.id().c_str());
  for (const std::string& name : registry.node_names()) std::printf(" %s", name.c_str());
  std::printf(" on %s:%u\n", config.listen_host.c_str(), static_cast<unsigned>(worker.port()));
  std::fflush(stdout);
  worker.serve_until_signal();  // SIGTERM / SIGINT: drain, withdraw, return
  std::printf("worker %s drained\n", worker.id().c_str());
  return 0;
}

int driver(const std::string& store, int runs) {
  flux::Config config;
  config.store = store;  // "": FLUX_STORE
  config.cluster.enabled = true;
  config.cluster.local_nodes = {"report"};  // too cheap to be worth a network round trip
  flux::Registry registry = make_registry();
  const flux::Pipeline& pipeline = *registry.pipeline("wordcount");
  flux::Runtime rt(config);
  bool as_expected = true;
  for (int i = 0; i < runs; ++i) {
    const std::string sentence = k_sentences[i % std::size(k_sentences)];
    flux::RunResult r = rt.run(pipeline, sentence);
    if (!r.ok()) {
      std::fprintf(stderr, "run %s failed: %s\n", r.run_id.c_str(), r.error->message.c_str());
      return 1;
    }
    std::printf("run %s: %s\n", r.run_id.c_str(), r.value<std::string>().c_str());
    as_expected = as_expected && r.value<std::string>() == expected_output(sentence);
    const std::optional<flux::RunInfo> info = rt.get_run(r.run_id);
    for (const flux::HistoryEntry& e : info->history) {
      if (e.type != flux::HistoryEntry::Type::node) continue;
      std::printf("  step %-6s %-12s attempt %u on %s\n", e.step.c_str(), e.node.c_str(), e.attempt,
                  e.worker.empty() ? "the driver" : ("worker " + e.worker).c_str());
    }
  }
  return as_expected ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string role = argv[1];
  std::string store, id, listen;
  int runs = 3;
  for (int i = 2; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--store") == 0 && has_value) {
      store = argv[++i];
    } else if (std::strcmp(argv[i], "--id") == 0 && has_value && role == "worker") {
      id = argv[++i];
    } else if (std::strcmp(argv[i], "--listen") == 0 && has_value && role == "worker") {
      listen = argv[++i];
    } else if (std::strcmp(argv[i], "--runs") == 0 && has_value && role == "driver") {
      runs = std::atoi(argv[++i]);
    } else {
      return usage();
    }
  }
  try {
    if (role == "worker") return worker(store, id, listen);
    if (role == "driver") return driver(store, runs);
  } catch (const flux::Error& e) {
    std::fprintf(stderr, "cluster %s: %s\n", role.c_str(), e.what());
    return 1;
  }
  return usage();
}
