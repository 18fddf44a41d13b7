// Seed group "Parallel": fan-out/fan-in over nodes and sub-pipelines, order,
// shared state, async branches, history of a parallel, fail fast, invalid use.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <flux/flux.hpp>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using flux::Value;
using Clock = std::chrono::steady_clock;

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

std::int64_t ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

std::string failure_text(const flux::RunResult& r) { return r.error ? r.error->message : ""; }

flux::Node inc() {
  return flux::node("inc", [](std::int64_t x) { return x + 1; });
}
flux::Node dbl() {
  return flux::node("dbl", [](std::int64_t x) { return x * 2; });
}
flux::Node sq() {
  return flux::node("sq", [](std::int64_t x) { return x * x; });
}

/// The history entries of a run, sorted by step id (branches finish in any order).
std::vector<flux::HistoryEntry> history_by_step(const flux::Runtime& rt, const std::string& id) {
  auto info = rt.get_run(id);
  if (!info) return {};
  auto h = info->history;
  std::sort(h.begin(), h.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return h;
}

TEST(Parallel, TwoBranchesEachReceiveTheInputAndOutputAListInBranchOrder) {
  flux::Runtime rt;
  auto r = rt.run(flux::parallel(dbl(), sq()), 3);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.output, Value(Value::List{6, 9}));
  EXPECT_EQ(r.value<std::vector<std::int64_t>>(), (std::vector<std::int64_t>{6, 9}));
}

TEST(Parallel, ThreeBranchesOfDifferentTypes) {
  auto text = flux::node("text", [](std::int64_t x) { return "n=" + std::to_string(x); });
  flux::Runtime rt;
  auto r = rt.run(flux::parallel(inc(), text, sq()), 4);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.output, Value(Value::List{5, "n=4", 16}));
}

TEST(Parallel, AsyncBranchesRunConcurrently) {
  auto slow_async = [](const char* name, std::int64_t add) {
    return flux::node(name, [add](std::int64_t x) {
      return std::async(std::launch::async, [x, add] {
        std::this_thread::sleep_for(200ms);
        return x + add;
      });
    });
  };
  auto a = slow_async("async_a", 1);
  auto b = slow_async("async_b", 2);
  auto c = slow_async("async_c", 3);
  EXPECT_TRUE(a.is_async());
  flux::Runtime rt;
  auto t0 = Clock::now();
  auto r = rt.run(flux::parallel(a, b, c), 10);
  auto elapsed = ms_since(t0);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.output, Value(Value::List{11, 12, 13}));
  EXPECT_LT(elapsed, 500);
}

TEST(Parallel, SharedCounterIncrementedByTenConcurrentBranchesIsExactlyTen) {
  std::vector<flux::Pipeline> branches;
  for (int i = 0; i < 10; ++i) {
    branches.push_back(flux::node("count_" + std::to_string(i),
                                  [](flux::Context& ctx) { return ctx.shared().add("count", 1); }));
  }
  auto total = flux::node(
      "total", [](flux::Context& ctx) { return ctx.shared().get<std::int64_t>("count", -1); });
  flux::Runtime rt;
  auto r = rt.run(flux::parallel(branches) | total);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::int64_t>(), 10);
  EXPECT_EQ(rt.run_keys(r.run_id, flux::Scope::shared).at("count"), Value(10));

  // Every branch saw a distinct counter value: the additions were atomic.
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  std::optional<Value> fan_in;
  for (const auto& e : info->history) {
    if (e.type == flux::HistoryEntry::Type::parallel) fan_in = e.output;
  }
  ASSERT_TRUE(fan_in.has_value());
  auto seen = fan_in->as<std::vector<std::int64_t>>();
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
}

TEST(Parallel, SharedSetGetAndUpdateAcrossBranches) {
  auto owner = flux::node("owner", [](flux::Context& ctx) {
    ctx.shared().set("owner", std::string("branch0"));
    return true;
  });
  std::vector<flux::Pipeline> branches{owner};
  for (int i = 1; i <= 5; ++i) {
    branches.push_back(flux::node("append_" + std::to_string(i), [i](flux::Context& ctx) {
      ctx.shared().update("seen", [i](const Value& old) {
        Value::List l = old.is_null() ? Value::List{} : old.as_list();
        l.push_back(i);
        return Value(l);
      });
      return true;
    }));
  }
  auto read = flux::node("read", [](flux::Context& ctx) {
    auto seen = ctx.shared().get<std::vector<std::int64_t>>("seen", {});
    std::sort(seen.begin(), seen.end());
    if (seen.empty()) return std::string("nothing seen");
    auto snapshot = ctx.shared().snapshot();
    return ctx.shared().get<std::string>("owner", "none") + ":" + std::to_string(seen.size()) +
           ":" + std::to_string(seen.front()) + "-" + std::to_string(seen.back()) + ":" +
           std::to_string(snapshot.size()) + ":" + (ctx.shared().contains("owner") ? "y" : "n");
  });
  flux::Runtime rt;
  auto r = rt.run(flux::parallel(branches) | read);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::string>(), "branch0:5:1-5:2:y");
  auto shared = rt.run_keys(r.run_id, flux::Scope::shared);
  EXPECT_EQ(shared.at("owner"), Value("branch0"));
  ASSERT_TRUE(shared.at("seen").is_list());
  EXPECT_EQ(shared.at("seen").as_list().size(), 5u);
}

