// Seed group "Node": sync and async nodes, attributes, Context injection,
// several arguments, "kwargs", void nodes, invalid nodes and blocking nodes.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <flux/flux.hpp>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace nodetest {

struct Params {
  std::string greeting;
  std::string name;
  std::int64_t times = 0;
};

}  // namespace nodetest

FLUX_STRUCT(nodetest::Params, greeting, name, times)

namespace {

using namespace std::chrono_literals;
using flux::Value;
using Clock = std::chrono::steady_clock;

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

struct Caught {
  flux::Errc code;
  std::string what;
};

template <class E = flux::Error, class F>
std::optional<Caught> catch_error(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return Caught{e.code(), e.what()};
  }
  return std::nullopt;
}

std::int64_t ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

TEST(Node, SingleSyncNodeRunsThroughARuntime) {
  auto inc = flux::node("inc", [](std::int64_t x) { return x + 1; });
  flux::Runtime rt;
  flux::RunResult r = rt.run(inc, 41);
  ASSERT_EQ(r.status, flux::RunStatus::completed) << (r.error ? r.error->message : "");
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.error.has_value());
  EXPECT_EQ(r.output, Value(42));
  EXPECT_EQ(r.value<std::int64_t>(), 42);
  EXPECT_FALSE(r.run_id.empty());
}

TEST(Node, AsyncNodeReturningAFutureIsAwaited) {
  auto fetch = flux::node("fetch", [](std::int64_t x) {
    return std::async(std::launch::async, [x] {
      std::this_thread::sleep_for(20ms);
      return x * 10;
    });
  });
  EXPECT_TRUE(fetch.is_async());
  EXPECT_FALSE(fetch.is_blocking());
  EXPECT_EQ(fetch.result_type().name, "int64");

  flux::Runtime rt;
  auto r = rt.run(fetch | flux::node("inc", [](std::int64_t x) { return x + 1; }), 7);
  ASSERT_TRUE(r.ok()) << (r.error ? r.error->message : "");
  EXPECT_EQ(r.value<std::int64_t>(), 71);
}

TEST(Node, AsyncNodeWhoseFutureThrowsFailsTheRunWithTheMessage) {
  auto fetch = flux::node("fetch", [](std::int64_t x) {
    return std::async(std::launch::async, [x]() -> std::int64_t {
      throw std::runtime_error("connection refused for " + std::to_string(x));
    });
  });
  flux::Runtime rt;
  auto r = rt.run(fetch, 5);
  EXPECT_EQ(r.status, flux::RunStatus::failed);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->node, "fetch");
  EXPECT_EQ(r.error->step, "0");
  EXPECT_TRUE(Contains(r.error->message, "connection refused for 5"));
  EXPECT_TRUE(r.output.is_null());
}

TEST(Node, AttributesDescribeNameModeAndTypes) {
  auto add =
      flux::node("add", [](std::int64_t a, std::int64_t b, flux::Context&) { return a + b; });
  EXPECT_EQ(add.name(), "add");
  EXPECT_FALSE(add.is_async());
  EXPECT_FALSE(add.is_blocking());
  ASSERT_EQ(add.parameter_types().size(), 2u);
  EXPECT_EQ(add.parameter_types()[0].name, "int64");
  EXPECT_EQ(add.parameter_types()[1].name, "int64");
  EXPECT_EQ(add.result_type().name, "int64");

  auto join = flux::node("join", [](const std::vector<std::string>& xs, const std::string& sep) {
    std::string out;
    for (const auto& x : xs) out += (out.empty() ? "" : sep) + x;
    return out;
  });
  ASSERT_EQ(join.parameter_types().size(), 2u);
  EXPECT_EQ(join.parameter_types()[0].name, "list<string>");
  EXPECT_EQ(join.parameter_types()[1].name, "string");
  EXPECT_EQ(join.result_type().name, "string");

  auto blocking = add.blocking();
  EXPECT_TRUE(blocking.is_blocking());
  EXPECT_FALSE(add.is_blocking());
  EXPECT_EQ(blocking.name(), "add");
  EXPECT_EQ(blocking.parameter_types().size(), 2u);
}

