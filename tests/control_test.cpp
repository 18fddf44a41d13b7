// Control (README, "Control"): retries with backoff, timeouts, cancellation and deadlines.
// Each test asserts what a user would check: statuses, errors, attempt numbers, entry types
// and counts, and times read off history timestamps (lower bounds and orderings, never speed
// targets). Local tests use the memory store; the cancel from another Runtime goes through a
// private redis-server, as it would between processes.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <flux/flux.hpp>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_server.hpp"

namespace {

using namespace std::chrono_literals;
using flux::HistoryEntry;
using flux::RunStatus;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

/// The node entries of `step`, in history order.
std::vector<HistoryEntry> entries_of(const flux::RunInfo& info, const std::string& step) {
  std::vector<HistoryEntry> out;
  for (const HistoryEntry& e : info.history) {
    if (e.type == HistoryEntry::Type::node && e.step == step) out.push_back(e);
  }
  return out;
}

std::size_t count_type(const flux::RunInfo& info, HistoryEntry::Type type) {
  std::size_t n = 0;
  for (const HistoryEntry& e : info.history) n += e.type == type;
  return n;
}

const HistoryEntry* find_type(const flux::RunInfo& info, HistoryEntry::Type type) {
  for (const HistoryEntry& e : info.history) {
    if (e.type == type) return &e;
  }
  return nullptr;
}

/// Waits (bounded) until `flag` is set; false if it never was.
bool wait_until(const std::atomic<bool>& flag, std::chrono::milliseconds bound = 10s) {
  const auto until = std::chrono::steady_clock::now() + bound;
  while (!flag && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(2ms);
  return flag;
}

/// A blocking node body that returns once its execution is cancelled (bounded: 20 s).
bool wait_for_cancel(flux::Context& ctx) {
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (!ctx.cancelled() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(5ms);
  }
  return ctx.cancelled();
}

// ---- Retries ---------------------------------------------------------------------------

TEST(Retry, FlakyNodeSucceedsOnAttemptThreeAfterItsBackoff) {
  std::atomic<int> calls{0};
  auto flaky = flux::node("flaky", [&calls](std::int64_t x) {
                 const int n = ++calls;
                 if (n < 3) throw std::runtime_error("boom " + std::to_string(n));
                 return x * 10;
               }).retry({.attempts = 5, .backoff = flux::exponential(50ms, 2.0, 1s)});
  flux::Runtime rt;
  flux::RunResult r = rt.run(flux::node("inc", [](std::int64_t x) { return x + 1; }) | flaky, 1);
  ASSERT_TRUE(r.ok()) << (r.error ? r.error->message : "");
  EXPECT_EQ(r.value<std::int64_t>(), 20);
  EXPECT_EQ(calls, 3);

  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info);
  auto attempts = entries_of(*info, "1");
  ASSERT_EQ(attempts.size(), 3u);
  for (std::uint32_t i = 0; i < 3; ++i) EXPECT_EQ(attempts[i].attempt, i + 1);
  EXPECT_EQ(attempts[0].error, "node 'flaky' (step 1) failed: boom 1");
  EXPECT_EQ(attempts[1].error, "node 'flaky' (step 1) failed: boom 2");
  EXPECT_TRUE(attempts[2].ok());
  EXPECT_EQ(attempts[2].output, flux::Value(std::int64_t{20}));
  // Every attempt had the same input; the waits were the backoff's (50 ms, then 100 ms).
  for (const auto& e : attempts) EXPECT_EQ(e.input, flux::Value(std::int64_t{2}));
  EXPECT_GE(attempts[1].start - attempts[0].end, 50ms);
  EXPECT_GE(attempts[2].start - attempts[1].end, 100ms);
  EXPECT_EQ(entries_of(*info, "0").size(), 1u);  // the step before is not repeated
}

TEST(Retry, SpentAttemptsFailTheRunWithTheLastErrorAndTheCount) {
  std::atomic<int> calls{0};
  auto bad = flux::node("bad", [&calls](std::int64_t) -> std::int64_t {
               throw std::runtime_error("nope " + std::to_string(++calls));
             }).retry({.attempts = 3, .backoff = flux::fixed(10ms)});
  std::atomic<int> after{0};
  auto next = flux::node("next", [&after](std::int64_t x) {
    ++after;
    return x;
  });
  flux::Runtime rt;
  flux::RunResult r = rt.run(bad | next, 1);
  EXPECT_EQ(r.status, RunStatus::failed);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->message, "node 'bad' (step 0) failed after 3 attempts: nope 3");
  EXPECT_EQ(r.error->node, "bad");
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(after, 0);
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, RunStatus::failed);
  EXPECT_EQ(info->error, r.error);
  auto attempts = entries_of(*info, "0");
  ASSERT_EQ(attempts.size(), 3u);
  EXPECT_EQ(attempts[2].attempt, 3u);
  EXPECT_EQ(attempts[2].error, "node 'bad' (step 0) failed: nope 3");
}

