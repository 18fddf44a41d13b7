#pragma once
// The nodes and pipelines of the cluster tests, shared by the test driver (in the test
// process) and the worker processes (tests/cluster_node_main.cpp): both sides register the
// same names with the same signatures, as a real cluster's binaries do.

#include <chrono>
#include <cstdlib>
#include <flux/flux.hpp>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace flux::test {

/// This process's name in a test cluster (FLUX_TEST_NAME), e.g. "A".
inline std::string process_name() {
  const char* n = std::getenv("FLUX_TEST_NAME");
  return n ? n : "driver";
}

inline Node inc_node() {
  return node("inc", [](std::int64_t x) { return x + 1; });
}
/// Branch i of W2: x * i.
inline Node times_node(int i) {
  return node("times" + std::to_string(i), [i](std::int64_t x) { return x * i; });
}
inline Node sum_node() {
  return node("sum", [](const std::vector<std::int64_t>& xs) {
    std::int64_t s = 0;
    for (auto x : xs) s += x;
    return s;
  });
}
/// Sleeps FLUX_TEST_SLOW_MS (default 1500) milliseconds, then x + 1: a step long enough to
/// kill, stop or cut off its worker in the middle of it.
inline Node slow_node() {
  return node("slow",
              [](std::int64_t x) {
                const char* ms = std::getenv("FLUX_TEST_SLOW_MS");
                std::this_thread::sleep_for(std::chrono::milliseconds(ms ? std::atoi(ms) : 1500));
                return x + 1;
              })
      .blocking();
}
/// Waits up to 10 s for ctx.cancelled(), checking every 10 ms; once it turns true, writes
/// "cancelled <ms before its deadline, or -1>" to the file FLUX_TEST_MARKS/<run id> (if set):
/// what the step saw where it ran. Returns x.
inline Node patient_node() {
  return node("patient",
              [](std::int64_t x, Context& ctx) {
                const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
                while (!ctx.cancelled() && std::chrono::steady_clock::now() < until) {
                  std::this_thread::sleep_for(std::chrono::milliseconds(10));
                }
                const char* dir = std::getenv("FLUX_TEST_MARKS");
                if (dir && ctx.cancelled()) {
                  long long left = -1;
                  if (auto d = ctx.deadline()) {
                    left = std::chrono::duration_cast<std::chrono::milliseconds>(
                               *d - std::chrono::system_clock::now())
                               .count();
                  }
                  std::ofstream(std::string(dir) + "/" + ctx.run_id())
                      << "cancelled " << left << "\n";
                }
                return x;
              })
      .blocking();
}
/// Adds 1 to the shared counter 100 times.
inline Node count_node() {
  return node("count", [](std::int64_t x, Context& ctx) {
    for (int i = 0; i < 100; ++i) ctx.shared().add("counter", 1);
    return x;
  });
}
/// Saves where it ran under kv "written_by"; returns its input.
inline Node put_kv_node() {
  return node("put_kv", [](std::int64_t x, Context& ctx) {
    ctx.save("written_by", process_name());
    ctx.save("x", x);
    return x;
  });
}
/// Reads kv "written_by" and "x"; returns "<written_by>/<x>/read by <this process>".
inline Node get_kv_node() {
  return node("get_kv", [](std::int64_t, Context& ctx) {
    return ctx.get<std::string>("written_by", "?") + "/" +
           std::to_string(ctx.get<std::int64_t>("x", -1)) + "/read by " + process_name() +
           "/keys " + std::to_string(ctx.keys().size()) + "/history " +
           std::to_string(ctx.history().size());
  });
}
/// Where the step ran: the name of the process.
inline Node where_node() {
  return node("where", [](std::int64_t) { return process_name(); });
}

/// inc | parallel(times1 .. times10) | sum: W2's shape. Input 1 gives 2 * 55 = 110.
inline Pipeline w2_pipeline() {
  std::vector<Pipeline> branches;
  for (int i = 1; i <= 10; ++i) branches.emplace_back(times_node(i));
  return (inc_node() | parallel(branches) | sum_node()).named("w2");
}

/// slow | inc | slow: long enough to kill its driver between the steps. Input 1 gives 4.
inline Pipeline slow3_pipeline() {
  auto slow = slow_node();
  return (slow | inc_node() | slow).named("slow3");
}

/// The pipelines a driver of the tests knows by name (for `cluster_node driver` and adoption).
inline Registry cluster_pipelines() {
  Registry r;
  r.add(w2_pipeline()).add(slow3_pipeline());
  return r;
}

/// Every node above (a worker may host a subset: FLUX_TEST_NODES="inc,slow").
inline Registry cluster_registry(const std::string& only = {}) {
  std::vector<Node> all{inc_node(),    sum_node(),    slow_node(),  count_node(),
                        put_kv_node(), get_kv_node(), where_node(), patient_node()};
  for (int i = 1; i <= 10; ++i) all.push_back(times_node(i));
  Registry r;
  for (const Node& n : all) {
    if (only.empty() || ("," + only + ",").find("," + n.name() + ",") != std::string::npos) {
      r.add(n);
    }
  }
  return r;
}

}  // namespace flux::test
