// Seed group "Edge cases": empty and odd inputs, data types, failures and how
// they are recorded, large and deep pipelines, mixed parallel outputs,
// varargs, long and Unicode strings, and many runs in flight at once.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <flux/flux.hpp>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using namespace std::chrono_literals;
using flux::Value;

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text.substr(0, 300) << "\" does not contain \"" << part << "\"";
}

std::string failure_text(const flux::RunResult& r) { return r.error ? r.error->message : ""; }

flux::Node inc() {
  return flux::node("inc", [](std::int64_t x) { return x + 1; });
}

TEST(EdgeCases, NoInputGivesANullToANodeTakingAValue) {
  auto what = flux::node("what", [](const Value& v) { return v; });
  auto kind =
      flux::node("kind", [](const Value& v) { return std::string(flux::to_string(v.kind())); });
  flux::Runtime rt;
  auto r = rt.run(what);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_TRUE(r.output.is_null());
  auto r2 = rt.run(kind);
  ASSERT_TRUE(r2.ok()) << failure_text(r2);
  EXPECT_EQ(r2.value<std::string>(), "null");
  // An explicit null input behaves the same.
  auto r3 = rt.run(kind, Value());
  ASSERT_TRUE(r3.ok()) << failure_text(r3);
  EXPECT_EQ(r3.value<std::string>(), "null");
  // And an empty optional decodes as empty.
  auto opt = flux::node("opt", [](std::optional<std::int64_t> x) { return x ? *x : -1; });
  auto r4 = rt.run(opt);
  ASSERT_TRUE(r4.ok()) << failure_text(r4);
  EXPECT_EQ(r4.value<std::int64_t>(), -1);
}

TEST(EdgeCases, NoInputToANodeTakingAnIntFailsTheRunWithATypeMessage) {
  flux::Runtime rt;
  auto r = rt.run(inc());
  EXPECT_EQ(r.status, flux::RunStatus::failed);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->node, "inc");
  EXPECT_TRUE(Contains(r.error->message, "int64"));
  EXPECT_TRUE(Contains(r.error->message, "null"));
}

TEST(EdgeCases, NumericTypesPassThroughExactly) {
  auto scale = flux::node("scale", [](double x) { return x * 1.5; });
  auto neg = flux::node("neg", [](std::int64_t x) { return -x; });
  auto same = flux::node("same", [](std::int64_t x) { return x; });
  auto narrow = flux::node("narrow", [](std::int32_t x) { return x * 2; });
  flux::Runtime rt;
  EXPECT_DOUBLE_EQ(rt.run(scale, 2.0).value<double>(), 3.0);
  EXPECT_DOUBLE_EQ(rt.run(scale, std::int64_t{4}).value<double>(), 6.0);  // int widens to float
  EXPECT_EQ(rt.run(neg, std::int64_t{-5}).value<std::int64_t>(), 5);
  const std::int64_t big = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(rt.run(same, big).value<std::int64_t>(), big);
  EXPECT_EQ(rt.run(same, std::numeric_limits<std::int64_t>::min()).value<std::int64_t>(),
            std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(rt.run(narrow, 21).value<std::int32_t>(), 42);

  auto too_big = rt.run(narrow, std::int64_t{5000000000});
  EXPECT_EQ(too_big.status, flux::RunStatus::failed);
  ASSERT_TRUE(too_big.error.has_value());
  EXPECT_TRUE(Contains(too_big.error->message, "5000000000"));
  EXPECT_TRUE(Contains(too_big.error->message, "int32"));
}

TEST(EdgeCases, ListsAndDictsFlowThroughNodes) {
  auto rev = flux::node("rev", [](std::vector<std::int64_t> xs) {
    std::reverse(xs.begin(), xs.end());
    return xs;
  });
  auto tag = flux::node("tag", [](std::map<std::string, std::int64_t> m) {
    m["count"] = static_cast<std::int64_t>(m.size());
    return m;
  });
  flux::Runtime rt;
  auto r = rt.run(rev, std::vector<std::int64_t>{1, 2, 3});
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.output, Value(Value::List{3, 2, 1}));
  auto empty = rt.run(rev, std::vector<std::int64_t>{});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty.output, Value(Value::List{}));

  auto d = rt.run(tag, std::map<std::string, std::int64_t>{{"a", 1}, {"b", 2}});
  ASSERT_TRUE(d.ok()) << failure_text(d);
  EXPECT_EQ(d.output, Value(Value::Map{{"a", 1}, {"b", 2}, {"count", 2}}));
  auto empty_map = rt.run(tag, std::map<std::string, std::int64_t>{});
  ASSERT_TRUE(empty_map.ok());
  EXPECT_EQ(empty_map.output, Value(Value::Map{{"count", 0}}));
}