TEST(Node, ContextParameterIsInjectedInFirstMiddleOrLastPosition) {
  auto first = flux::node("first", [](flux::Context& ctx, std::int64_t x) {
    return ctx.node_name() + "@" + ctx.step_id() + ":" + std::to_string(x);
  });
  auto middle = flux::node("middle", [](std::int64_t a, flux::Context& ctx, std::int64_t b) {
    return ctx.node_name() + ":" + std::to_string(a * 10 + b);
  });
  auto last = flux::node("last", [](std::int64_t a, std::int64_t b, flux::Context& ctx) {
    return ctx.node_name() + ":" + std::to_string(a - b) + ":attempt" +
           std::to_string(ctx.attempt());
  });
  EXPECT_EQ(first.parameter_types().size(), 1u);
  EXPECT_EQ(middle.parameter_types().size(), 2u);
  EXPECT_EQ(last.parameter_types().size(), 2u);

  flux::Runtime rt;
  auto r1 = rt.run(first, 5);
  ASSERT_TRUE(r1.ok()) << (r1.error ? r1.error->message : "");
  EXPECT_EQ(r1.value<std::string>(), "first@0:5");

  auto r2 = rt.run(middle, 2, 5);
  ASSERT_TRUE(r2.ok()) << (r2.error ? r2.error->message : "");
  EXPECT_EQ(r2.value<std::string>(), "middle:25");

  auto r3 = rt.run(last, 9, 4);
  ASSERT_TRUE(r3.ok()) << (r3.error ? r3.error->message : "");
  EXPECT_EQ(r3.value<std::string>(), "last:5:attempt1");
}

TEST(Node, NodeWithOnlyAContextIgnoresItsInput) {
  auto who =
      flux::node("who", [](flux::Context& ctx) { return ctx.node_name() + "/" + ctx.step_id(); });
  EXPECT_TRUE(who.parameter_types().empty());
  flux::Runtime rt;
  auto r = rt.run(flux::node("inc", [](std::int64_t x) { return x + 1; }) | who, 99);
  ASSERT_TRUE(r.ok()) << (r.error ? r.error->message : "");
  EXPECT_EQ(r.value<std::string>(), "who/1");
}

TEST(Node, SeveralRunArgumentsAreSpreadOverTheFirstNodesParameters) {
  auto describe = flux::node("describe", [](std::int64_t n, const std::string& word, bool loud) {
    std::string s;
    for (std::int64_t i = 0; i < n; ++i) s += word;
    return loud ? s + "!" : s;
  });
  flux::Runtime rt;
  auto r = rt.run(describe, std::int64_t{3}, std::string("ab"), true);
  ASSERT_TRUE(r.ok()) << (r.error ? r.error->message : "");
  EXPECT_EQ(r.value<std::string>(), "ababab!");

  auto r2 = rt.run(describe, std::int64_t{2}, std::string("x"), false);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2.value<std::string>(), "xx");
}

TEST(Node, SeveralParametersAreFedFromAParallelsOutputsInBranchOrder) {
  auto dbl = flux::node("dbl", [](std::int64_t x) { return x * 2; });
  auto sq = flux::node("sq", [](std::int64_t x) { return x * x; });
  auto sub = flux::node("sub", [](std::int64_t a, std::int64_t b) { return a - b; });
  flux::Runtime rt;
  auto r = rt.run(flux::parallel(dbl, sq) | sub, 5);  // [10, 25] -> 10 - 25
  ASSERT_TRUE(r.ok()) << (r.error ? r.error->message : "");
  EXPECT_EQ(r.value<std::int64_t>(), -15);
}

TEST(Node, WrongNumberOfRunArgumentsFailsTheRunNamingTheNode) {
  auto sub = flux::node("sub", [](std::int64_t a, std::int64_t b) { return a - b; });
  flux::Runtime rt;
  auto r = rt.run(sub, 1, 2, 3);
  EXPECT_EQ(r.status, flux::RunStatus::failed);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->node, "sub");
  EXPECT_TRUE(Contains(r.error->message, "sub"));
}

