// W2 fan-out/fan-in latency: `inc | parallel(b1..b10) | sum`, branch i: x -> x * i,
// sum adds the 10 results. One run at a time; each repetition reports the median
// per-run wall latency (µs) over --runs (1000) sequential runs.
//
// Baseline, in the same process, alternating with Flux in every repetition: a raw
// CAF coordinator actor doing the same hops — request the `inc` actor, request the
// 10 branch actors at once and gather their replies in branch order, request the
// `sum` actor, reply — driven by a scoped_actor request/receive per run (the same
// blocking hand-off as Flux's run()/wait()).
//
// Options: --reps N (5) --runs N (1000) --warmup N (100) --threads N (cores)
//          --policy sharing|stealing (both sides) --only flux|baseline

#include <flux/flux.hpp>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "caf_common.hpp"

using namespace bench;

namespace {

constexpr int k_branches = 10;

const Result k_flux{"W2",      "W2 fan-out/fan-in latency (us per run)",
                    "flux",    "Flux: inc | parallel(b1..b10) | sum, run() per run",
                    "us/run",  "lower",
                    "ratio<=2"};
const Result k_caf{"W2",       "W2 fan-out/fan-in latency (us per run)",
                   "baseline", "raw CAF coordinator: inc, 10 workers, gather, sum",
                   "us/run",   "lower",
                   ""};

std::int64_t expected(std::int64_t x) { return (x + 1) * (k_branches * (k_branches + 1) / 2); }

flux::Pipeline make_pipeline() {
  auto inc = flux::node("inc", [](std::int64_t x) { return x + 1; });
  std::vector<flux::Pipeline> branches;
  for (std::int64_t i = 1; i <= k_branches; ++i) {
    branches.emplace_back(
        flux::node("b" + std::to_string(i), [i](std::int64_t x) { return x * i; }));
  }
  auto sum = flux::node("sum", [](const std::vector<std::int64_t>& v) {
    return std::accumulate(v.begin(), v.end(), std::int64_t{0});
  });
  return (inc | flux::parallel(branches) | sum).named("w2_fanout");
}

std::vector<double> flux_rep(std::size_t threads, int runs, int warmup) {
  flux::Config config;
  set_flux_policy(config);
  config.store = "memory";
  config.threads = threads;
  flux::Runtime rt(config);
  flux::Pipeline p = make_pipeline();
  std::vector<double> lat;
  for (int i = 0; i < warmup + runs; ++i) {
    auto t0 = Clock::now();
    flux::RunResult r = rt.run(p, std::int64_t{i});
    auto t1 = Clock::now();
    if (!r.ok() || r.value<std::int64_t>() != expected(i)) {
      throw std::runtime_error("W2 flux: wrong result");
    }
    if (i >= warmup) lat.push_back(micros_between(t0, t1));
  }
  return lat;
}

struct Workers {
  caf::actor inc, sum;
  std::vector<caf::actor> branches;
};

caf::behavior inc_actor(caf::event_based_actor*) {
  return {[](std::int64_t x) { return x + 1; }};
}
caf::behavior mul_actor(caf::event_based_actor*, std::int64_t i) {
  return {[i](std::int64_t x) { return x * i; }};
}
caf::behavior sum_actor(caf::event_based_actor*) {
  return {[](const std::vector<std::int64_t>& v) {
    return std::accumulate(v.begin(), v.end(), std::int64_t{0});
  }};
}

caf::behavior coordinator(caf::event_based_actor* self, std::shared_ptr<const Workers> w) {
  return {[=](std::int64_t x) -> caf::result<std::int64_t> {
    auto rp = self->make_response_promise<std::int64_t>();
    auto fail = [=](caf::error& e) mutable { rp.deliver(std::move(e)); };
    self->request(w->inc, caf::infinite, x)
        .then(
            [=](std::int64_t y) {
              struct Gather {
                std::vector<std::int64_t> out;
                std::size_t pending;
              };
              auto g = std::make_shared<Gather>();
              g->out.resize(w->branches.size());
              g->pending = w->branches.size();
              for (std::size_t b = 0; b < w->branches.size(); ++b) {
                self->request(w->branches[b], caf::infinite, y)
                    .then(
                        [=](std::int64_t z) {
                          g->out[b] = z;
                          if (--g->pending != 0) return;
                          self->request(w->sum, caf::infinite, std::move(g->out))
                              .then([=](std::int64_t s) mutable { rp.deliver(s); }, fail);
                        },
                        fail);
              }
            },
            fail);
    return rp;
  }};
}

std::vector<double> caf_rep(std::size_t threads, const std::string& policy, int runs, int warmup) {
  CafSystem cs(threads, policy);
  auto w = std::make_shared<Workers>();
  w->inc = cs.sys().spawn(inc_actor);
  w->sum = cs.sys().spawn(sum_actor);
  for (std::int64_t i = 1; i <= k_branches; ++i)
    w->branches.push_back(cs.sys().spawn(mul_actor, i));
  auto coord = cs.sys().spawn(coordinator, std::shared_ptr<const Workers>(w));
  std::vector<double> lat;
  {
    caf::scoped_actor self{cs.sys()};
    for (int i = 0; i < warmup + runs; ++i) {
      std::int64_t got = -1;
      auto t0 = Clock::now();
      self->request(coord, caf::infinite, std::int64_t{i})
          .receive([&](std::int64_t v) { got = v; },
                   [&](caf::error& e) { throw std::runtime_error(cs.sys().render(e)); });
      auto t1 = Clock::now();
      if (got != expected(i)) throw std::runtime_error("W2 caf: wrong result");
      if (i >= warmup) lat.push_back(micros_between(t0, t1));
    }
  }
  caf::anon_send_exit(coord, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(w->inc, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(w->sum, caf::exit_reason::user_shutdown);
  for (auto& a : w->branches) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  return lat;
}

void emit(const Result& r, int rep, const std::vector<double>& v) {
  result_line(r, rep, median(v))
      .num("runs", static_cast<double>(v.size()))
      .num("mean", mean(v))
      .num("p10", quantile(v, 0.10))
      .num("p90", quantile(v, 0.90))
      .num("p99", quantile(v, 0.99))
      .emit();
}

}  // namespace

int main(int argc, char** argv) try {
  Args args(argc, argv);
  const int reps = static_cast<int>(args.num("reps", 5));
  const int runs = static_cast<int>(args.num("runs", 1000));
  const int warmup = static_cast<int>(args.num("warmup", 100));
  const std::size_t threads = scheduler_threads(args);
  const std::string policy = caf_policy(args);
  emit_meta("bench_w2_fanout");
  for (int rep = 1; rep <= reps; ++rep) {
    if (args.side_enabled("flux")) emit(k_flux, rep, flux_rep(threads, runs, warmup));
    if (args.side_enabled("baseline")) emit(k_caf, rep, caf_rep(threads, policy, runs, warmup));
    note("W2 repetition %d/%d done", rep, reps);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_w2_fanout: %s\n", e.what());
  return 1;
}
