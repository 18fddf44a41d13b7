// Quickstart: a pipeline with a fan-out, run on the embedded runtime.
//
//            +--> dbl --+
//   3 -> inc |          | -> add -> 24
//            +--> sq ---+
//
// inc(3) = 4; dbl(4) = 8 and sq(4) = 16 run in parallel; add(8, 16) = 24.
#include <cstdio>
#include <flux/flux.hpp>

int main() {
  auto inc = flux::node("inc", [](std::int64_t x) { return x + 1; });
  auto dbl = flux::node("dbl", [](std::int64_t x) { return x * 2; });
  auto sq = flux::node("sq", [](std::int64_t x) { return x * x; });
  auto add = flux::node("add", [](std::int64_t a, std::int64_t b, flux::Context& ctx) {
    ctx.save("last_sum", a + b);  // per-run key/value store
    return a + b;
  });

  auto pipeline = (inc | flux::parallel(dbl, sq) | add).named("quickstart");

  flux::Runtime rt;  // local actor system, in-memory store
  flux::RunResult r = rt.run(pipeline, 3);
  if (!r.ok()) {
    std::fprintf(stderr, "run failed: %s\n", r.error->message.c_str());
    return 1;
  }
  std::printf("%s(3) = %lld   [run %s]\n", pipeline.describe().c_str(),
              static_cast<long long>(r.value<std::int64_t>()), r.run_id.c_str());

  auto info = rt.get_run(r.run_id);
  for (const flux::HistoryEntry& e : info->history) {
    std::printf("  step %-6s %-10s %s -> %s  (%lld us)\n", e.step.c_str(), e.node.c_str(),
                e.input.to_string().c_str(), e.output.to_string().c_str(),
                static_cast<long long>(e.duration.count() / 1000));
  }
  std::printf("  kv: %s\n", flux::Value(rt.run_keys(r.run_id)).to_string().c_str());
  return r.value<std::int64_t>() == 24 ? 0 : 1;
}