TEST(Retry, RetryOnDecidesWhichFailuresAreRetried) {
  std::atomic<int> calls{0};
  std::vector<std::string> seen;
  std::mutex mu;
  auto node =
      flux::node("picky",
                 [&calls](std::int64_t) -> std::int64_t {
                   const int n = ++calls;
                   throw std::runtime_error(n == 1 ? "transient glitch" : "permanent damage");
                 })
          .retry({.attempts = 5,
                  .backoff = flux::fixed(1ms),
                  .retry_on = [&](const flux::AttemptFailure& f) {
                    std::lock_guard lock(mu);
                    seen.push_back(f.node + "/" + f.step + "/" + std::to_string(f.attempt) + ": " +
                                   f.message);
                    return contains(f.message, "transient");
                  }});
  flux::Runtime rt;
  flux::RunResult r = rt.run(node, 1);
  EXPECT_EQ(r.status, RunStatus::failed);
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], "picky/0/1: node 'picky' (step 0) failed: transient glitch");
  EXPECT_EQ(seen[1], "picky/0/2: node 'picky' (step 0) failed: permanent damage");
  EXPECT_EQ(r.error->message, "node 'picky' (step 0) failed after 2 attempts: permanent damage");
}

TEST(Retry, ATypeMismatchIsNotRetriedByDefault) {
  std::atomic<int> calls{0};
  auto takes_int = flux::node("takes_int", [&calls](std::int64_t x) {
                     ++calls;
                     return x;
                   }).retry({.attempts = 4, .backoff = flux::fixed(1ms)});
  flux::Runtime rt;
  flux::RunResult r = rt.run(takes_int, std::string("text"));
  EXPECT_EQ(r.status, RunStatus::failed);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(entries_of(*rt.get_run(r.run_id), "0").size(), 1u);
  EXPECT_TRUE(contains(r.error->message, "type mismatch")) << r.error->message;
}

TEST(Retry, ConfigRetryIsTheDefaultAndANodesOwnPolicyWins) {
  std::atomic<int> a_calls{0}, b_calls{0};
  auto a = flux::node("a", [&](std::int64_t x) -> std::int64_t {
    if (++a_calls < 3) throw std::runtime_error("a fails");
    return x;
  });
  auto b = flux::node("b", [&](std::int64_t) -> std::int64_t {
             ++b_calls;
             throw std::runtime_error("b fails");
           }).retry({.attempts = 2, .backoff = flux::fixed(1ms)});
  flux::Config config;
  config.retry = flux::RetryPolicy{.attempts = 3, .backoff = flux::fixed(5ms)};
  flux::Runtime rt(config);
  flux::RunResult r = rt.run(a | b, 7);
  EXPECT_EQ(a_calls, 3);  // Config::retry: 3 attempts
  EXPECT_EQ(b_calls, 2);  // its own: 2
  EXPECT_EQ(r.error->message, "node 'b' (step 1) failed after 2 attempts: b fails");
}

