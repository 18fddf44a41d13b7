// Seed group "Pipeline": sequences, sequence/parallel mixes, shared state across
// steps, structs between nodes, long pipelines, step ids, fingerprints, names,
// concurrent reuse, and type errors at composition time and at run time.

#include <gtest/gtest.h>

#include <cstdint>
#include <flux/flux.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace pipelinetest {

struct Order {
  std::string id;
  std::int64_t qty = 0;
};

}  // namespace pipelinetest

FLUX_STRUCT(pipelinetest::Order, id, qty)

namespace {

using flux::Value;

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
flux::Node add() {
  return flux::node("add", [](std::int64_t a, std::int64_t b, flux::Context& ctx) {
    ctx.save("last_sum", a + b);
    return a + b;
  });
}

TEST(Pipeline, TwoNodesRunInSequence) {
  flux::Runtime rt;
  auto r = rt.run(inc() | dbl(), 3);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::int64_t>(), 8);
}

TEST(Pipeline, ThreeNodesRunInSequenceInOrder) {
  flux::Runtime rt;
  auto r = rt.run(inc() | dbl() | sq(), 3);  // ((3+1)*2)^2
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::int64_t>(), 64);
  auto r2 = rt.run(sq() | dbl() | inc(), 3);  // 3^2*2+1
  ASSERT_TRUE(r2.ok()) << failure_text(r2);
  EXPECT_EQ(r2.value<std::int64_t>(), 19);
}

TEST(Pipeline, SequenceThenParallel) {
  flux::Runtime rt;
  auto r = rt.run(inc() | flux::parallel(dbl(), sq()), 3);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.output, Value(Value::List{8, 16}));
}

TEST(Pipeline, ParallelOutputsAreSpreadOverTwoOrThreeParameters) {
  auto sub = flux::node("sub", [](std::int64_t a, std::int64_t b) { return a - b; });
  auto digits = flux::node("digits", [](std::int64_t a, std::int64_t b, std::int64_t c) {
    return a * 100 + b * 10 + c;
  });
  flux::Runtime rt;
  auto r2 = rt.run(flux::parallel(dbl(), sq()) | sub, 5);  // 10 - 25
  ASSERT_TRUE(r2.ok()) << failure_text(r2);
  EXPECT_EQ(r2.value<std::int64_t>(), -15);
  auto r3 = rt.run(flux::parallel(dbl(), sq(), inc()) | digits, 2);  // [4, 4, 3]
  ASSERT_TRUE(r3.ok()) << failure_text(r3);
  EXPECT_EQ(r3.value<std::int64_t>(), 443);
}

TEST(Pipeline, DesignExampleIncParallelDblSqAddGives24) {
  auto p = inc() | flux::parallel(dbl(), sq()) | add();
  flux::Runtime rt;
  auto r = rt.run(p, 3);  // 4 -> [8, 16] -> 24
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.output.as<std::int64_t>(), 24);
  EXPECT_EQ(rt.run_keys(r.run_id, flux::Scope::kv).at("last_sum"), Value(24));
  EXPECT_EQ(p.describe(), "inc | parallel(dbl, sq) | add");
  EXPECT_EQ(p.size(), 3u);
  EXPECT_EQ(p.node_count(), 4u);
  EXPECT_EQ(p.output_type().name, "int64");
}

TEST(Pipeline, ComplexNestedPipelineOfSubPipelinesAndParallels) {
  auto sum3 =
      flux::node("sum3", [](std::int64_t a, std::int64_t b, std::int64_t c) { return a + b + c; });
  auto p = inc() | flux::parallel(dbl() | inc(), flux::parallel(sq(), dbl()) | add(), inc()) |
           sum3 | dbl();
  flux::Runtime rt;
  auto r = rt.run(p, 2);  // 3 -> [7, 9+6=15, 4] -> 26 -> 52
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::int64_t>(), 52);
}

TEST(Pipeline, SharedStatePropagatesAcrossSteps) {
  auto first = flux::node("first", [](std::int64_t x, flux::Context& ctx) {
    ctx.shared().set("trail", std::string("a"));
    return x;
  });
  auto second = flux::node("second", [](std::int64_t x, flux::Context& ctx) {
    ctx.shared().update("trail", [](const Value& old) { return Value(old.as_string() + "b"); });
    ctx.shared().add("steps", 2);
    return x;
  });
  auto third = flux::node("third", [](std::int64_t x, flux::Context& ctx) {
    ctx.shared().add("steps", 1);
    return ctx.shared().get<std::string>("trail", "") + std::to_string(x) +
           std::to_string(ctx.shared().get<std::int64_t>("steps", 0));
  });
  flux::Runtime rt;
  auto r = rt.run(first | second | third, 7);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::string>(), "ab73");
  auto shared = rt.run_keys(r.run_id, flux::Scope::shared);
  EXPECT_EQ(shared.at("trail"), Value("ab"));
  EXPECT_EQ(shared.at("steps"), Value(3));
}

