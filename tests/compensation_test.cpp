// Compensation (README, "Compensation"): a run that fails, or is cancelled with
// CancelOptions::compensate, undoes its completed steps newest first, each attempt its own
// `compensate` history entry, and ends `compensated` or `compensation_failed`. Every test runs
// on the memory store and on a private redis-server (tests/support), and asserts what a user
// would check: the order compensations ran in, the values they got, entry types, attempt
// numbers, statuses, errors and what list_runs returns. The crash during compensation is in
// crash_test.cpp (it needs a process to kill).

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <flux/flux.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_server.hpp"

namespace {

using namespace std::chrono_literals;
using flux::HistoryEntry;
using flux::RunStatus;
using flux::Value;

/// What the compensations did, in the order they did it ("undo <node> <value>").
class Journal {
 public:
  void add(std::string what) {
    std::lock_guard lock(mu_);
    log_.push_back(std::move(what));
  }
  std::vector<std::string> log() const {
    std::lock_guard lock(mu_);
    return log_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> log_;
};

/// A node adding `add` to its input, undone by a compensation that logs "undo <name> <output>".
flux::Node step(const std::string& name, std::int64_t add, Journal& journal,
                flux::RetryPolicy retry = {}) {
  return flux::node(name, [add](std::int64_t x) { return x + add; })
      .compensate(
          [&journal, name](std::int64_t output, std::int64_t input, flux::Context& ctx) {
            journal.add("undo " + name + " " + std::to_string(output) + " from " +
                        std::to_string(input) + " at " + ctx.step_id());
          },
          std::move(retry));
}

flux::Node failing(const std::string& name) {
  return flux::node(name, [name](std::int64_t) -> std::int64_t {
    throw std::runtime_error(name + " declined");
  });
}

std::vector<HistoryEntry> of_type(const flux::RunInfo& info, HistoryEntry::Type type) {
  std::vector<HistoryEntry> out;
  for (const HistoryEntry& e : info.history) {
    if (e.type == type) out.push_back(e);
  }
  return out;
}

/// Waits (bounded) until `flag` is set.
bool wait_until(const std::atomic<bool>& flag, std::chrono::milliseconds bound = 10s) {
  const auto until = std::chrono::steady_clock::now() + bound;
  while (!flag && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(2ms);
  return flag;
}

class Compensation : public ::testing::TestWithParam<std::string> {
 protected:
  flux::Config config() const {
    if (GetParam() == "memory") return {};
    return flux::Config{.store = flux::test::shared_redis().url(),
                        .key_prefix = flux::test::unique_prefix("saga")};
  }
};

INSTANTIATE_TEST_SUITE_P(Stores, Compensation, ::testing::Values("memory", "redis"),
                         [](const auto& info) { return info.param; });

TEST_P(Compensation, AFourStepSagaFailingAtStepFourUndoesThreeStepsNewestFirst) {
  Journal journal;
  auto pipeline = (step("reserve", 1, journal) | step("charge", 10, journal) |
                   step("ship", 100, journal) | failing("notify"))
                      .named("order");
  flux::Runtime rt(config());
  flux::RunResult r = rt.run(pipeline, 0);
  EXPECT_EQ(r.status, RunStatus::compensated);
  ASSERT_TRUE(r.error);
  // The run's error is still why it stopped.
  EXPECT_EQ(r.error->message, "node 'notify' (step 3) failed: notify declined");
  EXPECT_EQ(r.error->node, "notify");
  EXPECT_EQ(r.error->step, "3");
  // Newest first, each given its step's output and input.
  EXPECT_EQ(journal.log(), (std::vector<std::string>{"undo ship 111 from 11 at 2",
                                                     "undo charge 11 from 1 at 1",
                                                     "undo reserve 1 from 0 at 0"}));

  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, RunStatus::compensated);
  EXPECT_EQ(info->error, r.error);
  auto marks = of_type(*info, HistoryEntry::Type::compensating);
  ASSERT_EQ(marks.size(), 1u);
  EXPECT_EQ(marks[0].node, "compensation");
  EXPECT_EQ(marks[0].step, "");
  EXPECT_EQ(marks[0].input, Value(Value::Map{{"status", "failed"},
                                             {"node", "notify"},
                                             {"step", "3"},
                                             {"message", r.error->message}}));
  auto undone = of_type(*info, HistoryEntry::Type::compensate);
  ASSERT_EQ(undone.size(), 3u);
  const std::vector<std::string> nodes{"ship", "charge", "reserve"}, steps{"2", "1", "0"};
  const std::vector<std::int64_t> outputs{111, 11, 1};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(undone[i].node, nodes[i]);
    EXPECT_EQ(undone[i].step, steps[i]);
    EXPECT_EQ(undone[i].attempt, 1u);
    EXPECT_TRUE(undone[i].ok());
    EXPECT_EQ(undone[i].input, Value(outputs[i]));  // the output of the step undone
    EXPECT_GT(undone[i].seq, marks[0].seq);
    if (i > 0) {
      EXPECT_GE(undone[i].start, undone[i - 1].end);  // one at a time
    }
  }
  // The failed step is not undone (it did nothing to undo), and no forward step ran again.
  std::size_t forward = 0;
  for (const HistoryEntry& e : info->history) forward += e.type == HistoryEntry::Type::node;
  EXPECT_EQ(forward, 4u);