TEST(Retry, BadPoliciesAreRefusedNamingTheNode) {
  auto n = flux::node("n", [](std::int64_t x) { return x; });
  try {
    (void)n.retry({.attempts = 0});
    FAIL() << "attempts 0 accepted";
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::invalid_argument);
    EXPECT_TRUE(contains(e.what(), "node \"n\"")) << e.what();
  }
  EXPECT_THROW((void)n.retry({.attempts = 2, .backoff = {.multiplier = 0.5}}), flux::Error);
  EXPECT_THROW((void)n.timeout(0ms), flux::Error);
  flux::Config config;
  config.retry = flux::RetryPolicy{.attempts = 0};
  EXPECT_THROW(flux::Runtime{config}, flux::Error);
}

TEST(Retry, BackoffHoldsNoSchedulerThread) {
  // One scheduler thread. Ten runs fail once and wait 400 ms before their second attempt;
  // a run started after them completes during that wait — impossible if a wait held the
  // only thread.
  std::atomic<int> calls{0};
  auto once = flux::node("once", [&calls](std::int64_t x, flux::Context& ctx) -> std::int64_t {
                ++calls;
                if (ctx.attempt() == 1) throw std::runtime_error("first try");
                return x;
              }).retry({.attempts = 2, .backoff = flux::fixed(400ms)});
  flux::Runtime rt(flux::Config{.threads = 1});
  std::vector<flux::RunHandle> waiting;
  for (int i = 0; i < 10; ++i) waiting.push_back(rt.start(once, i));
  auto quick = rt.run(flux::node("quick", [](std::int64_t x) { return x; }), 1);
  ASSERT_TRUE(quick.ok());
  const auto quick_info = rt.get_run(quick.run_id);
  for (auto& h : waiting) {
    flux::RunResult r = h.wait();
    ASSERT_TRUE(r.ok());
    auto attempts = entries_of(*rt.get_run(r.run_id), "0");
    ASSERT_EQ(attempts.size(), 2u);
    EXPECT_LT(*quick_info->finished, attempts[1].start);
    EXPECT_GE(attempts[1].start - attempts[0].end, 400ms);
  }
  EXPECT_EQ(calls, 20);
}

// ---- Timeouts --------------------------------------------------------------------------

TEST(Timeout, AnAsyncNodeIsAbandonedAndItsLateResultNeverRecorded) {
  std::atomic<bool> returned{false};
  auto slow = flux::node("slow", [&returned](std::int64_t x) {
                return std::async(std::launch::async, [x, &returned] {
                  std::this_thread::sleep_for(1500ms);
                  returned = true;
                  return x;
                });
              }).timeout(200ms);
  flux::Runtime rt;
  flux::RunResult r = rt.run(slow, 5);
  EXPECT_EQ(r.status, RunStatus::failed);
  EXPECT_EQ(r.error->message, "node 'slow' (step 0) timed out after 0.200 s");
  EXPECT_FALSE(returned);  // the run ended before the work did
  ASSERT_TRUE(wait_until(returned));
  std::this_thread::sleep_for(50ms);
  auto info = rt.get_run(r.run_id);
  auto attempts = entries_of(*info, "0");
  ASSERT_EQ(attempts.size(), 1u);  // the late result was dropped
  EXPECT_EQ(attempts[0].error, "node 'slow' (step 0) timed out after 0.200 s");
  EXPECT_GE(attempts[0].duration, 200ms);
  EXPECT_LT(attempts[0].duration, 1500ms);
}