TEST(EdgeCases, ZeroValuesAndEmptyStringsAreRealOutputs) {
  auto zero = flux::node("zero", [](std::int64_t x) { return x * 0; });
  auto empty = flux::node("empty", [](const std::string& s) { return s.substr(0, 0); });
  auto length = flux::node(
      "length", [](const std::string& s) { return static_cast<std::int64_t>(s.size()); });
  flux::Runtime rt;
  auto r = rt.run(zero, 12);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_TRUE(r.output.is_int());
  EXPECT_EQ(r.value<std::int64_t>(), 0);

  auto e = rt.run(empty | length, std::string("abc"));
  ASSERT_TRUE(e.ok()) << failure_text(e);
  EXPECT_EQ(e.value<std::int64_t>(), 0);

  auto s = rt.run(empty, std::string(""));
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s.output.is_string());
  EXPECT_EQ(s.value<std::string>(), "");

  auto z = rt.run(inc(), 0);
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z.value<std::int64_t>(), 1);
}

TEST(EdgeCases, FalseIsPassedAndReturnedAsABoolean) {
  auto negate = flux::node("negate", [](bool b) { return !b; });
  auto is_even = flux::node("is_even", [](std::int64_t x) { return x % 2 == 0; });
  flux::Runtime rt;
  auto r = rt.run(negate, false);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.output, Value(true));
  auto f = rt.run(is_even, 3);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f.output.is_bool());
  EXPECT_FALSE(f.value<bool>());
  auto twice = rt.run(negate | negate, false);
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice.output, Value(false));
}

TEST(EdgeCases, AnExceptionInANodeFailsTheRunNamingNodeStepAndMessage) {
  auto writer = flux::node("writer", [](std::int64_t x, flux::Context& ctx) -> std::int64_t {
    ctx.save("before_throw", x);
    throw std::runtime_error("disk full");
  });
  auto after = flux::node("after", [](std::int64_t x) { return x; });
  flux::Runtime rt;
  auto r = rt.run(inc() | writer | after, 1);
  EXPECT_EQ(r.status, flux::RunStatus::failed);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.output.is_null());
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->node, "writer");
  EXPECT_EQ(r.error->step, "1");
  EXPECT_TRUE(Contains(r.error->message, "disk full"));
  EXPECT_TRUE(Contains(r.error->message, "writer"));

  // The store says the same, and keeps what happened before the failure.
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->status, flux::RunStatus::failed);
  ASSERT_TRUE(info->error.has_value());
  EXPECT_EQ(*info->error, *r.error);
  ASSERT_EQ(info->history.size(), 2u);
  EXPECT_EQ(info->history[0].node, "inc");
  EXPECT_EQ(info->history[0].output, Value(2));
  EXPECT_TRUE(info->history[0].ok());
  const auto& last = info->history.back();
  EXPECT_EQ(last.node, "writer");
  EXPECT_EQ(last.step, "1");
  EXPECT_EQ(last.input, Value(2));
  EXPECT_TRUE(last.output.is_null());
  ASSERT_TRUE(last.error.has_value());
  EXPECT_TRUE(Contains(*last.error, "disk full"));
  EXPECT_FALSE(last.ok());
  EXPECT_EQ(rt.run_keys(r.run_id).at("before_throw"), Value(2));
}

TEST(EdgeCases, ANonStandardExceptionStillFailsTheRunCleanly) {
  auto odd = flux::node("odd", [](std::int64_t x) -> std::int64_t { throw x; });
  flux::Runtime rt;
  auto r = rt.run(odd, 3);
  EXPECT_EQ(r.status, flux::RunStatus::failed);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->node, "odd");
  EXPECT_EQ(r.error->step, "0");
  EXPECT_FALSE(r.error->message.empty());
  // The runtime is still usable.
  EXPECT_EQ(rt.run(inc(), 1).value<std::int64_t>(), 2);
}