  auto listed = rt.list_runs({.status = RunStatus::compensated});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, r.run_id);
  EXPECT_TRUE(rt.list_runs({.status = RunStatus::failed}).empty());
  EXPECT_TRUE(rt.list_runs({.status = RunStatus::running}).empty());
}

TEST_P(Compensation, ParallelBranchesAreUndoneInReverseWithinTheirBranch) {
  Journal journal;
  auto branch_a = step("a1", 1, journal) | step("a2", 2, journal) | step("a3", 3, journal);
  auto branch_b = step("b1", 10, journal) | step("b2", 20, journal);
  auto pipeline = (step("first", 0, journal) | flux::parallel(branch_a, branch_b) |
                   flux::node("sum", [](std::int64_t a, std::int64_t b) { return a + b; }) |
                   failing("last"))
                      .named("fan");
  flux::Runtime rt(config());
  flux::RunResult r = rt.run(pipeline, 0);
  EXPECT_EQ(r.status, RunStatus::compensated);
  const std::vector<std::string> log = journal.log();
  ASSERT_EQ(log.size(), 6u);  // "sum" has no compensation
  auto at = [&](const std::string& node) {
    for (std::size_t i = 0; i < log.size(); ++i) {
      if (log[i].rfind("undo " + node + " ", 0) == 0) return i;
    }
    ADD_FAILURE() << node << " was not undone";
    return log.size();
  };
  EXPECT_LT(at("a3"), at("a2"));
  EXPECT_LT(at("a2"), at("a1"));
  EXPECT_LT(at("b2"), at("b1"));
  EXPECT_EQ(at("first"), 5u);  // before the parallel: undone last
  EXPECT_EQ(log[at("a3")], "undo a3 6 from 3 at 1.0.2");
  EXPECT_EQ(log[at("b2")], "undo b2 30 from 10 at 1.1.1");

  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info);
  auto undone = of_type(*info, HistoryEntry::Type::compensate);
  ASSERT_EQ(undone.size(), 6u);
  EXPECT_EQ(undone.back().step, "0");
  for (const HistoryEntry& e : undone) EXPECT_EQ(e.attempt, 1u);
}

TEST_P(Compensation, AStepOfAnotherBranchFinishingAfterTheFailureIsUndoneToo) {
  // Fail fast: "broken" fails at once while "slow" (blocking, 200 ms) is still executing in
  // the other branch. It completes after the failure, so it has something to undo.
  Journal journal;
  std::atomic<bool> slow_started{false};
  auto slow = flux::node("slow",
                         [&slow_started](std::int64_t x) {
                           slow_started = true;
                           std::this_thread::sleep_for(200ms);
                           return x + 5;
                         })
                  .blocking()
                  .compensate([&journal](std::int64_t out) {
                    journal.add("undo slow " + std::to_string(out));
                  });
  auto broken = flux::node("broken", [&slow_started](std::int64_t) -> std::int64_t {
    while (!slow_started) std::this_thread::sleep_for(1ms);
    throw std::runtime_error("broken");
  });
  auto pipeline = (step("first", 1, journal) | flux::parallel(slow, broken)).named("late");
  flux::Runtime rt(config());
  flux::RunResult r = rt.run(pipeline, 0);
  EXPECT_EQ(r.status, RunStatus::compensated);
  EXPECT_EQ(r.error->node, "broken");
  EXPECT_EQ(journal.log(),
            (std::vector<std::string>{"undo slow 6", "undo first 1 from 0 at 0"}));
}