TEST(Parallel, ResultOrderIsBranchOrderEvenWhenTheFirstBranchIsSlowest) {
  auto slowest = flux::node("slowest", [](std::int64_t x) {
                   std::this_thread::sleep_for(150ms);
                   return x * 100;
                 }).blocking();
  auto middle = flux::node("middle", [](std::int64_t x) {
                  std::this_thread::sleep_for(50ms);
                  return x * 10;
                }).blocking();
  auto fastest = flux::node("fastest", [](std::int64_t x) { return x; });
  flux::Runtime rt;
  auto r = rt.run(flux::parallel(slowest, middle, fastest), 3);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.output, Value(Value::List{300, 30, 3}));
}

TEST(Parallel, SingleBranchGivesAOneElementList) {
  flux::Runtime rt;
  auto r = rt.run(flux::parallel(inc()), 4);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.output, Value(Value::List{5}));
}

TEST(Parallel, TwelveBranchesKeepTheirOrder) {
  std::vector<flux::Pipeline> branches;
  for (std::int64_t i = 0; i < 12; ++i) {
    branches.push_back(
        flux::node("add_" + std::to_string(i), [i](std::int64_t x) { return x + i; }));
  }
  flux::Runtime rt;
  auto r = rt.run(flux::parallel(branches), 100);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  Value::List expected;
  for (std::int64_t i = 0; i < 12; ++i) expected.push_back(100 + i);
  EXPECT_EQ(r.output, Value(expected));
}

TEST(Parallel, NestedParallelsProduceNestedLists) {
  flux::Runtime rt;
  auto p = flux::parallel(flux::parallel(dbl(), sq()), inc());
  auto r = rt.run(p, 3);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.output, Value(Value::List{Value::List{6, 9}, 4}));

  auto h = history_by_step(rt, r.run_id);
  std::vector<std::string> steps;
  for (const auto& e : h) steps.push_back(e.step + "=" + e.node);
  // Sorted by step id: the outer parallel "0", the inner parallel "0.0.0" (first step of
  // branch 0), its branches, then branch 1 of the outer parallel.
  EXPECT_EQ(steps, (std::vector<std::string>{"0=parallel", "0.0.0=parallel", "0.0.0.0.0=dbl",
                                             "0.0.0.1.0=sq", "0.1.0=inc"}));
  std::size_t parallel_entries = 0;
  for (const auto& e : h) parallel_entries += e.type == flux::HistoryEntry::Type::parallel;
  EXPECT_EQ(parallel_entries, 2u);
}

TEST(Parallel, BranchesCanBeWholeSubPipelines) {
  flux::Runtime rt;
  auto p = inc() | flux::parallel(dbl() | inc(), sq() | dbl() | inc(), inc());
  auto r = rt.run(p, 2);  // 3 -> [7, 19, 4]
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.output, Value(Value::List{7, 19, 4}));

  auto h = history_by_step(rt, r.run_id);
  std::vector<std::string> steps;
  for (const auto& e : h) steps.push_back(e.step + "=" + e.node);
  EXPECT_EQ(steps, (std::vector<std::string>{"0=inc", "1=parallel", "1.0.0=dbl", "1.0.1=inc",
                                             "1.1.0=sq", "1.1.1=dbl", "1.1.2=inc", "1.2.0=inc"}));
}

