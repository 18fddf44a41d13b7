// The browser test's application: registered pipelines, runs made by a real Runtime on a real
// redis-server, and the dashboard served with this registry (so that resume and retry, which
// run the pipeline's code, are possible too).
//
//   dashboard_demo serve --store URL --prefix P [--token T]   seeds the scenario's runs,
//       prints them as one JSON line, then serves the dashboard on a free port
//   dashboard_demo fill N --store URL --prefix P             N small runs (measurements)
//   dashboard_demo run PIPELINE --input JSON ...             flux::main's verbs (live runs;
//       `driver` for the `flux` tool's dashboard, with DASHBOARD_DEMO_MENDED=1 to mend flaky)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <flux/flux.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cli/json.hpp"
#include "dashboard/server.hpp"

namespace {

std::atomic<bool> g_mended{false};

flux::Pipeline chain(const std::string& name, int length, int sleep_ms) {
  auto step = flux::node(name, [sleep_ms](std::int64_t x) {
    if (sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    return x + 1;
  });
  flux::Pipeline p = step;
  for (int i = 1; i < length; ++i) p = p | step;
  return p;
}

flux::Registry make_registry() {
  auto inc = flux::node("inc", [](std::int64_t x, flux::Context& ctx) {
    ctx.save("last_input", x);
    return x + 1;
  });
  auto dbl = flux::node("dbl", [](std::int64_t x) { return x * 2; });
  auto boom = flux::node("boom", [](std::int64_t) -> std::int64_t {
    throw std::runtime_error("boom: the input was refused");
  });
  auto flaky = flux::node("flaky", [](std::int64_t x) -> std::int64_t {
    if (!g_mended) throw std::runtime_error("flaky: not mended yet");
    return x * 10;
  });
  auto xss = flux::node("xss", [](std::int64_t) {
    return std::string("<script>alert(1)</script><img src=x onerror=alert(2)>");
  });
  auto nap = flux::node("nap", [](std::int64_t ms) {
               std::this_thread::sleep_for(std::chrono::milliseconds(ms));
               return ms;
             }).blocking();
  // A node that starts a child run of inc | dbl: a parent and a child to link.
  auto spawn = flux::node("spawn", [inc, dbl](std::int64_t x, flux::Context& ctx) {
    return ctx.start(inc | dbl, x);
  });
  flux::Registry registry;
  registry.add((inc | dbl).named("double-inc"));
  registry.add((inc | spawn).named("parent"));
  registry.add((inc | boom).named("fails"));
  registry.add((inc | flaky).named("mendable"));
  registry.add((inc | xss).named("xss"));
  registry.add((nap | inc).named("sleepy"));
  // 4 parallel branches of 50 steps: 200 step attempts on 4 lanes of the owner.
  std::vector<flux::Pipeline> branches;
  for (int b = 0; b < 4; ++b) branches.push_back(chain("tick" + std::to_string(b), 50, 2));
  registry.add((inc | flux::parallel(branches)).named("wide-200"));
  // 10 branches of 100 quick steps: a 1,000-step run for measurements.
  std::vector<flux::Pipeline> big;
  for (int b = 0; b < 10; ++b) big.push_back(chain("step" + std::to_string(b), 100, 0));
  registry.add(flux::parallel(big).named("big-1000"));
  // 12 steps of 500 ms: a run to watch live.
  registry.add(chain("slowstep", 12, 500).named("live"));
  return registry;
}

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback = "") {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  return fallback;
}

flux::Config store_config(int argc, char** argv) {
  flux::Config config;
  config.store = arg(argc, argv, "--store");
  config.key_prefix = arg(argc, argv, "--prefix", "flux");
  return config;
}

int serve(int argc, char** argv, const flux::Registry& registry) {
  flux::cli::Json seeded;
  {
    flux::Runtime rt(store_config(argc, argv));
    auto id = [&](const char* pipeline, flux::Value input) {
      return rt.start_value(*registry.pipeline(pipeline), std::move(input)).wait().run_id;
    };
    seeded["double-inc"] = {id("double-inc", flux::Value(std::int64_t{1})),
                            id("double-inc", flux::Value(std::int64_t{2})),
                            id("double-inc", flux::Value(std::int64_t{3}))};
    seeded["fails"] = id("fails", flux::Value(std::int64_t{1}));
    seeded["mendable"] = id("mendable", flux::Value(std::int64_t{4}));
    seeded["xss"] = id("xss", flux::Value(std::int64_t{0}));
    seeded["wide-200"] = id("wide-200", flux::Value(std::int64_t{0}));
  }
  g_mended = true;  // a retry of the mendable run now succeeds
  std::printf("%s\n", flux::cli::dump(seeded).c_str());
  std::fflush(stdout);
  flux::dashboard::Options options;
  options.store = arg(argc, argv, "--store");
  options.prefix = arg(argc, argv, "--prefix", "flux");
  options.token = arg(argc, argv, "--token");
  options.registry = &registry;
  return flux::dashboard::serve_until_signal(options, arg(argc, argv, "--listen", "127.0.0.1:0"));
}

int fill(int argc, char** argv, const flux::Registry& registry) {
  const long n = std::stol(argv[2]);
  flux::Runtime rt(store_config(argc, argv));
  std::vector<flux::RunHandle> batch;
  for (long i = 0; i < n; ++i) {
    batch.push_back(rt.start_value(*registry.pipeline(i % 10 == 0 ? "fails" : "double-inc"),
                                   flux::Value(static_cast<std::int64_t>(i))));
    if (batch.size() == 500) {
      for (auto& h : batch) h.wait();
      batch.clear();
    }
  }
  for (auto& h : batch) h.wait();
  std::printf("%ld runs\n", n);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  flux::Registry registry = make_registry();
  if (const char* mended = std::getenv("DASHBOARD_DEMO_MENDED"); mended && mended[0] == '1') {
    g_mended = true;
  }
  try {
    if (argc > 1 && std::string(argv[1]) == "serve") return serve(argc, argv, registry);
    if (argc > 2 && std::string(argv[1]) == "fill") return fill(argc, argv, registry);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dashboard_demo: %s\n", e.what());
    return 1;
  }
  return flux::main(argc, argv, registry);
}