TEST_P(Compensation, AFailingCompensationIsRetriedByItsPolicyThenTheRunIsCompensationFailed) {
  Journal journal;
  std::atomic<int> refunds{0};
  auto charge = flux::node("charge", [](std::int64_t x) { return x * 2; })
                    .compensate(
                        [&refunds](std::int64_t) {
                          throw std::runtime_error("bank offline " + std::to_string(++refunds));
                        },
                        {.attempts = 3, .backoff = flux::fixed(20ms)});
  auto pipeline =
      (step("reserve", 1, journal) | charge | step("ship", 5, journal) | failing("notify"))
          .named("order");
  flux::Runtime rt(config());
  flux::RunResult r = rt.run(pipeline, 1);
  EXPECT_EQ(r.status, RunStatus::compensation_failed);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->node, "charge");
  EXPECT_EQ(r.error->step, "1");
  EXPECT_EQ(r.error->message,
            "compensation of node 'charge' (step 1) failed after 3 attempts: bank offline 3; "
            "the run had stopped: node 'notify' (step 3) failed: notify declined");
  EXPECT_EQ(refunds, 3);
  // "ship" was undone before; "reserve" is not: undoing stops at the failed compensation.
  EXPECT_EQ(journal.log(), std::vector<std::string>{"undo ship 9 from 4 at 2"});

  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, RunStatus::compensation_failed);
  EXPECT_EQ(info->error, r.error);
  auto undone = of_type(*info, HistoryEntry::Type::compensate);
  ASSERT_EQ(undone.size(), 4u);
  EXPECT_EQ(undone[0].step, "2");
  EXPECT_TRUE(undone[0].ok());
  for (std::uint32_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(undone[i].node, "charge");
    EXPECT_EQ(undone[i].attempt, i);
    EXPECT_EQ(undone[i].error, "compensation of node 'charge' (step 1) failed: bank offline " +
                                   std::to_string(i));
    EXPECT_EQ(undone[i].input, Value(std::int64_t{4}));
  }
  EXPECT_GE(undone[2].start - undone[1].end, 20ms);  // the policy's backoff
  auto listed = rt.list_runs({.status = RunStatus::compensation_failed});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, r.run_id);

  // Resumed once the bank is back: the remaining compensations run, numbered after those
  // recorded; nothing done before is done again, no forward step runs.
  auto fixed_charge =
      flux::node("charge", [](std::int64_t x) { return x * 2; })
          .compensate([&journal](std::int64_t out) { journal.add("refund " + std::to_string(out)); });
  auto fixed = (step("reserve", 1, journal) | fixed_charge | step("ship", 5, journal) |
                failing("notify"))
                   .named("order");
  flux::RunResult again = rt.resume(r.run_id, fixed);
  EXPECT_EQ(again.status, RunStatus::compensated);
  EXPECT_EQ(again.error->message, "node 'notify' (step 3) failed: notify declined");
  EXPECT_EQ(journal.log(), (std::vector<std::string>{"undo ship 9 from 4 at 2", "refund 4",
                                                     "undo reserve 2 from 1 at 0"}));
  info = rt.get_run(r.run_id);
  undone = of_type(*info, HistoryEntry::Type::compensate);
  ASSERT_EQ(undone.size(), 6u);
  EXPECT_EQ(undone[4].step, "1");
  EXPECT_EQ(undone[4].attempt, 4u);
  EXPECT_TRUE(undone[4].ok());
  EXPECT_EQ(undone[5].step, "0");
  EXPECT_EQ(undone[5].attempt, 1u);
  std::size_t forward = 0;
  for (const HistoryEntry& e : info->history) forward += e.type == HistoryEntry::Type::node;
  EXPECT_EQ(forward, 4u);
  EXPECT_TRUE(rt.list_runs({.status = RunStatus::compensation_failed}).empty());
}