TEST(Timeout, ABlockingNodeSeesCancelledAndIsRetried) {
  std::atomic<bool> saw_cancelled{false}, first_returned{false};
  auto node = flux::node("fetch",
                         [&](std::int64_t x, flux::Context& ctx) {
                           if (ctx.attempt() == 1) {
                             EXPECT_TRUE(ctx.deadline().has_value());
                             saw_cancelled = wait_for_cancel(ctx);  // until the timeout abandons it
                             first_returned = true;
                             return x;  // too late: ignored
                           }
                           return x * 100;
                         })
                  .blocking()
                  .timeout(150ms)
                  .retry({.attempts = 2, .backoff = flux::fixed(10ms)});
  flux::Runtime rt;
  flux::RunResult r = rt.run(node, 3);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.value<std::int64_t>(), 300);
  ASSERT_TRUE(wait_until(first_returned));
  EXPECT_TRUE(saw_cancelled);
  std::this_thread::sleep_for(50ms);
  auto attempts = entries_of(*rt.get_run(r.run_id), "0");
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].attempt, 1u);
  EXPECT_EQ(attempts[0].error, "node 'fetch' (step 0) timed out after 0.150 s");
  EXPECT_GE(attempts[0].duration, 150ms);
  EXPECT_EQ(attempts[1].attempt, 2u);
  EXPECT_EQ(attempts[1].output, flux::Value(std::int64_t{300}));
}

TEST(Timeout, ASyncNodeIsFailedWhenItReturnsLate) {
  std::optional<flux::Timestamp> deadline;
  auto node = flux::node("sync", [&deadline](std::int64_t x, flux::Context& ctx) {
                deadline = ctx.deadline();
                std::this_thread::sleep_for(250ms);
                return x;
              }).timeout(100ms);
  flux::Runtime rt;
  flux::RunResult r = rt.run(node, 1);
  EXPECT_EQ(r.status, RunStatus::failed);
  EXPECT_EQ(r.error->message, "node 'sync' (step 0) timed out after 0.100 s");
  auto attempts = entries_of(*rt.get_run(r.run_id), "0");
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_GE(attempts[0].duration, 250ms);  // it could not be cut short
  ASSERT_TRUE(deadline);
  EXPECT_GE(*deadline - attempts[0].start, 100ms);
  EXPECT_LT(*deadline - attempts[0].start, 200ms);
}

// ---- Cancellation ----------------------------------------------------------------------

TEST(Cancel, MidParallelNoFurtherStepStartsAndRunningOnesSeeCancelled) {
  std::atomic<int> a_started{0}, b_started{0}, after_runs{0};
  std::atomic<bool> a_saw{false}, b_saw{false};
  auto a = flux::node("a", [&](std::int64_t x, flux::Context& ctx) {
             ++a_started;
             a_saw = wait_for_cancel(ctx);
             return x;
           }).blocking();
  auto b = flux::node("b", [&](std::int64_t x, flux::Context& ctx) {
             ++b_started;
             b_saw = wait_for_cancel(ctx);
             return x;
           }).blocking();
  auto b2 = flux::node("b2", [&](std::int64_t x) {
    ++after_runs;
    return x;
  });
  auto after = flux::node("after", [&](std::int64_t x, std::int64_t) {
    ++after_runs;
    return x;
  });
  flux::Runtime rt;
  flux::RunHandle h = rt.start(flux::parallel(a, b | b2) | after, 1);
  std::atomic<bool> both{false};
  std::thread watch([&] {
    while (a_started + b_started < 2) std::this_thread::sleep_for(1ms);
    both = true;
  });
  ASSERT_TRUE(wait_until(both));
  watch.join();
  EXPECT_TRUE(h.cancel("enough"));
  EXPECT_FALSE(h.cancel("again"));  // once
  auto r = h.wait_for(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, RunStatus::cancelled);
  EXPECT_FALSE(r->ok());
  ASSERT_TRUE(r->error);
  EXPECT_EQ(r->error->message,
            "run " + h.run_id() + " was cancelled by " + rt.owner_id() + ": enough");
  EXPECT_THROW(r->throw_if_failed(), flux::Error);
  EXPECT_TRUE(wait_until(a_saw));
  EXPECT_TRUE(wait_until(b_saw));
  EXPECT_EQ(after_runs, 0);

  auto info = rt.get_run(h.run_id());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, RunStatus::cancelled);
  EXPECT_EQ(info->error, r->error);
  ASSERT_EQ(count_type(*info, HistoryEntry::Type::cancel), 1u);
  const HistoryEntry* mark = find_type(*info, HistoryEntry::Type::cancel);
  EXPECT_EQ(mark->node, "cancel");
  EXPECT_EQ(mark->input,
            flux::Value(flux::Value::Map{{"by", rt.owner_id()}, {"reason", "enough"}}));
  // The abandoned steps are recorded as failed attempts, after the cancel entry.
  for (const std::string step : {"0.0.0", "0.1.0"}) {
    auto attempts = entries_of(*info, step);
    ASSERT_EQ(attempts.size(), 1u) << step;
    EXPECT_TRUE(contains(*attempts[0].error, "was abandoned: run " + h.run_id() + " was cancelled"))
        << *attempts[0].error;
    EXPECT_GT(attempts[0].seq, mark->seq);
  }
  EXPECT_TRUE(entries_of(*info, "0.1.1").empty());
  EXPECT_TRUE(entries_of(*info, "1").empty());

  // Listed and filtered by the new status.
  auto cancelled = rt.list_runs({.status = RunStatus::cancelled});
  ASSERT_EQ(cancelled.size(), 1u);
  EXPECT_EQ(cancelled[0].id, h.run_id());
  EXPECT_TRUE(rt.list_runs({.status = RunStatus::failed}).empty());
  EXPECT_EQ(std::string(flux::to_string(RunStatus::cancelled)), "cancelled");
}

