// Resume within one process, on the memory store and on Redis: a failed run retried
// from the failed step with everything before it preserved; completed steps never
// executed again (also inside a parallel); kv and shared state restored; each refusal
// (unknown id, other pipeline, live owner, completed run) leaves the store untouched;
// fencing refuses a stale owner's writes.

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <flux/flux.hpp>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "support/redis_server.hpp"

namespace {

using namespace std::chrono_literals;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

flux::test::RedisServer& redis() { return flux::test::shared_redis(); }

std::string next_prefix() { return flux::test::unique_prefix("resume"); }

/// Counts executions per node name and fails chosen nodes while `failing` says so.
struct Script {
  std::mutex mu;
  std::map<std::string, int> executions;
  std::set<std::string> failing;

  flux::Node add(const std::string& name, std::int64_t k) {
    return flux::node(name, [this, name, k](std::int64_t x, flux::Context& ctx) {
      {
        std::lock_guard lock(mu);
        ++executions[name];
        if (failing.count(name)) throw std::runtime_error(name + " is down");
      }
      ctx.save(name, x + k);
      ctx.shared().add("calls", 1);
      return x + k;
    });
  }
  int count(const std::string& name) {
    std::lock_guard lock(mu);
    return executions[name];
  }
};

class Resume : public ::testing::TestWithParam<std::string> {
 protected:
  flux::Config config() {
    if (GetParam() == "memory") return flux::Config{.store = "memory"};
    return flux::Config{.store = redis().url(), .key_prefix = prefix_};
  }
  std::string prefix_ = next_prefix();
};

TEST_P(Resume, AFailedRunIsRetriedFromTheFailedStepWithEverythingBeforeItPreserved) {
  Script s;
  auto pipeline = s.add("a", 1) | s.add("b", 10) | s.add("c", 100) | s.add("d", 1000);
  flux::Runtime rt(config());
  s.failing = {"c"};
  auto failed = rt.run(pipeline, 0);
  ASSERT_EQ(failed.status, flux::RunStatus::failed);
  EXPECT_EQ(failed.error->step, "2");

  s.failing.clear();
  auto r = rt.resume(failed.run_id, pipeline);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.run_id, failed.run_id);
  EXPECT_EQ(r.value<std::int64_t>(), 1111);  // what an uninterrupted run gives
  EXPECT_EQ(s.count("a"), 1);
  EXPECT_EQ(s.count("b"), 1);
  EXPECT_EQ(s.count("c"), 2);
  EXPECT_EQ(s.count("d"), 1);

  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->status, flux::RunStatus::completed);
  EXPECT_FALSE(info->error.has_value());
  std::vector<std::string> seen;
  for (const auto& e : info->history) {
    seen.push_back(e.node + "@" + e.step + "#" + std::to_string(e.attempt) + (e.ok() ? "" : "!"));
  }
  EXPECT_EQ(seen,
            (std::vector<std::string>{"a@0#1", "b@1#1", "c@2#1!", "resume@#1", "c@2#2", "d@3#1"}));
  const auto& mark = info->history[3];
  EXPECT_EQ(mark.type, flux::HistoryEntry::Type::resume);
  EXPECT_EQ(mark.input.at("from_status"), flux::Value("failed"));
  EXPECT_EQ(mark.output.at("reused_steps"), flux::Value(2));
  // kv and shared state from before the failure are still there, and were added to.
  EXPECT_EQ(rt.run_keys(r.run_id),
            (flux::Value::Map{{"a", 1}, {"b", 11}, {"c", 111}, {"d", 1111}}));
  EXPECT_EQ(rt.run_keys(r.run_id, flux::Scope::shared).at("calls"), flux::Value(4));
}

TEST_P(Resume, OnlyTheUnfinishedBranchesOfAParallelRunAgain) {
  Script s;
  auto add =
      flux::node("sum", [](std::int64_t a, std::int64_t b, std::int64_t c) { return a + b + c; });
  auto slow = flux::node("slow",
                         [](std::int64_t x) {  // x and z finish before y2 fails
                           std::this_thread::sleep_for(50ms);
                           return x;
                         })
                  .blocking();
  auto pipeline =
      s.add("head", 1) |
      flux::parallel(s.add("x", 10), s.add("y", 20) | slow | s.add("y2", 2), s.add("z", 30)) | add;
  flux::Runtime rt(config());
  s.failing = {"y2"};
  auto failed = rt.run(pipeline, 0);
  ASSERT_EQ(failed.status, flux::RunStatus::failed);
  EXPECT_EQ(failed.error->step, "1.1.2");
  s.failing.clear();
  auto r = rt.resume(failed.run_id, pipeline);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.value<std::int64_t>(), 11 + 23 + 31);
  EXPECT_EQ(s.count("head"), 1);
  EXPECT_EQ(s.count("y"), 1);
  EXPECT_EQ(s.count("y2"), 2);
  EXPECT_EQ(s.count("x"), 1);
  EXPECT_EQ(s.count("z"), 1);
}

TEST_P(Resume, ACompletedRunReturnsItsStoredResultAndExecutesNothing) {
  Script s;
  auto pipeline = s.add("a", 1) | s.add("b", 2);
  flux::Runtime rt(config());
  auto done = rt.run(pipeline, 5);
  ASSERT_TRUE(done.ok());
  auto before = rt.get_run(done.run_id);
  auto again = rt.resume(done.run_id, pipeline);
  EXPECT_TRUE(again.ok());
  EXPECT_EQ(again.value<std::int64_t>(), 8);
  EXPECT_EQ(s.count("a"), 1);
  EXPECT_EQ(s.count("b"), 1);
  EXPECT_EQ(rt.get_run(done.run_id), before);
}