TEST(EdgeCases, ValueOfAFailedRunThrowsTheFailureMessage) {
  auto boom = flux::node(
      "boom", [](std::int64_t) -> std::int64_t { throw std::runtime_error("no value here"); });
  flux::Runtime rt;
  auto r = rt.run(boom, 1);
  ASSERT_EQ(r.status, flux::RunStatus::failed);
  try {
    (void)r.value<std::int64_t>();
    ADD_FAILURE() << "value() of a failed run must throw";
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::node_failed);
    EXPECT_TRUE(Contains(e.what(), "no value here"));
  }
  EXPECT_THROW(r.throw_if_failed(), flux::Error);
  auto ok = rt.run(inc(), 1);
  EXPECT_NO_THROW(ok.throw_if_failed());
}

TEST(EdgeCases, TenParallelBranches) {
  std::vector<flux::Pipeline> branches;
  for (std::int64_t i = 0; i < 10; ++i) {
    branches.push_back(
        flux::node("mul_" + std::to_string(i), [i](std::int64_t x) { return x * i; }));
  }
  auto sum = flux::node("sum", [](const std::vector<std::int64_t>& xs) {
    return std::accumulate(xs.begin(), xs.end(), std::int64_t{0});
  });
  flux::Runtime rt;
  auto r = rt.run(flux::parallel(branches), 2);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::vector<std::int64_t>>(),
            (std::vector<std::int64_t>{0, 2, 4, 6, 8, 10, 12, 14, 16, 18}));
  auto total = rt.run(flux::parallel(branches) | sum, 2);
  ASSERT_TRUE(total.ok()) << failure_text(total);
  EXPECT_EQ(total.value<std::int64_t>(), 90);
}

TEST(EdgeCases, TwentyStepDeepPipelineRecordsTwentyEntries) {
  std::vector<flux::Pipeline> steps;
  for (int i = 0; i < 20; ++i) {
    steps.push_back(flux::node("step" + std::to_string(i), [](std::int64_t x) { return x * 2; }));
  }
  flux::Runtime rt;
  auto r = rt.run(flux::sequence(steps), 1);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::int64_t>(), 1 << 20);
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->history.size(), 20u);
  EXPECT_EQ(info->history[19].node, "step19");
  EXPECT_EQ(info->history[19].step, "19");
  EXPECT_EQ(info->history[19].input, Value(1 << 19));
}

TEST(EdgeCases, NodesWithoutReturnValuesPassNullOn) {
  auto side_effect = flux::node(
      "side_effect", [](std::int64_t x, flux::Context& ctx) { ctx.shared().set("x", x); });
  auto after_void =
      flux::node("after_void", [](std::optional<std::int64_t> in, flux::Context& ctx) {
        return std::string(in ? "value" : "nothing") + ":" +
               std::to_string(ctx.shared().get<std::int64_t>("x", -1));
      });
  auto any = flux::node("any", [](const Value& v) { return v.is_null(); });
  flux::Runtime rt;
  auto r = rt.run(side_effect | after_void, 4);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::string>(), "nothing:4");
  auto r2 = rt.run(side_effect | any, 4);
  ASSERT_TRUE(r2.ok()) << failure_text(r2);
  EXPECT_EQ(r2.output, Value(true));
  auto r3 = rt.run(side_effect, 4);
  ASSERT_TRUE(r3.ok());
  EXPECT_TRUE(r3.output.is_null());
}

TEST(EdgeCases, ParallelOfDifferentReturnTypesFeedsATupleOrThreeParameters) {
  auto number = flux::node("number", [](std::int64_t x) { return x; });
  auto text = flux::node(
      "text", [](std::int64_t x) { return std::string(static_cast<std::size_t>(x), '*'); });
  auto list = flux::node("list", [](std::int64_t x) {
    return std::vector<std::int64_t>(static_cast<std::size_t>(x), x);
  });
  auto as_tuple = flux::node(
      "as_tuple", [](const std::tuple<std::int64_t, std::string, std::vector<std::int64_t>>& t) {
        return std::to_string(std::get<0>(t)) + "|" + std::get<1>(t) + "|" +
               std::to_string(std::get<2>(t).size());
      });
  auto as_params = flux::node(
      "as_params", [](std::int64_t n, const std::string& s, const std::vector<std::int64_t>& l) {
        return std::to_string(n) + "/" + s + "/" + std::to_string(l.size());
      });
  auto branches = flux::parallel(number, text, list);
  flux::Runtime rt;
  auto raw = rt.run(branches, 3);
  ASSERT_TRUE(raw.ok()) << failure_text(raw);
  EXPECT_EQ(raw.output, Value(Value::List{3, "***", Value::List{3, 3, 3}}));
  auto t = rt.run(branches | as_tuple, 3);
  ASSERT_TRUE(t.ok()) << failure_text(t);
  EXPECT_EQ(t.value<std::string>(), "3|***|3");
  auto p = rt.run(branches | as_params, 2);
  ASSERT_TRUE(p.ok()) << failure_text(p);
  EXPECT_EQ(p.value<std::string>(), "2/**/2");
}