TEST(Node, KeywordArgumentsMapToAFluxStruct) {
  auto greet = flux::node("greet", [](const nodetest::Params& p) {
    std::string out;
    for (std::int64_t i = 0; i < p.times; ++i) out += p.greeting + " " + p.name + ";";
    return out;
  });
  ASSERT_EQ(greet.parameter_types().size(), 1u);
  EXPECT_TRUE(greet.parameter_types()[0].is_struct);

  flux::Runtime rt;
  auto r = rt.run(greet, nodetest::Params{"hi", "ada", 2});
  ASSERT_TRUE(r.ok()) << (r.error ? r.error->message : "");
  EXPECT_EQ(r.value<std::string>(), "hi ada;hi ada;");

  // The same keywords given as a plain map.
  auto r2 = rt.run(greet, Value(Value::Map{{"greeting", "yo"}, {"name", "bob"}, {"times", 1}}));
  ASSERT_TRUE(r2.ok()) << (r2.error ? r2.error->message : "");
  EXPECT_EQ(r2.value<std::string>(), "yo bob;");
}

TEST(Node, KeywordArgumentsMissingAFieldFailTheRunNamingTheField) {
  auto greet = flux::node("greet", [](const nodetest::Params& p) { return p.name; });
  flux::Runtime rt;
  auto r = rt.run(greet, Value(Value::Map{{"greeting", "yo"}, {"name", "bob"}}));
  EXPECT_EQ(r.status, flux::RunStatus::failed);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->node, "greet");
  EXPECT_TRUE(Contains(r.error->message, "times"));
  EXPECT_TRUE(Contains(r.error->message, "greet"));
}

TEST(Node, KeywordArgumentsMapToAStringToValueMap) {
  auto kw = flux::node("kw", [](const std::map<std::string, Value>& args) {
    std::string keys;
    for (const auto& [k, v] : args) keys += k + "=" + v.to_string() + ";";
    return keys;
  });
  flux::Runtime rt;
  auto r = rt.run(kw, Value(Value::Map{{"b", "x"}, {"a", 1}, {"c", Value::List{true}}}));
  ASSERT_TRUE(r.ok()) << (r.error ? r.error->message : "");
  EXPECT_EQ(r.value<std::string>(), "a=1;b=\"x\";c=[true];");
}

TEST(Node, VoidNodeProducesNull) {
  auto sink = flux::node("sink", [](std::int64_t x, flux::Context& ctx) { ctx.save("seen", x); });
  EXPECT_EQ(sink.result_type().kind, flux::Kind::null);
  flux::Runtime rt;
  auto r = rt.run(sink, 8);
  ASSERT_TRUE(r.ok()) << (r.error ? r.error->message : "");
  EXPECT_TRUE(r.output.is_null());
  EXPECT_EQ(rt.run_keys(r.run_id, flux::Scope::kv).at("seen"), Value(8));
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->history.size(), 1u);
  EXPECT_TRUE(info->history[0].output.is_null());
  EXPECT_TRUE(info->history[0].ok());
}

TEST(Node, IntegerParametersAreNamedAsTheSignatureHasThem) {
  auto half = flux::node("half", [](int x) { return x / 2; });
  auto small = flux::node("small", [](std::uint8_t x) { return x; });
  EXPECT_EQ(half.parameter_types()[0].name, "int");
  EXPECT_EQ(half.result_type().name, "int");
  EXPECT_EQ(small.parameter_types()[0].name, "uint8");

  // At composition: "expects int", not the int64 every integer is stored as.
  auto shout = flux::node("shout", [](const std::string& s) { return s + "!"; });
  auto e = catch_error<flux::TypeError>([&] { (void)(shout | half); });
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(Contains(e->what, "'shout' produces string but 'half' expects int"));
  EXPECT_FALSE(Contains(e->what, "int64")) << e->what;

  // At run time, when only the input's value shows the mismatch.
  flux::Runtime rt;
  auto r = rt.run(half, "ten");
  ASSERT_FALSE(r.ok());
  ASSERT_TRUE(r.error.has_value());
  EXPECT_TRUE(Contains(r.error->message, "expected int, got string \"ten\"")) << r.error->message;
  EXPECT_EQ(rt.run(half, 10).value<int>(), 5);
}