TEST(Cancel, ARunCancelledInItsBackoffEndsAtOnceAndResumeNeedsToBeExplicit) {
  std::atomic<int> calls{0};
  auto node = flux::node("stubborn", [&calls](std::int64_t) -> std::int64_t {
                ++calls;
                throw std::runtime_error("still broken");
              }).retry({.attempts = 4, .backoff = flux::fixed(30s)});
  flux::Runtime rt;
  flux::RunHandle h = rt.start(node, 1);
  std::atomic<bool> in_backoff{false};
  std::thread watch([&] {
    while (calls < 1) std::this_thread::sleep_for(1ms);
    in_backoff = true;
  });
  ASSERT_TRUE(wait_until(in_backoff));
  watch.join();
  std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(rt.cancel(h.run_id(), "stop retrying"));
  auto r = h.wait_for(10s);  // not 30 s: the wait is cut short
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, RunStatus::cancelled);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(rt.cancel(h.run_id()));  // it has ended

  // Resuming a cancelled run is refused unless asked for; then the attempts go on from 2
  // and the budget of 4 is what is left.
  try {
    rt.resume(h.run_id(), node);
    FAIL() << "resumed a cancelled run";
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::invalid_argument);
    EXPECT_TRUE(contains(e.what(), "was cancelled by")) << e.what();
    EXPECT_TRUE(contains(e.what(), "ResumeOptions{.cancelled = true}")) << e.what();
  }
  EXPECT_EQ(rt.get_run(h.run_id())->status, RunStatus::cancelled);
  auto quick = node.retry({.attempts = 4, .backoff = flux::fixed(1ms)});
  flux::RunResult again = rt.resume(h.run_id(), quick, {.cancelled = true});
  EXPECT_EQ(again.status, RunStatus::failed);
  EXPECT_EQ(again.error->message, "node 'stubborn' (step 0) failed after 4 attempts: still broken");
  EXPECT_EQ(calls, 4);
  auto attempts = entries_of(*rt.get_run(h.run_id()), "0");
  ASSERT_EQ(attempts.size(), 4u);
  for (std::uint32_t i = 0; i < 4; ++i) EXPECT_EQ(attempts[i].attempt, i + 1);
}

TEST(Cancel, UnknownRunIsNotFound) {
  flux::Runtime rt;
  try {
    rt.cancel("no-such-run");
    FAIL();
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::not_found);
  }
}