TEST(EdgeCases, VarargsNodeTakesAllParallelOutputsAsOneVector) {
  std::vector<flux::Pipeline> five;
  for (std::int64_t i = 1; i <= 5; ++i) {
    five.push_back(flux::node("plus_" + std::to_string(i), [i](std::int64_t x) { return x + i; }));
  }
  auto varargs = flux::node("varargs", [](const std::vector<std::int64_t>& args) {
    std::string out = std::to_string(args.size()) + ":";
    for (auto a : args) out += std::to_string(a) + ",";
    return out;
  });
  flux::Runtime rt;
  auto r = rt.run(flux::parallel(five) | varargs, 10);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::string>(), "5:11,12,13,14,15,");
}

TEST(EdgeCases, SharedStateAndPersistenceTogether) {
  auto step = [](const char* name) {
    return flux::node(name, [](std::int64_t x, flux::Context& ctx) {
      auto n = ctx.shared().add("calls", 1);
      ctx.save(ctx.node_name(), n);
      return x + n;
    });
  };
  auto report = flux::node("report", [](std::int64_t x, flux::Context& ctx) {
    auto keys = ctx.keys();
    std::sort(keys.begin(), keys.end());
    std::string out = std::to_string(x) + ":";
    for (const auto& k : keys) out += k + "=" + std::to_string(ctx.get<std::int64_t>(k, -1)) + ";";
    return out + "calls=" + std::to_string(ctx.shared().get<std::int64_t>("calls", -1));
  });
  flux::Runtime rt;
  auto r = rt.run(step("a") | step("b") | step("c") | report, 0);  // 0+1+2+3
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::string>(), "6:a=1;b=2;c=3;calls=3");
  EXPECT_EQ(rt.run_keys(r.run_id, flux::Scope::kv), (Value::Map{{"a", 1}, {"b", 2}, {"c", 3}}));
  EXPECT_EQ(rt.run_keys(r.run_id, flux::Scope::shared), (Value::Map{{"calls", 3}}));
}

TEST(EdgeCases, UnicodeStringsSurviveNodesKvAndHistory) {
  const std::string text = "héllo wörld ✓ 日本語 🚀";
  auto echo = flux::node("echo", [](const std::string& s, flux::Context& ctx) {
    ctx.save("text", s);
    return s + "!";
  });
  flux::Runtime rt;
  auto r = rt.run(echo, text);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::string>(), text + "!");
  EXPECT_EQ(rt.run_keys(r.run_id).at("text"), Value(text));
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->history.size(), 1u);
  EXPECT_EQ(info->history[0].input, Value(text));
  EXPECT_EQ(info->history[0].output, Value(text + "!"));
  EXPECT_EQ(info->input, Value(text));
}

TEST(EdgeCases, HundredThousandCharacterStringsThroughAPipelineAndHistory) {
  const std::string big(100000, 'q');
  auto upper = flux::node("upper", [](std::string s) {
    for (char& c : s) c = static_cast<char>(c - 'a' + 'A');
    return s;
  });
  auto size =
      flux::node("size", [](const std::string& s) { return static_cast<std::int64_t>(s.size()); });
  flux::Runtime rt;
  auto r = rt.run(upper, big);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::string>(), std::string(100000, 'Q'));
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->history.size(), 1u);
  EXPECT_EQ(info->history[0].input.as_string().size(), 100000u);
  EXPECT_EQ(info->history[0].input, Value(big));
  EXPECT_EQ(info->history[0].output, Value(std::string(100000, 'Q')));

  auto n = rt.run(upper | size, big);
  ASSERT_TRUE(n.ok()) << failure_text(n);
  EXPECT_EQ(n.value<std::int64_t>(), 100000);
}

