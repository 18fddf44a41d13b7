// W1 chain latency: one run of a linear pipeline of 100 nodes, each `x -> x + 1`;
// per-node latency = wall time of the run / 100 (µs). One run at a time; each
// repetition reports the median over --runs runs.
//
// Baselines, in the same process, alternating with Flux in every repetition:
//  - "raw CAF chain": 100 event-based actors, each sending x + 1 to the next; a
//    scoped_actor sends to the head and receives from the tail (the same blocking
//    hand-off at both ends as Flux's run()/wait()); per hop = wall time / 100.
//  - "raw CAF request/reply": a coordinator actor that requests 100 adder actors in
//    turn, the way Flux's run actor drives its node actors (two messages per node).
//
// Diagnostic row: the latency of a 1-node run (Flux) and of one hop through one actor
// (raw CAF), i.e. the fixed cost of a run that the per-node figure spreads over 100 nodes.
//
// Options: --reps N (5) --runs N (200 Flux, x10 for the baselines) --warmup N (20)
//          --nodes N (100) --threads N (cores) --policy sharing|stealing (both sides)
//          --only flux|baseline --no-single
//          --durability strict|batched (Config::durability; the rows become a variant)

#include <flux/flux.hpp>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "caf_common.hpp"

using namespace bench;

namespace {

const Result k_flux{"W1",      "W1 chain latency (us per node)",
                    "flux",    "Flux: 100-node chain, run() per run",
                    "us/node", "lower",
                    "ratio<=2"};
const Result k_caf_chain{"W1",       "W1 chain latency (us per node)",
                         "baseline", "raw CAF chain of 100 actors, one message through",
                         "us/hop",   "lower",
                         ""};
const Result k_flux_rr{"W1",      "W1 chain latency vs request/reply (us per node)",
                       "flux",    "Flux: 100-node chain, run() per run",
                       "us/node", "lower",
                       ""};
const Result k_caf_rr{"W1",       "W1 chain latency vs request/reply (us per node)",
                      "baseline", "raw CAF coordinator requesting 100 actors in turn",
                      "us/node",  "lower",
                      ""};

// Diagnostic: the fixed cost of a run, which the per-node figure above spreads over 100
// nodes. A 1-node pipeline per run against a 1-actor raw CAF chain (send, reply to the
// scoped_actor).
const Result k_flux_one{"W1",     "W1 single-node run latency (us per run)",
                        "flux",   "Flux: 1-node pipeline, run() per run",
                        "us/run", "lower",
                        ""};
const Result k_caf_one{"W1",       "W1 single-node run latency (us per run)",
                       "baseline", "raw CAF: one actor, scoped_actor send/receive",
                       "us/run",   "lower",
                       ""};

flux::Pipeline make_chain(int nodes) {
  std::vector<flux::Pipeline> steps;
  for (int i = 0; i < nodes; ++i) {
    steps.emplace_back(flux::node("n" + std::to_string(i), [](std::int64_t x) { return x + 1; }));
  }
  return flux::sequence(steps).named("w1_chain");
}

std::vector<double> flux_rep(std::size_t threads, int nodes, int runs, int warmup) {
  flux::Config config;
  set_flux_policy(config);
  set_flux_durability(config);
  config.store = "memory";
  config.threads = threads;
  flux::Runtime rt(config);
  flux::Pipeline chain = make_chain(nodes);
  std::vector<double> per_node;
  for (int i = 0; i < warmup + runs; ++i) {
    auto t0 = Clock::now();
    flux::RunResult r = rt.run(chain, std::int64_t{i});
    auto t1 = Clock::now();
    if (!r.ok() || r.value<std::int64_t>() != i + nodes) {
      throw std::runtime_error("W1 flux: wrong result");
    }
    if (i >= warmup) per_node.push_back(micros_between(t0, t1) / nodes);
  }
  return per_node;
}

caf::behavior hop(caf::event_based_actor* self, caf::actor next) {
  return {[=](std::int64_t x) { self->send(next, x + 1); }};
}

std::vector<double> caf_chain_rep(std::size_t threads, const std::string& policy, int nodes,
                                  int runs, int warmup) {
  CafSystem cs(threads, policy);
  std::vector<double> per_hop;
  std::vector<caf::actor> chain;
  {
    caf::scoped_actor self{cs.sys()};
    caf::actor next = caf::actor_cast<caf::actor>(self);
    for (int i = 0; i < nodes; ++i) {
      next = cs.sys().spawn(hop, next);
      chain.push_back(next);
    }
    for (int i = 0; i < warmup + runs; ++i) {
      std::int64_t got = -1;
      auto t0 = Clock::now();
      self->send(next, std::int64_t{i});
      self->receive([&](std::int64_t v) { got = v; });
      auto t1 = Clock::now();
      if (got != i + nodes) throw std::runtime_error("W1 caf chain: wrong result");
      if (i >= warmup) per_hop.push_back(micros_between(t0, t1) / nodes);
    }
    for (auto& a : chain) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    chain.clear();
  }
  return per_hop;
}

caf::behavior adder(caf::event_based_actor*) {
  return {[](std::int64_t x) { return x + 1; }};
}

using Nodes = std::shared_ptr<const std::vector<caf::actor>>;

void request_step(caf::event_based_actor* self, Nodes nodes, std::size_t i, std::int64_t x,
                  caf::typed_response_promise<std::int64_t> rp) {
  if (i == nodes->size()) {
    rp.deliver(x);
    return;
  }
  self->request((*nodes)[i], caf::infinite, x)
      .then([=](std::int64_t y) { request_step(self, nodes, i + 1, y, rp); },
            [=](caf::error& e) mutable { rp.deliver(std::move(e)); });
}

caf::behavior sequencer(caf::event_based_actor* self, Nodes nodes) {
  return {[=](std::int64_t x) -> caf::result<std::int64_t> {
    auto rp = self->make_response_promise<std::int64_t>();
    request_step(self, nodes, 0, x, rp);
    return rp;
  }};
}

std::vector<double> caf_rr_rep(std::size_t threads, const std::string& policy, int nodes, int runs,
                               int warmup) {
  CafSystem cs(threads, policy);
  std::vector<double> per_node;
  auto actors = std::make_shared<std::vector<caf::actor>>();
  for (int i = 0; i < nodes; ++i) actors->push_back(cs.sys().spawn(adder));
  auto driver = cs.sys().spawn(sequencer, Nodes(actors));
  {
    caf::scoped_actor self{cs.sys()};
    for (int i = 0; i < warmup + runs; ++i) {
      std::int64_t got = -1;
      auto t0 = Clock::now();
      self->request(driver, caf::infinite, std::int64_t{i})
          .receive([&](std::int64_t v) { got = v; },
                   [&](caf::error& e) { throw std::runtime_error(cs.sys().render(e)); });
      auto t1 = Clock::now();
      if (got != i + nodes) throw std::runtime_error("W1 caf request/reply: wrong result");
      if (i >= warmup) per_node.push_back(micros_between(t0, t1) / nodes);
    }
  }
  caf::anon_send_exit(driver, caf::exit_reason::user_shutdown);
  for (auto& a : *actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  return per_node;
}

void emit(const Result& r, int rep, const std::vector<double>& v, int nodes) {
  result_line(r, rep, median(v))
      .num("runs", static_cast<double>(v.size()))
      .num("nodes", nodes)
      .num("mean", mean(v))
      .num("p10", quantile(v, 0.10))
      .num("p90", quantile(v, 0.90))
      .emit();
}

}  // namespace

int main(int argc, char** argv) try {
  Args args(argc, argv);
  parse_durability(args);
  const int reps = static_cast<int>(args.num("reps", 5));
  const int runs = static_cast<int>(args.num("runs", 200));
  const int warmup = static_cast<int>(args.num("warmup", 20));
  const int nodes = static_cast<int>(args.num("nodes", 100));
  const std::size_t threads = scheduler_threads(args);
  const std::string policy = caf_policy(args);
  emit_meta("bench_w1_chain");
  for (int rep = 1; rep <= reps; ++rep) {
    if (args.side_enabled("flux")) {
      auto v = flux_rep(threads, nodes, runs, warmup);
      emit(k_flux, rep, v, nodes);
      emit(k_flux_rr, rep, v, nodes);
      if (!args.has("no-single")) emit(k_flux_one, rep, flux_rep(threads, 1, runs, warmup), 1);
    }
    if (args.side_enabled("baseline")) {
      emit(k_caf_chain, rep, caf_chain_rep(threads, policy, nodes, runs * 10, warmup * 10), nodes);
      emit(k_caf_rr, rep, caf_rr_rep(threads, policy, nodes, runs * 10, warmup * 10), nodes);
      if (!args.has("no-single")) {
        emit(k_caf_one, rep, caf_chain_rep(threads, policy, 1, runs * 10, warmup * 10), 1);
      }
    }
    note("W1 repetition %d/%d done", rep, reps);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_w1_chain: %s\n", e.what());
  return 1;
}