TEST(Cancel, FromAnotherRuntimeSharingTheStore) {
  auto& redis = flux::test::shared_redis();
  const std::string prefix = flux::test::unique_prefix("control");
  std::atomic<bool> started{false}, saw{false};
  auto wait = flux::node("wait", [&](std::int64_t x, flux::Context& ctx) {
                if (ctx.attempt() > 1) return x;  // a resumed run goes through
                started = true;
                saw = wait_for_cancel(ctx);
                return x;
              }).blocking();
  std::atomic<int> after_runs{0};
  auto after = flux::node("after", [&](std::int64_t x) {
    ++after_runs;
    return x + 1;
  });
  auto pipeline = wait | after;
  // The owner checks for cancel requests at each lease renewal: every second here.
  flux::Runtime owner(flux::Config{.store = redis.url(), .key_prefix = prefix, .lease_ttl = 3s});
  flux::Runtime other(flux::Config{.store = redis.url(), .key_prefix = prefix});
  flux::RunHandle h = owner.start(pipeline, 1);
  ASSERT_TRUE(wait_until(started));
  const flux::Timestamp asked =
      std::chrono::time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now());
  EXPECT_TRUE(other.cancel(h.run_id(), "from elsewhere"));
  auto r = h.wait_for(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, RunStatus::cancelled);
  EXPECT_EQ(r->error->message,
            "run " + h.run_id() + " was cancelled by " + other.owner_id() + ": from elsewhere");
  EXPECT_TRUE(wait_until(saw));
  EXPECT_EQ(after_runs, 0);

  auto info = other.get_run(h.run_id());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, RunStatus::cancelled);
  const HistoryEntry* mark = find_type(*info, HistoryEntry::Type::cancel);
  ASSERT_TRUE(mark);
  EXPECT_EQ(mark->input,
            flux::Value(flux::Value::Map{{"by", other.owner_id()}, {"reason", "from elsewhere"}}));
  // Picked up at a lease renewal (every second here): measured, for the report.
  EXPECT_GE(mark->start, asked);
  RecordProperty("pickup_ms", std::to_string((mark->start - asked) / 1ms));
  std::printf("cancel request picked up after %lld ms\n",
              static_cast<long long>((mark->start - asked) / 1ms));
  auto listed = other.list_runs({.status = RunStatus::cancelled});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, h.run_id());
  EXPECT_TRUE(other.list_runs({.status = RunStatus::running}).empty());
  EXPECT_EQ(other.list_runs().size(), 1u);

  EXPECT_THROW(other.resume(h.run_id(), pipeline), flux::Error);
  flux::RunResult resumed = other.resume(h.run_id(), pipeline, {.cancelled = true});
  ASSERT_TRUE(resumed.ok()) << resumed.error->message;
  EXPECT_EQ(resumed.value<std::int64_t>(), 2);
  EXPECT_EQ(other.get_run(h.run_id())->status, RunStatus::completed);
  EXPECT_TRUE(other.list_runs({.status = RunStatus::cancelled}).empty());
}

// ---- Deadlines -------------------------------------------------------------------------