TEST_P(Resume, AnUnknownRunIdIsNotFound) {
  Script s;
  flux::Runtime rt(config());
  try {
    (void)rt.resume("no-such-run", s.add("a", 1));
    ADD_FAILURE() << "resumed a run that does not exist";
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::not_found);
    EXPECT_EQ(std::string(e.what()), "run no-such-run is not in the store");
  }
  EXPECT_TRUE(rt.list_runs().empty());
}

TEST_P(Resume, ADifferentPipelineIsRefusedAndTheStoreIsLeftAlone) {
  Script s;
  auto original = (s.add("a", 1) | s.add("b", 2)).named("orig");
  auto other = (s.add("a", 1) | s.add("B", 2)).named("other");
  flux::Runtime rt(config());
  s.failing = {"b"};
  auto failed = rt.run(original, 0);
  auto before = rt.get_run(failed.run_id);
  try {
    (void)rt.resume(failed.run_id, other);
    ADD_FAILURE() << "resumed with another pipeline";
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::invalid_argument);
    EXPECT_TRUE(contains(
        e.what(), "recorded with pipeline 'orig' (fingerprint " + original.fingerprint() + ")"))
        << e.what();
    EXPECT_TRUE(contains(e.what(), other.fingerprint())) << e.what();
  }
  EXPECT_EQ(rt.get_run(failed.run_id), before);
  EXPECT_FALSE(rt.storage().lease_holder(failed.run_id).has_value());
}

TEST_P(Resume, ARunOwnedByALiveProcessIsRefusedNamingTheOwner) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false, entered = false;
  auto gate = flux::node("gate", [&](std::int64_t x) {
                std::unique_lock lock(mu);
                entered = true;
                cv.notify_all();
                cv.wait(lock, [&] { return release; });
                return x;
              }).blocking();
  flux::Config cfg = config();
  if (GetParam() == "memory") {
    cfg.storage = std::make_shared<flux::MemoryStorage>();  // shared by both runtimes
  }
  flux::Runtime owner(cfg);
  flux::Runtime other(cfg);
  auto handle = owner.start(gate, 1);
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  // A run becomes visible to others with its first batch of records, just after start().
  for (int i = 0; i < 200 && !other.get_run(handle.run_id()); ++i) std::this_thread::sleep_for(5ms);
  try {
    (void)other.resume(handle.run_id(), gate);
    ADD_FAILURE() << "resumed a run that a live process owns";
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::run_owned);
    EXPECT_TRUE(contains(e.what(), "is owned by " + owner.owner_id())) << e.what();
  }
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(handle.wait().ok());
  EXPECT_TRUE(owner.list_orphans().empty());
}

TEST_P(Resume, AStaleOwnersWritesAreRefusedByTheFence) {
  flux::Runtime rt(config());
  flux::Storage& store = rt.storage();
  flux::RunInfo info;
  info.id = "fenced-run";
  auto first = store.acquire_lease(info.id, "first-owner", 50ms);
  ASSERT_TRUE(first.lease.has_value());
  std::this_thread::sleep_for(120ms);  // first owner stalls; its lease expires
  auto second = store.acquire_lease(info.id, "second-owner", 10s);
  ASSERT_TRUE(second.lease.has_value());
  EXPECT_GT(second.lease->token, first.lease->token);
  EXPECT_EQ(store.lease_holder(info.id), std::optional<std::string>("second-owner"));
  EXPECT_FALSE(store.renew_lease(info.id, *first.lease, 10s));

  flux::Write stale{flux::Write::PutRun{std::make_shared<const flux::RunInfo>(info)},
                    first.lease->token};
  auto refused = store.apply(std::span<const flux::Write>(&stale, 1));
  ASSERT_EQ(refused.size(), 1u) << "a stale owner wrote into the run";
  EXPECT_EQ(refused[0].run_id, info.id);
  EXPECT_EQ(refused[0].fence, first.lease->token);
  EXPECT_EQ(refused[0].error.code(), flux::Errc::run_owned) << refused[0].error.what();
  EXPECT_FALSE(store.get_run(info.id).has_value());
  flux::Write fresh{flux::Write::PutRun{std::make_shared<const flux::RunInfo>(info)},
                    second.lease->token};
  EXPECT_TRUE(store.apply(std::span<const flux::Write>(&fresh, 1)).empty());
  EXPECT_TRUE(store.get_run(info.id).has_value());
}

TEST_P(Resume, ConcurrentAcquirersOfOneLeaseGetExactlyOneGrant) {
  flux::Runtime rt(config());
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto got = rt.storage().acquire_lease("contended", "owner" + std::to_string(i), 10s);
      granted += got.lease.has_value();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 1);
}

TEST_P(Resume, RunsWithoutFullHistoryValuesCannotBeResumed) {
  Script s;
  auto pipeline = s.add("a", 1) | s.add("b", 2);
  flux::Config cfg = config();
  cfg.history_values = flux::HistoryValues::none;
  flux::Runtime rt(cfg);
  s.failing = {"b"};
  auto failed = rt.run(pipeline, 0);
  try {
    (void)rt.resume(failed.run_id, pipeline);
    ADD_FAILURE() << "resumed without recorded outputs";
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::invalid_argument);
    EXPECT_TRUE(contains(e.what(), "without full history values")) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, Resume, ::testing::Values("memory", "redis"),
                         [](const auto& info) { return info.param; });

}  // namespace