TEST_P(Compensation, AFlakyCompensationSucceedsOnItsSecondAttempt) {
  std::atomic<int> calls{0};
  auto reserve = flux::node("reserve", [](std::int64_t x) { return x; })
                     .compensate(
                         [&calls](std::int64_t, flux::Context& ctx) {
                           if (++calls == 1) throw std::runtime_error("busy");
                           ctx.save("released_on_attempt", static_cast<std::int64_t>(ctx.attempt()));
                         },
                         {.attempts = 2, .backoff = flux::fixed(1ms)});
  flux::Runtime rt(config());
  flux::RunResult r = rt.run((reserve | failing("pay")).named("flaky"), 7);
  EXPECT_EQ(r.status, RunStatus::compensated);
  auto info = rt.get_run(r.run_id);
  auto undone = of_type(*info, HistoryEntry::Type::compensate);
  ASSERT_EQ(undone.size(), 2u);
  EXPECT_EQ(undone[0].attempt, 1u);
  EXPECT_EQ(undone[0].error, "compensation of node 'reserve' (step 0) failed: busy");
  EXPECT_EQ(undone[1].attempt, 2u);
  EXPECT_TRUE(undone[1].ok());
  EXPECT_EQ(rt.storage().get_key(r.run_id, flux::Scope::kv, "released_on_attempt"),
            Value(std::int64_t{2}));
}

TEST_P(Compensation, CancelWithCompensationUndoesTheCompletedSteps) {
  Journal journal;
  std::atomic<bool> started{false};
  auto wait = flux::node("wait", [&started](std::int64_t x, flux::Context& ctx) {
                started = true;
                const auto until = std::chrono::steady_clock::now() + 20s;
                while (!ctx.cancelled() && std::chrono::steady_clock::now() < until) {
                  std::this_thread::sleep_for(2ms);
                }
                return x;
              }).blocking();
  auto pipeline = (step("reserve", 1, journal) | step("charge", 10, journal) | wait |
                   step("ship", 100, journal))
                      .named("order");
  flux::Runtime rt(config());
  flux::RunHandle h = rt.start(pipeline, 0);
  ASSERT_TRUE(wait_until(started));
  EXPECT_TRUE(h.cancel("customer changed their mind", {.compensate = true}));
  auto r = h.wait_for(20s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, RunStatus::compensated);
  EXPECT_EQ(r->error->message, "run " + h.run_id() + " was cancelled by " + rt.owner_id() +
                                   ": customer changed their mind");
  EXPECT_EQ(journal.log(), (std::vector<std::string>{"undo charge 11 from 1 at 1",
                                                     "undo reserve 1 from 0 at 0"}));
  EXPECT_FALSE(h.cancel("again"));
  auto info = rt.get_run(h.run_id());
  ASSERT_TRUE(info);
  auto cancels = of_type(*info, HistoryEntry::Type::cancel);
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].input, Value(Value::Map{{"by", rt.owner_id()},
                                               {"reason", "customer changed their mind"},
                                               {"compensate", true}}));
  auto marks = of_type(*info, HistoryEntry::Type::compensating);
  ASSERT_EQ(marks.size(), 1u);
  EXPECT_EQ(marks[0].input.as_map().at("status"), Value("cancelled"));
  EXPECT_EQ(of_type(*info, HistoryEntry::Type::compensate).size(), 2u);
  EXPECT_EQ(rt.list_runs({.status = RunStatus::compensated}).size(), 1u);

  // Without compensation, a cancelled run stays as it was left.
  Journal untouched;
  started = false;
  auto plain = (step("reserve", 1, untouched) | wait).named("plain");
  flux::RunHandle p = rt.start(plain, 0);
  ASSERT_TRUE(wait_until(started));
  EXPECT_TRUE(p.cancel("stop"));
  EXPECT_EQ(p.wait().status, RunStatus::cancelled);
  EXPECT_TRUE(untouched.log().empty());
}

