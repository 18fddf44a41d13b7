// Deeply nested Values. Beyond flux::k_max_value_depth a Value is still built, copied,
// compared, printed and destroyed without recursion (a million levels, also under ASan);
// wherever it would enter Flux -- run input (before anything runs), node output, a parallel's
// gathered outputs, kv and shared state -- it is refused with an error naming where, its depth
// and the limit. Values at exactly the limit work end to end, in memory and in Redis.

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <flux/flux.hpp>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support/redis_server.hpp"

namespace {

using flux::Value;

constexpr std::size_t kLimit = flux::k_max_value_depth;

// [[[...leaf...]]], `depth` lists deep. Built with emplace: a braced Value::List{...} would
// copy its initializer list, i.e. the whole chain, at every level.
Value nested_lists(std::size_t depth, Value leaf = Value(1)) {
  Value v = std::move(leaf);
  for (std::size_t i = 0; i < depth; ++i) {
    Value::List l;
    l.emplace_back(std::move(v));
    v = Value(std::move(l));
  }
  return v;
}

Value nested_maps(std::size_t depth, Value leaf = Value(1)) {
  Value v = std::move(leaf);
  for (std::size_t i = 0; i < depth; ++i) {
    Value::Map m;
    m.emplace("k", std::move(v));
    v = Value(std::move(m));
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Value itself: nothing recurses

TEST(DeepValue, AMillionNestedListsAreCopiedComparedPrintedAndDestroyed) {
  constexpr std::size_t kDepth = 1'000'000;
  Value v = nested_lists(kDepth);
  EXPECT_EQ(v.depth(), kDepth);
  {
    const Value copy = v;  // NOLINT(performance-unnecessary-copy-initialization): the copy is
                           // what is tested
    EXPECT_EQ(copy.depth(), kDepth);
    EXPECT_TRUE(copy == v);
    EXPECT_FALSE(nested_lists(kDepth, Value(2)) == v);  // differs only at the bottom
    EXPECT_FALSE(nested_lists(kDepth - 1) == v);
  }  // the copy is destroyed here
  EXPECT_EQ(v.to_string(12), "[[[[[[[[[[[[...");
  const std::string all = v.to_string();
  EXPECT_EQ(all.size(), 2 * kDepth + 1);
  EXPECT_EQ(all.substr(kDepth - 2, 5), "[[1]]");
  // Assigning a part of a value to the value itself (the old contents own the part).
  v = std::move(v.as_list()[0]);
  EXPECT_EQ(v.depth(), kDepth - 1);
  v = v.as_list()[0];
  EXPECT_EQ(v.depth(), kDepth - 2);
}  // v (a million levels deep) is destroyed here

TEST(DeepValue, AMillionNestedMapsAndAWideDeepTreeAreDestroyed) {
  Value maps = nested_maps(1'000'000, Value("leaf"));
  EXPECT_EQ(maps.depth(), 1'000'000u);
  EXPECT_EQ(maps.to_string(20), "{\"k\": {\"k\": {\"k\": {\"...");
  Value::List wide;
  for (int i = 0; i < 100; ++i) wide.push_back(nested_lists(10'000 + i));
  const Value tree(std::move(wide));
  EXPECT_EQ(tree.depth(), 10'000u + 99 + 1);
  const Value copy = tree;
  EXPECT_EQ(copy, tree);
}

// ---------------------------------------------------------------------------------------------
// Where values enter Flux, in every store

flux::test::RedisServer& redis() { return flux::test::shared_redis(); }

std::string next_prefix() { return flux::test::unique_prefix("deep"); }

class DeepValues : public ::testing::TestWithParam<std::string> {
 protected:
  flux::Config config() {
    if (GetParam() == "memory") return flux::Config{.store = "memory"};
    return flux::Config{.store = redis().url(), .key_prefix = next_prefix()};
  }
};

TEST_P(DeepValues, ARunInputDeeperThanTheLimitIsRefusedBeforeAnythingRuns) {
  flux::Runtime rt(config());
  std::atomic<int> calls{0};
  const flux::Pipeline id = flux::Pipeline(flux::node("id", [&](Value x) {
                              ++calls;
                              return x;
                            })).named("deep");
  for (const std::size_t depth : {std::size_t{100'000}, kLimit + 1}) {
    try {
      (void)rt.run(id, nested_lists(depth));
      ADD_FAILURE() << "a run input " << depth << " levels deep was accepted";
    } catch (const flux::Error& e) {
      EXPECT_EQ(e.code(), flux::Errc::invalid_argument);
      EXPECT_EQ(std::string(e.what()), "pipeline 'deep': the run input is nested " +
                                           std::to_string(depth) +
                                           " levels deep (lists/maps); the limit is 60 "
                                           "(flux::k_max_value_depth)");
    }
  }
  EXPECT_EQ(calls.load(), 0);
  EXPECT_TRUE(rt.list_runs().empty());
  // The runtime is unharmed.
  EXPECT_EQ(rt.run(id, 7).output, Value(7));
}

TEST_P(DeepValues, AChildRunInputDeeperThanTheLimitFailsTheNodeThatStartsIt) {
  flux::Runtime rt(config());
  std::atomic<int> calls{0};
  const flux::Pipeline child = flux::Pipeline(flux::node("id", [&](Value x) {
                                 ++calls;
                                 return x;
                               })).named("child");
  auto spawn = flux::node("spawn", [&](flux::Context& ctx) {
    return ctx.start_value(child, nested_lists(kLimit + 1));
  });
  const auto r = rt.run(spawn);
  ASSERT_EQ(r.status, flux::RunStatus::failed);
  EXPECT_EQ(r.error->node, "spawn");
  EXPECT_EQ(r.error->message,
            "node 'spawn' (step 0) failed: pipeline 'child': the run input is nested 61 levels "
            "deep (lists/maps); the limit is 60 (flux::k_max_value_depth)");
  EXPECT_EQ(calls.load(), 0);
}

TEST_P(DeepValues, ValuesAtTheLimitWorkEndToEnd) {
  flux::Runtime rt(config());
  // Lists and maps, at the limit as input, node output, kv and shared state.
  const Value input = nested_maps(kLimit / 2, nested_lists(kLimit / 2));
  const Value made = nested_lists(kLimit - 1, Value("leaf"));
  auto keep = flux::node("keep", [](Value x, flux::Context& ctx) {
    ctx.save("in", x);
    ctx.shared().set("in", x);
    return x;
  });
  auto make = flux::node("make", [&](Value, flux::Context& ctx) {
    ctx.shared().update("grown", [&](const Value&) { return Value(Value::List{made}); });
    return Value(Value::List{made});
  });
  const auto r = rt.run(keep | make, input);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.output, Value(Value::List{made}));
  EXPECT_EQ(r.output.depth(), kLimit);

  const auto info = rt.get_run(r.run_id);  // from the store (decoded, for Redis)
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->input, input);
  EXPECT_EQ(info->output, r.output);
  ASSERT_EQ(info->history.size(), 2u);
  EXPECT_EQ(info->history[0].input, input);
  EXPECT_EQ(info->history[0].output, input);
  EXPECT_EQ(info->history[1].output, r.output);
  EXPECT_EQ(rt.run_keys(r.run_id, flux::Scope::kv).at("in"), input);
  const Value::Map shared = rt.run_keys(r.run_id, flux::Scope::shared);
  EXPECT_EQ(shared.at("in"), input);
  EXPECT_EQ(shared.at("grown").depth(), kLimit);
}

TEST_P(DeepValues, ANodeOutputTooDeepFailsItsStepNamingNodeStepAndDepth) {
  flux::Runtime rt(config());
  std::atomic<int> after{0};
  auto id = flux::node("id", [](Value x) { return x; });
  auto wrap = flux::node("wrap", [](Value x) { return Value(Value::List{std::move(x)}); });
  auto bury = flux::node("bury", [](Value) { return nested_lists(100'000); });
  auto next = flux::node("next", [&](Value x) {
    ++after;
    return x;
  });
  struct Case {
    flux::Pipeline pipeline;
    std::string node;
    std::size_t depth;
  };
  for (auto& c :
       {Case{id | wrap | next, "wrap", kLimit + 1}, Case{id | bury | next, "bury", 100'000}}) {
    const auto r = rt.run(c.pipeline, nested_lists(kLimit));
    ASSERT_EQ(r.status, flux::RunStatus::failed) << c.node;
    ASSERT_TRUE(r.error.has_value());
    const std::string message = "node '" + c.node + "' (step 1) returned a value nested " +
                                std::to_string(c.depth) +
                                " levels deep (lists/maps); the limit is 60 "
                                "(flux::k_max_value_depth)";
    EXPECT_EQ(r.error->node, c.node);
    EXPECT_EQ(r.error->step, "1");
    EXPECT_EQ(r.error->message, message);
    const auto info = rt.get_run(r.run_id);
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->status, flux::RunStatus::failed);
    ASSERT_EQ(info->history.size(), 2u);
    EXPECT_EQ(info->history[1].node, c.node);
    EXPECT_EQ(info->history[1].error, std::optional<std::string>(message));
  }
  EXPECT_EQ(after.load(), 0);
}

TEST_P(DeepValues, AParallelWhoseGatheredOutputsAreTooDeepFailsNamingIt) {
  flux::Runtime rt(config());
  auto a = flux::node("a", [](Value x) { return x; });
  auto b = flux::node("b", [](Value x) { return x; });
  const auto r = rt.run(flux::parallel(a, b), nested_lists(kLimit));  // each branch: 60
  ASSERT_EQ(r.status, flux::RunStatus::failed);
  EXPECT_EQ(r.error->step, "0");
  EXPECT_EQ(r.error->message,
            "parallel (step 0) gathered its branches' outputs into a list nested 61 levels deep "
            "(lists/maps); the limit is 60 (flux::k_max_value_depth)");
  const auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->status, flux::RunStatus::failed);
}

TEST_P(DeepValues, StoringTooDeepAValueFailsTheNodeNamingTheKey) {
  flux::Runtime rt(config());
  struct Case {
    const char* node;
    std::function<void(flux::Context&)> store;
    std::string what;
  };
  const std::vector<Case> cases = {
      {"save", [](flux::Context& ctx) { ctx.save("deep", nested_lists(kLimit + 1)); },
       "kv key \"deep\": the value is nested 61 levels deep"},
      {"set", [](flux::Context& ctx) { ctx.shared().set("deep", nested_maps(100'000)); },
       "shared key \"deep\": the value is nested 100000 levels deep"},
      {"update",
       [](flux::Context& ctx) {
         ctx.shared().update("deep", [](const Value&) { return nested_lists(kLimit + 1); });
       },
       "shared key \"deep\": the value is nested 61 levels deep"},
  };
  for (const Case& c : cases) {
    auto n = flux::node(c.node, [&c](flux::Context& ctx) { c.store(ctx); });
    const auto r = rt.run(n);
    ASSERT_EQ(r.status, flux::RunStatus::failed) << c.node;
    EXPECT_EQ(r.error->node, c.node);
    EXPECT_EQ(r.error->message, "node '" + std::string(c.node) + "' (step 0) failed: " + c.what +
                                    " (lists/maps); the limit is 60 (flux::k_max_value_depth)");
    // Nothing was stored.
    EXPECT_TRUE(rt.run_keys(r.run_id, flux::Scope::kv).empty());
    EXPECT_TRUE(rt.run_keys(r.run_id, flux::Scope::shared).empty());
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, DeepValues, ::testing::Values("memory", "redis"),
                         [](const auto& info) { return info.param; });

}  // namespace