TEST(Pipeline, MultipleParallelStages) {
  auto neg = flux::node("neg", [](std::int64_t x) { return -x; });
  auto sum2 = flux::node("sum2", [](std::int64_t a, std::int64_t b) { return a + b; });
  auto p = flux::parallel(inc(), dbl()) | sum2 | flux::parallel(sq(), neg) | sum2;
  flux::Runtime rt;
  auto r = rt.run(p, 3);  // [4, 6] -> 10 -> [100, -10] -> 90
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::int64_t>(), 90);
}

TEST(Pipeline, StructsFlowBetweenNodesLikeKeywordArguments) {
  auto make = flux::node("make", [](const std::string& id) { return pipelinetest::Order{id, 3}; });
  auto doubled = flux::node("doubled", [](pipelinetest::Order o) {
    o.qty *= 2;
    return o;
  });
  auto label = flux::node(
      "label", [](const pipelinetest::Order& o) { return o.id + ":" + std::to_string(o.qty); });
  flux::Runtime rt;
  auto r = rt.run(make | doubled | label, std::string("A-1"));
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::string>(), "A-1:6");

  auto r2 = rt.run(make | doubled, std::string("B"));
  ASSERT_TRUE(r2.ok()) << failure_text(r2);
  EXPECT_EQ(r2.output, Value(Value::Map{{"id", "B"}, {"qty", 6}}));
  EXPECT_EQ(r2.value<pipelinetest::Order>().qty, 6);
}

TEST(Pipeline, TwentyStepsBuiltWithPipeOperator) {
  flux::Pipeline p = inc();
  for (int i = 1; i < 20; ++i) p = p | inc();
  EXPECT_EQ(p.size(), 20u);
  flux::Runtime rt;
  auto r = rt.run(p, 0);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::int64_t>(), 20);
}

TEST(Pipeline, TenThousandStepsAddTenThousand) {
  std::vector<flux::Pipeline> steps(10000, flux::Pipeline(inc()));
  auto p = flux::sequence(steps);
  EXPECT_EQ(p.size(), 10000u);
  EXPECT_EQ(p.node_count(), 10000u);
  flux::Runtime rt;
  auto r = rt.run(p, 5);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::int64_t>(), 10005);
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->history.size(), 10000u);
  EXPECT_EQ(info->history.back().step, "9999");
  EXPECT_EQ(info->history.back().output, Value(10005));
}

// A program that generates its pipeline composes it step by step; `|` must not copy
// the steps each time, and the chain must be the same as one built in one call.
TEST(Pipeline, TenThousandStepsBuiltWithPipeInALoopHaveOneStepIdPerIndex) {
  flux::Pipeline p = inc();
  flux::Pipeline first_half = p;
  for (int i = 1; i < 10000; ++i) {
    p = p | inc();
    if (i == 4999) first_half = p;
  }
  EXPECT_EQ(p.size(), 10000u);
  EXPECT_EQ(p.node_count(), 10000u);
  EXPECT_EQ(first_half.size(), 5000u);
  std::vector<flux::Pipeline> steps(10000, flux::Pipeline(inc()));
  EXPECT_EQ(p.fingerprint(), flux::sequence(steps).fingerprint());

  flux::Runtime rt;
  auto r = rt.run(p, 5);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::int64_t>(), 10005);
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->history.size(), 10000u);
  for (std::size_t i = 0; i < info->history.size(); ++i) {
    ASSERT_EQ(info->history[i].step, std::to_string(i)) << "entry " << i;
  }
  EXPECT_EQ(rt.run(first_half, 5).value<std::int64_t>(), 5005);
}