TEST_P(Compensation, ResumeOfACompensatedRunReturnsItsResultAndUndoesNothingAgain) {
  Journal journal;
  auto pipeline = (step("reserve", 1, journal) | failing("pay")).named("short");
  flux::Runtime rt(config());
  flux::RunResult r = rt.run(pipeline, 0);
  ASSERT_EQ(r.status, RunStatus::compensated);
  ASSERT_EQ(journal.log().size(), 1u);
  const std::size_t entries = rt.get_run(r.run_id)->history.size();
  flux::RunResult again = rt.resume(r.run_id, pipeline);
  EXPECT_EQ(again.status, RunStatus::compensated);
  EXPECT_EQ(again.error, r.error);
  EXPECT_EQ(journal.log().size(), 1u);
  EXPECT_EQ(rt.get_run(r.run_id)->history.size(), entries);  // not even a resume entry
}

TEST_P(Compensation, ARunWithNothingToUndoSimplyFails) {
  Journal journal;
  auto pipeline = (failing("first") | step("reserve", 1, journal)).named("early");
  flux::Runtime rt(config());
  flux::RunResult r = rt.run(pipeline, 0);
  EXPECT_EQ(r.status, RunStatus::failed);
  auto info = rt.get_run(r.run_id);
  EXPECT_TRUE(of_type(*info, HistoryEntry::Type::compensating).empty());
  EXPECT_TRUE(journal.log().empty());
  // A completed run is never undone.
  EXPECT_EQ(rt.run(step("reserve", 1, journal), 0).status, RunStatus::completed);
  EXPECT_TRUE(journal.log().empty());
}

TEST(CompensationApi, AMismatchedCompensationIsRefusedAtCompositionNamingTheNode) {
  auto n = flux::node("reserve", [](std::int64_t x) { return x; });
  try {
    (void)n.compensate([](std::string) {});
    FAIL() << "a string compensation was accepted for an int64 output";
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::type_mismatch);
    EXPECT_STREQ(e.what(),
                 "node \"reserve\": compensate: its first parameter (string) cannot take the "
                 "node's output (int64)");
  }
  try {
    (void)n.compensate([](std::int64_t, bool) {});
    FAIL() << "a bool input was accepted for an int64 input";
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::type_mismatch);
    EXPECT_TRUE(std::string(e.what()).find("second parameter (bool)") != std::string::npos)
        << e.what();
  }
  EXPECT_THROW((void)n.compensate([](std::int64_t) {}, {.attempts = 0}), flux::Error);
  // Context anywhere, the output alone, or nothing but the Context.
  EXPECT_NE(n.compensate([](flux::Context&, std::int64_t) {}).compensation(), nullptr);
  EXPECT_NE(n.compensate([](flux::Context&) {}).compensation(), nullptr);
  EXPECT_EQ(n.compensation(), nullptr);  // a copy: the node itself is unchanged
}

TEST(CompensationAcrossProcesses, ACancelRequestWithCompensationFromAnotherRuntime) {
  auto& redis = flux::test::shared_redis();
  const std::string prefix = flux::test::unique_prefix("saga");
  Journal journal;
  std::atomic<bool> started{false};
  auto wait = flux::node("wait", [&started](std::int64_t x, flux::Context& ctx) {
                started = true;
                const auto until = std::chrono::steady_clock::now() + 20s;
                while (!ctx.cancelled() && std::chrono::steady_clock::now() < until) {
                  std::this_thread::sleep_for(2ms);
                }
                return x;
              }).blocking();
  auto pipeline = (step("reserve", 1, journal) | wait).named("remote-cancel");
  flux::Runtime owner(flux::Config{.store = redis.url(), .key_prefix = prefix, .lease_ttl = 3s});
  flux::Runtime other(flux::Config{.store = redis.url(), .key_prefix = prefix});
  flux::RunHandle h = owner.start(pipeline, 0);
  ASSERT_TRUE(wait_until(started));
  EXPECT_TRUE(other.cancel(h.run_id(), "from elsewhere", {.compensate = true}));
  auto r = h.wait_for(20s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, RunStatus::compensated);
  EXPECT_EQ(journal.log(), std::vector<std::string>{"undo reserve 1 from 0 at 0"});
  auto listed = other.list_runs({.status = RunStatus::compensated});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, h.run_id());
}

}  // namespace