// The signatures next to the ones tests/compile_fail rejects: these must keep compiling.
TEST(Node, ConstReferenceRvalueAndConstCallOperatorSignaturesAreAccepted) {
  struct Exclaim {
    std::string operator()(std::string&& s) const { return s + "!"; }
  };
  auto by_const_ref = flux::node("len", [](const std::string& s) { return s.size(); });
  auto by_rvalue = flux::node("exclaim", Exclaim{});
  auto by_pointer = flux::node(
      "neg", +[](std::int64_t x) { return -x; });
  flux::Runtime rt;
  EXPECT_EQ(rt.run(by_const_ref, "four").value<std::size_t>(), 4u);
  EXPECT_EQ(rt.run(by_rvalue, "hi").value<std::string>(), "hi!");
  EXPECT_EQ(rt.run(by_pointer, 3).value<std::int64_t>(), -3);
}

TEST(Node, EmptyNameOrNullCallableIsAnInvalidArgument) {
  auto empty_name = catch_error([] { (void)flux::node("", [](std::int64_t x) { return x; }); });
  ASSERT_TRUE(empty_name.has_value());
  EXPECT_EQ(empty_name->code, flux::Errc::invalid_argument);

  auto empty_function = catch_error([] { (void)flux::node("x", std::function<int(int)>{}); });
  ASSERT_TRUE(empty_function.has_value());
  EXPECT_EQ(empty_function->code, flux::Errc::invalid_argument);

  std::int64_t (*null_pointer)(std::int64_t) = nullptr;
  auto null_fp = catch_error([&] { (void)flux::node("fp", null_pointer); });
  ASSERT_TRUE(null_fp.has_value());
  EXPECT_EQ(null_fp->code, flux::Errc::invalid_argument);

  // A non-empty std::function is fine.
  auto ok = flux::node("ok", std::function<int(int)>([](int x) { return x + 1; }));
  EXPECT_EQ(ok.name(), "ok");
  flux::Runtime rt;
  EXPECT_EQ(rt.run(ok, 1).value<int>(), 2);
}

TEST(Node, AsyncNodeCannotBeMarkedBlocking) {
  auto fetch = flux::node(
      "fetch", [](std::int64_t x) { return std::async(std::launch::deferred, [x] { return x; }); });
  auto e = catch_error([&] { (void)fetch.blocking(); });
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, flux::Errc::invalid_argument);
}

TEST(Node, TwoBlockingBranchesSleepingConcurrentlyFinishInWellUnderTheirSum) {
  auto slow_a = flux::node("slow_a", [](std::int64_t x) {
                  std::this_thread::sleep_for(200ms);
                  return x + 1;
                }).blocking();
  auto slow_b = flux::node("slow_b", [](std::int64_t x) {
                  std::this_thread::sleep_for(200ms);
                  return x + 2;
                }).blocking();
  EXPECT_TRUE(slow_a.is_blocking());
  flux::Runtime rt;
  auto t0 = Clock::now();
  auto r = rt.run(flux::parallel(slow_a, slow_b), 10);
  auto elapsed = ms_since(t0);
  ASSERT_TRUE(r.ok()) << (r.error ? r.error->message : "");
  EXPECT_EQ(r.output, Value(Value::List{11, 12}));
  EXPECT_GE(elapsed, 195);
  EXPECT_LT(elapsed, 380);
}

TEST(Node, BlockingNodeDoesNotStallAConcurrentRun) {
  flux::Config cfg;
  cfg.threads = 1;  // one scheduler thread: a sleep on it would stall everything
  flux::Runtime rt(cfg);
  auto slow = flux::node("slow", [](std::int64_t x) {
                std::this_thread::sleep_for(600ms);
                return x;
              }).blocking();
  auto fast = flux::node("fast", [](std::int64_t x) { return x + 1; });

  flux::RunHandle slow_run = rt.start(slow, 1);
  std::this_thread::sleep_for(50ms);  // let the slow node begin
  auto t0 = Clock::now();
  auto r = rt.run(fast | fast | fast, 0);
  auto elapsed = ms_since(t0);
  ASSERT_TRUE(r.ok()) << (r.error ? r.error->message : "");
  EXPECT_EQ(r.value<std::int64_t>(), 3);
  EXPECT_LT(elapsed, 400);
  EXPECT_FALSE(slow_run.done());

  auto slow_result = slow_run.wait_for(5s);
  ASSERT_TRUE(slow_result.has_value());
  EXPECT_TRUE(slow_result->ok());
  EXPECT_EQ(slow_result->output, Value(1));
}

}  // namespace