TEST(Pipeline, PipeLeavesBothOperandsUnchangedSoOnePrefixCanBeExtendedTwice) {
  auto p = inc() | dbl();
  auto q = p | sq();
  auto r = p | inc();
  // Whichever is flattened first, each keeps its own steps.
  EXPECT_EQ(r.describe(), "inc | dbl | inc");
  EXPECT_EQ(q.describe(), "inc | dbl | sq");
  EXPECT_EQ(p.describe(), "inc | dbl");
  EXPECT_EQ(p.size(), 2u);
  EXPECT_EQ(p.fingerprint(), (inc() | dbl()).fingerprint());
  EXPECT_NE(q.fingerprint(), r.fingerprint());
  EXPECT_NE(q.fingerprint(), p.fingerprint());

  flux::Runtime rt;
  EXPECT_EQ(rt.run(p, 3).value<std::int64_t>(), 8);
  EXPECT_EQ(rt.run(q, 3).value<std::int64_t>(), 64);
  EXPECT_EQ(rt.run(r, 3).value<std::int64_t>(), 9);

  // Grouping does not matter: the same three steps, the same ids and fingerprint.
  auto right_nested = inc() | (dbl() | sq());
  EXPECT_EQ(right_nested.fingerprint(), q.fingerprint());
  EXPECT_EQ(right_nested.size(), 3u);
  auto run = rt.run(right_nested, 3);
  ASSERT_TRUE(run.ok()) << failure_text(run);
  auto info = rt.get_run(run.run_id);
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->history.size(), 3u);
  EXPECT_EQ(info->history[2].step, "2");
  EXPECT_EQ(info->history[2].node, "sq");
}

TEST(Pipeline, ThreadsAskingForANewPipelinesStepsAtOnceAllGetTheSameSteps) {
  flux::Pipeline p = inc();
  for (int i = 1; i < 1000; ++i) p = p | dbl();
  std::vector<const flux::detail::PipelineDef*> seen(8, nullptr);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < seen.size(); ++t) {
    threads.emplace_back([&p, &seen, t] { seen[t] = p.def().get(); });
  }
  for (auto& t : threads) t.join();
  for (const auto* def : seen) EXPECT_EQ(def, p.def().get());
  EXPECT_EQ(p.def()->children.size(), 1000u);
}

TEST(Pipeline, SequenceIsEquivalentToChainingWithPipe) {
  auto piped = inc() | dbl() | sq();
  auto seq = flux::sequence({inc(), dbl(), sq()});
  EXPECT_EQ(seq.fingerprint(), piped.fingerprint());
  EXPECT_EQ(seq.describe(), "inc | dbl | sq");
  flux::Runtime rt;
  EXPECT_EQ(rt.run(seq, 1).value<std::int64_t>(), 16);
}

TEST(Pipeline, EmptySequenceIsAnInvalidArgument) {
  auto e = catch_error([] { (void)flux::sequence({}); });
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, flux::Errc::invalid_argument);
}

TEST(Pipeline, TopLevelStepIdsAreIndexes) {
  flux::Runtime rt;
  auto r = rt.run(inc() | dbl() | sq(), 1);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->history.size(), 3u);
  EXPECT_EQ(info->history[0].step, "0");
  EXPECT_EQ(info->history[1].step, "1");
  EXPECT_EQ(info->history[2].step, "2");
  EXPECT_EQ(info->history[0].node, "inc");
  EXPECT_EQ(info->history[1].node, "dbl");
  EXPECT_EQ(info->history[2].node, "sq");
}

TEST(Pipeline, FingerprintDependsOnShapeAndNodeNamesOnly) {
  auto p1 = inc() | dbl();
  // Same names and shape, different functions: same fingerprint.
  auto other_inc = flux::node("inc", [](std::int64_t x) { return x + 100; });
  auto p2 = other_inc | dbl();
  EXPECT_FALSE(p1.fingerprint().empty());
  EXPECT_EQ(p1.fingerprint(), p2.fingerprint());
  for (char c : p1.fingerprint()) {
    EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
        << "fingerprint is not hex: " << p1.fingerprint();
  }

  // A different name or a different shape: a different fingerprint.
  auto renamed = flux::node("increment", [](std::int64_t x) { return x + 1; });
  EXPECT_NE((renamed | dbl()).fingerprint(), p1.fingerprint());
  EXPECT_NE(flux::parallel(inc(), dbl()).fingerprint(), p1.fingerprint());
  EXPECT_NE((dbl() | inc()).fingerprint(), p1.fingerprint());
  EXPECT_NE((inc() | dbl() | dbl()).fingerprint(), p1.fingerprint());

  // The pipeline's own name is not part of it.
  EXPECT_EQ(p1.named("renamed").fingerprint(), p1.fingerprint());
}