TEST(Parallel, RecordsOneParallelEntryAndOneEntryPerBranchNode) {
  flux::Runtime rt;
  auto r = rt.run(inc() | flux::parallel(dbl(), sq()), 3);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.output, Value(Value::List{8, 16}));

  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->history.size(), 4u);

  std::vector<flux::HistoryEntry> parallels;
  for (const auto& e : info->history) {
    if (e.type == flux::HistoryEntry::Type::parallel) parallels.push_back(e);
  }
  ASSERT_EQ(parallels.size(), 1u);
  EXPECT_EQ(parallels[0].node, "parallel");
  EXPECT_EQ(parallels[0].step, "1");
  EXPECT_EQ(parallels[0].input, Value(4));
  EXPECT_EQ(parallels[0].output, Value(Value::List{8, 16}));
  EXPECT_TRUE(parallels[0].ok());

  auto h = history_by_step(rt, r.run_id);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[2].step, "1.0.0");
  EXPECT_EQ(h[2].node, "dbl");
  EXPECT_EQ(h[2].type, flux::HistoryEntry::Type::node);
  EXPECT_EQ(h[2].input, Value(4));
  EXPECT_EQ(h[2].output, Value(8));
  EXPECT_EQ(h[3].step, "1.1.0");
  EXPECT_EQ(h[3].node, "sq");
  EXPECT_EQ(h[3].output, Value(16));

  // The parallel's own entry comes after every branch entry in append order.
  const auto& hist = info->history;
  auto pos = std::find_if(hist.begin(), hist.end(), [](const auto& e) {
    return e.type == flux::HistoryEntry::Type::parallel;
  });
  EXPECT_EQ(pos, hist.end() - 1);
}

TEST(Parallel, EachExecutionOfAParallelRecordsItsOwnEntry) {
  flux::Runtime rt;
  auto add = flux::node("add", [](std::int64_t a, std::int64_t b) { return a + b; });
  auto p = flux::parallel(inc(), dbl()) | add | flux::parallel(sq(), inc()) | add;
  auto r = rt.run(p, 3);  // [4, 6] -> 10 -> [100, 11] -> 111
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::int64_t>(), 111);
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  std::vector<std::string> parallel_steps;
  for (const auto& e : info->history) {
    if (e.type == flux::HistoryEntry::Type::parallel) parallel_steps.push_back(e.step);
  }
  EXPECT_EQ(parallel_steps, (std::vector<std::string>{"0", "2"}));
  EXPECT_EQ(info->history.size(), 8u);
}

TEST(Parallel, OneFailingBranchFailsTheRunWithTheBranchNodeAndMessage) {
  auto bad = flux::node(
      "bad", [](std::int64_t) -> std::int64_t { throw std::runtime_error("branch exploded"); });
  auto add = flux::node("add", [](std::int64_t a, std::int64_t b) { return a + b; });
  flux::Runtime rt;
  auto r = rt.run(inc() | flux::parallel(dbl(), bad) | add, 1);
  EXPECT_EQ(r.status, flux::RunStatus::failed);
  EXPECT_TRUE(r.output.is_null());
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->node, "bad");
  EXPECT_EQ(r.error->step, "1.1.0");
  EXPECT_TRUE(Contains(r.error->message, "branch exploded"));
  EXPECT_TRUE(Contains(r.error->message, "bad"));

  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->status, flux::RunStatus::failed);
  ASSERT_TRUE(info->error.has_value());
  EXPECT_EQ(info->error->node, "bad");
  bool parallel_failed = false;
  for (const auto& e : info->history) {
    EXPECT_NE(e.step, "2") << "the step after a failed parallel must not run";
    if (e.node == "bad") {
      ASSERT_TRUE(e.error.has_value());
      EXPECT_TRUE(Contains(*e.error, "branch exploded"));
      EXPECT_TRUE(e.output.is_null());
    }
    if (e.type == flux::HistoryEntry::Type::parallel) {
      parallel_failed = e.error.has_value();
    }
  }
  EXPECT_TRUE(parallel_failed);
}

TEST(Parallel, FailsFastWithoutWaitingForASlowSiblingBranch) {
  auto bad = flux::node(
      "bad", [](std::int64_t) -> std::int64_t { throw std::runtime_error("fast failure"); });
  auto slow = flux::node("slow", [](std::int64_t x) {
                std::this_thread::sleep_for(1500ms);
                return x;
              }).blocking();
  flux::Runtime rt;
  auto t0 = Clock::now();
  auto r = rt.run(flux::parallel(slow, bad), 1);
  auto elapsed = ms_since(t0);
  EXPECT_EQ(r.status, flux::RunStatus::failed);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->node, "bad");
  EXPECT_TRUE(Contains(r.error->message, "fast failure"));
  EXPECT_LT(elapsed, 1000);
}

TEST(Parallel, EmptyBranchListIsAnInvalidArgument) {
  try {
    (void)flux::parallel(std::vector<flux::Pipeline>{});
    ADD_FAILURE() << "parallel of no branches must throw";
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::invalid_argument);
  }
}

TEST(Parallel, DescribeAndNodeCountCoverEveryBranch) {
  auto p = inc() | flux::parallel(dbl(), sq());
  EXPECT_EQ(p.describe(), "inc | parallel(dbl, sq)");
  EXPECT_EQ(p.size(), 2u);
  EXPECT_EQ(p.node_count(), 3u);
  EXPECT_EQ(p.output_type().kind, flux::Kind::list);
  EXPECT_EQ(p.output_type().branches.size(), 2u);
}

}  // namespace