TEST(Deadline, ExpiringInsideANestedParallelCancelsTheRun) {
  std::atomic<bool> saw{false};
  std::optional<flux::Timestamp> seen_deadline;
  std::atomic<int> after_runs{0};
  auto inc = flux::node("inc", [](std::int64_t x) { return x + 1; });
  auto stuck = flux::node("stuck", [&](std::int64_t x, flux::Context& ctx) {
                 seen_deadline = ctx.deadline();
                 saw = wait_for_cancel(ctx);
                 return x;
               }).blocking();
  auto last = flux::node("last", [&](const flux::Value& v) {
    ++after_runs;
    return v;
  });
  auto pipeline = inc | flux::parallel(inc, flux::parallel(stuck, inc)) | last;
  flux::Runtime rt;
  flux::RunHandle h = rt.start(pipeline, 1, {.deadline = 300ms});
  auto r = h.wait_for(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, RunStatus::cancelled);
  EXPECT_EQ(r->error->message, "run " + h.run_id() + " was cancelled: deadline exceeded");
  EXPECT_TRUE(wait_until(saw));
  EXPECT_EQ(after_runs, 0);
  auto info = rt.get_run(h.run_id());
  ASSERT_TRUE(info && info->deadline);
  EXPECT_EQ(*info->deadline - info->created, 300ms);
  EXPECT_EQ(seen_deadline, info->deadline);  // through two parallels
  EXPECT_GE(*info->finished - info->created, 300ms);
  const HistoryEntry* mark = find_type(*info, HistoryEntry::Type::cancel);
  ASSERT_TRUE(mark);
  EXPECT_EQ(mark->input,
            flux::Value(flux::Value::Map{{"by", "deadline"}, {"reason", "deadline exceeded"}}));
  EXPECT_GE(mark->start, *info->deadline);
  // Both parallels record that they were cut short. They conclude side by side: the inner
  // one's entry may be appended just after the run ended (as a step's after a fail-fast).
  for (int i = 0; i < 500 && count_type(*info, HistoryEntry::Type::parallel) < 2; ++i) {
    std::this_thread::sleep_for(10ms);
    info = rt.get_run(h.run_id());
  }
  std::size_t parallels = 0;
  for (const HistoryEntry& e : info->history) {
    if (e.type != HistoryEntry::Type::parallel) continue;
    ++parallels;
    EXPECT_TRUE(e.error && contains(*e.error, "deadline exceeded")) << e.step;
  }
  EXPECT_EQ(parallels, 2u);
}

TEST(Deadline, ConfigDeadlineAppliesToEveryRunAndAQuickRunIsUntouched) {
  flux::Runtime rt(flux::Config{.deadline = 200ms});
  auto stuck = flux::node("stuck", [](std::int64_t x, flux::Context& ctx) {
                 wait_for_cancel(ctx);
                 return x;
               }).blocking();
  flux::RunResult slow = rt.run(stuck, 1);
  EXPECT_EQ(slow.status, RunStatus::cancelled);
  flux::RunResult quick = rt.run(flux::node("q", [](std::int64_t x) { return x; }), 1);
  EXPECT_TRUE(quick.ok());
  auto info = rt.get_run(quick.run_id);
  ASSERT_TRUE(info->deadline);
  EXPECT_EQ(count_type(*info, HistoryEntry::Type::cancel), 0u);
  // A run's own deadline wins over the Config's.
  flux::RunResult longer = rt.run(flux::node("q", [](std::int64_t x) { return x; }), 2,
                                  flux::RunOptions{.deadline = 5s});
  EXPECT_EQ(*rt.get_run(longer.run_id)->deadline - rt.get_run(longer.run_id)->created, 5s);
}

// ---- Shutdown --------------------------------------------------------------------------

/// A Runtime on the shared Redis with `grace` as its shutdown grace.
flux::Config shutdown_config(const std::string& prefix, std::chrono::milliseconds grace) {
  flux::Config config;
  config.store = flux::test::shared_redis().url();
  config.key_prefix = prefix;
  config.shutdown_grace = grace;
  return config;
}