TEST(Pipeline, NamedGivesACopyWithAnotherNameRecordedWithEachRun) {
  auto p = inc() | dbl();
  EXPECT_EQ(p.name(), "pipeline");
  auto calc = p.named("calc");
  EXPECT_EQ(calc.name(), "calc");
  EXPECT_EQ(p.name(), "pipeline");
  EXPECT_EQ(calc.describe(), "inc | dbl");

  flux::Runtime rt;
  auto r = rt.run(calc, 1);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->pipeline, "calc");
  EXPECT_EQ(info->fingerprint, calc.fingerprint());
}

TEST(Pipeline, OnePipelineServesAHundredConcurrentRuns) {
  auto p = inc() | flux::parallel(dbl(), sq()) | add();
  flux::Runtime rt;
  std::vector<flux::RunHandle> handles;
  for (std::int64_t i = 0; i < 100; ++i) handles.push_back(rt.start(p, i));
  for (std::int64_t i = 0; i < 100; ++i) {
    auto r = handles[static_cast<std::size_t>(i)].wait_for(std::chrono::seconds(30));
    ASSERT_TRUE(r.has_value()) << "run " << i << " did not finish";
    ASSERT_TRUE(r->ok()) << failure_text(*r);
    std::int64_t x = i + 1;
    EXPECT_EQ(r->value<std::int64_t>(), 2 * x + x * x) << "input " << i;
    EXPECT_EQ(rt.run_keys(r->run_id).at("last_sum"), Value(2 * x + x * x));
  }
}

TEST(Pipeline, ComposingAStringProducerWithAnIntConsumerIsATypeError) {
  auto make_text = flux::node("make_text", [](std::int64_t x) { return std::to_string(x); });
  auto add_one = flux::node("add_one", [](std::int64_t x) { return x + 1; });
  auto e = catch_error<flux::TypeError>([&] { (void)(make_text | add_one); });
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, flux::Errc::type_mismatch);
  EXPECT_TRUE(Contains(e->what, "make_text"));
  EXPECT_TRUE(Contains(e->what, "add_one"));
  EXPECT_TRUE(Contains(e->what, "string"));
  EXPECT_TRUE(Contains(e->what, "int64"));

  // The same check applies when the producer ends a longer pipeline.
  auto e2 = catch_error<flux::TypeError>([&] { (void)(inc() | make_text | add_one); });
  ASSERT_TRUE(e2.has_value());
  EXPECT_TRUE(Contains(e2->what, "make_text"));
  EXPECT_TRUE(Contains(e2->what, "add_one"));
}

TEST(Pipeline, ParallelWithMoreBranchesThanParametersIsATypeErrorNamingTheNode) {
  auto pair_sum = flux::node("pair_sum", [](std::int64_t a, std::int64_t b) { return a + b; });
  auto e =
      catch_error<flux::TypeError>([&] { (void)(flux::parallel(inc(), dbl(), sq()) | pair_sum); });
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(Contains(e->what, "pair_sum"));

  // A branch whose type does not fit its parameter is caught too.
  auto text = flux::node("text", [](std::int64_t x) { return std::to_string(x); });
  auto e2 = catch_error<flux::TypeError>([&] { (void)(flux::parallel(inc(), text) | pair_sum); });
  ASSERT_TRUE(e2.has_value());
  EXPECT_TRUE(Contains(e2->what, "pair_sum"));
  EXPECT_TRUE(Contains(e2->what, "string"));
}

TEST(Pipeline, MismatchOnlyVisibleAtRunTimeFailsTheRunNamingNodesAndTypes) {
  auto passthrough = flux::node("passthrough", [](Value v) { return v; });
  auto add_one = flux::node("add_one", [](std::int64_t x) { return x + 1; });
  flux::Pipeline p = passthrough | add_one;  // fine at composition: "any" may be an int64

  flux::Runtime rt;
  auto good = rt.run(p, 1);
  ASSERT_TRUE(good.ok()) << failure_text(good);
  EXPECT_EQ(good.value<std::int64_t>(), 2);

  auto r = rt.run(p, std::string("oops"));
  EXPECT_EQ(r.status, flux::RunStatus::failed);
  EXPECT_TRUE(r.output.is_null());
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->node, "add_one");
  EXPECT_EQ(r.error->step, "1");
  EXPECT_TRUE(Contains(r.error->message, "add_one"));
  EXPECT_TRUE(Contains(r.error->message, "passthrough"));
  EXPECT_TRUE(Contains(r.error->message, "int64"));
  EXPECT_TRUE(Contains(r.error->message, "string"));

  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->status, flux::RunStatus::failed);
  ASSERT_TRUE(info->error.has_value());
  EXPECT_EQ(info->error->node, "add_one");
}

}  // namespace