TEST(EdgeCases, NestedDataStructuresThroughAPipeline) {
  using Nested = std::vector<std::map<std::string, std::vector<std::int64_t>>>;
  auto total = flux::node("total", [](const Nested& rows) {
    std::map<std::string, std::int64_t> sums;
    for (const auto& row : rows)
      for (const auto& [k, v] : row)
        sums[k] += std::accumulate(v.begin(), v.end(), std::int64_t{0});
    return sums;
  });
  auto keep = flux::node("keep", [](const Value& v) { return v; });
  Nested input{{{"a", {1, 2}}, {"b", {}}}, {}, {{"a", {10}}, {"c", {3, 4}}}};
  flux::Runtime rt;
  auto r = rt.run(total, input);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.output, Value(Value::Map{{"a", 13}, {"b", 0}, {"c", 7}}));

  Value deep = Value::Map{
      {"users",
       Value::List{Value::Map{{"name", "ada"},
                              {"roles", Value::List{"admin", "dev"}},
                              {"meta", Value::Map{{"age", 36}, {"active", true}}}},
                   Value::Map{{"name", "bob"}, {"roles", Value::List{}}, {"meta", Value::Map{}}}}},
      {"count", 2},
      {"blob", flux::Bytes{std::byte{1}, std::byte{2}}},
      {"ratio", 0.25},
      {"none", Value()}};
  auto k = rt.run(keep | keep, deep);
  ASSERT_TRUE(k.ok()) << failure_text(k);
  EXPECT_EQ(k.output, deep);
  auto info = rt.get_run(k.run_id);
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->history.size(), 2u);
  EXPECT_EQ(info->history[1].output, deep);
}

TEST(EdgeCases, AThousandRunsInFlightAtOnceHaveIsolatedResults) {
  auto own = flux::node("own", [](std::int64_t x, flux::Context& ctx) {
    ctx.save("input", x);
    std::this_thread::yield();
    return ctx.get<std::int64_t>("input", -1) * 2;
  });
  auto check = flux::node("check", [](std::int64_t y, flux::Context& ctx) {
    return y == ctx.get<std::int64_t>("input", -1) * 2 ? y : -y;
  });
  auto p = own | check;
  flux::Runtime rt;
  std::vector<flux::RunHandle> handles;
  handles.reserve(1000);
  for (std::int64_t i = 0; i < 1000; ++i) handles.push_back(rt.start(p, i));
  std::vector<std::string> ids;
  for (std::int64_t i = 0; i < 1000; ++i) {
    auto r = handles[static_cast<std::size_t>(i)].wait_for(60s);
    ASSERT_TRUE(r.has_value()) << "run " << i << " did not end";
    ASSERT_TRUE(r->ok()) << failure_text(*r);
    EXPECT_EQ(r->value<std::int64_t>(), 2 * i);
    EXPECT_EQ(rt.run_keys(r->run_id).at("input"), Value(i));
    ids.push_back(r->run_id);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end());
  EXPECT_GE(rt.list_runs(flux::RunFilter{flux::RunStatus::completed, 0}).size(), 1000u);
}

TEST(EdgeCases, AFailingRunNextToSucceedingOnesDoesNotAffectThem) {
  auto picky = flux::node("picky", [](std::int64_t x) {
    if (x == 7) throw std::runtime_error("seven is unlucky");
    return x * 10;
  });
  flux::Runtime rt;
  std::vector<flux::RunHandle> handles;
  for (std::int64_t i = 0; i < 20; ++i) handles.push_back(rt.start(picky | inc(), i));
  for (std::int64_t i = 0; i < 20; ++i) {
    auto r = handles[static_cast<std::size_t>(i)].wait_for(30s);
    ASSERT_TRUE(r.has_value());
    if (i == 7) {
      EXPECT_EQ(r->status, flux::RunStatus::failed);
      ASSERT_TRUE(r->error.has_value());
      EXPECT_EQ(r->error->node, "picky");
      EXPECT_TRUE(Contains(r->error->message, "seven is unlucky"));
    } else {
      ASSERT_TRUE(r->ok()) << "run " << i << ": " << failure_text(*r);
      EXPECT_EQ(r->value<std::int64_t>(), i * 10 + 1);
    }
  }
}

}  // namespace