TEST(Shutdown, AStuckNodeDoesNotHoldTheRuntimeBeyondItsGraceAndTheRunIsLeftToResume) {
  const std::string prefix = flux::test::unique_prefix("shutdown");
  auto release = std::make_shared<std::atomic<bool>>(false);
  auto entered = std::make_shared<std::atomic<bool>>(false);
  auto first = flux::node("first", [](std::int64_t x) { return x + 1; });
  // Ignores cancellation: returns only once the test releases it.
  auto stuck = flux::node("stuck", [release, entered](std::int64_t x) {
                 *entered = true;
                 while (!*release) std::this_thread::sleep_for(5ms);
                 return x * 10;
               }).blocking();
  auto pipeline = first | stuck;
  std::optional<flux::Runtime> owner;
  owner.emplace(shutdown_config(prefix, 600ms));
  const std::string run_id = owner->start(pipeline, 1).run_id();
  ASSERT_TRUE(wait_until(*entered));
  const auto began = std::chrono::steady_clock::now();
  owner.reset();  // ~Runtime
  const auto took = std::chrono::steady_clock::now() - began;
  std::printf("~Runtime returned after %lld ms (grace 600 ms)\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  EXPECT_GE(took, 300ms);  // it waited for the run first
  EXPECT_LT(took, 3s);     // and did not wait for the stuck step (before: forever)
  flux::Runtime rt(shutdown_config(prefix, 5s));
  auto info = rt.get_run(run_id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, RunStatus::running);
  auto attempts = entries_of(*info, "1");
  ASSERT_EQ(attempts.size(), 1u);
  ASSERT_TRUE(attempts[0].error);
  EXPECT_NE(attempts[0].error->find("node 'stuck' (step 1) was abandoned: the runtime "),
            std::string::npos)
      << *attempts[0].error;
  EXPECT_NE(attempts[0].error->find("shut down (Config::shutdown_grace 0.600 s) before the run "
                                    "ended; it is left to resume"),
            std::string::npos)
      << *attempts[0].error;
  // Its lease was given up: an orphan at once, which resume finishes.
  bool orphan = false;
  for (const auto& o : rt.list_orphans()) orphan = orphan || o.id == run_id;
  EXPECT_TRUE(orphan);
  release->store(true);
  auto r = rt.resume(run_id, pipeline);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.value<std::int64_t>(), 20);
  info = rt.get_run(run_id);
  EXPECT_EQ(info->status, RunStatus::completed);
  EXPECT_EQ(entries_of(*info, "0").size(), 1u);  // `first` was not executed again
  attempts = entries_of(*info, "1");
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[1].attempt, 2u);
  EXPECT_TRUE(attempts[1].ok());
}

TEST(Shutdown, ACooperativeStepSeesCancelledAndItsRunIsLeftToResume) {
  const std::string prefix = flux::test::unique_prefix("shutdown");
  auto saw = std::make_shared<std::atomic<bool>>(false);
  auto started = std::make_shared<std::atomic<bool>>(false);
  auto wait = flux::node("wait", [saw, started](std::int64_t x, flux::Context& ctx) {
                if (ctx.attempt() > 1) return x + 100;
                *started = true;
                *saw = wait_for_cancel(ctx);
                return x;
              }).blocking();
  std::string run_id;
  const auto began = std::chrono::steady_clock::now();
  {
    flux::Runtime rt(shutdown_config(prefix, 400ms));
    run_id = rt.start(flux::Pipeline(wait), 1).run_id();
    ASSERT_TRUE(wait_until(*started));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - began, 3s);
  EXPECT_TRUE(*saw);
  flux::Runtime rt(shutdown_config(prefix, 5s));
  auto info = rt.get_run(run_id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, RunStatus::running);
  EXPECT_EQ(count_type(*info, HistoryEntry::Type::cancel), 0u);  // not a cancellation
  auto r = rt.resume(run_id, flux::Pipeline(wait));
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.value<std::int64_t>(), 101);
}

TEST(Shutdown, RunsThatEndWithinTheGraceAreRecordedAsUsual) {
  const std::string prefix = flux::test::unique_prefix("shutdown");
  auto slow = flux::node("slow", [](std::int64_t x) {
                std::this_thread::sleep_for(300ms);
                return x + 1;
              }).blocking();
  std::string run_id;
  {
    flux::Runtime rt(shutdown_config(prefix, 5s));
    run_id = rt.start(flux::Pipeline(slow), 1).run_id();
  }
  flux::Runtime rt(shutdown_config(prefix, 5s));
  auto info = rt.get_run(run_id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, RunStatus::completed);
  EXPECT_EQ(info->output, flux::Value(std::int64_t{2}));
}

}  // namespace
