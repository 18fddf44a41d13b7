// Engine robustness: slow sync nodes keep their run's lease, one node serves many runs at
// once, nodes start child runs without deadlock, and the durability window is bounded.
// Each test reproduces a defect found by trying Flux as a user would.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <flux/flux.hpp>
#include <optional>
#include <thread>

#include "support/redis_server.hpp"

namespace {

using namespace std::chrono_literals;

[[maybe_unused]] bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

flux::test::RedisServer& redis() { return flux::test::shared_redis(); }

std::string next_prefix() { return flux::test::unique_prefix("robust"); }

flux::Config redis_config(std::chrono::milliseconds lease_ttl) {
  flux::Config config;
  config.store = redis().url();
  config.key_prefix = next_prefix();
  config.lease_ttl = lease_ttl;
  return config;
}

// A run started right after the Runtime, whose first node is a sync node running for 3x
// the lease's time to live: its lease claim must reach the store before the keeper renews
// it, so the run keeps its own lease and completes (it used to fail with "cancelled: another
// step of the run failed" after "lease lost to another owner").
void slow_first_node_keeps_its_lease(flux::Config config) {
  const auto ttl = config.lease_ttl;
  flux::Runtime rt(std::move(config));
  auto slow = flux::node("slow", [ttl](std::int64_t x) {
    std::this_thread::sleep_for(3 * ttl);
    return x + 1;
  });
  auto after = flux::node("after", [](std::int64_t x) { return x * 10; });
  flux::RunResult r = rt.run(slow | after, 4);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.value<std::int64_t>(), 50);
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, flux::RunStatus::completed);
  ASSERT_EQ(info->history.size(), 2u);
  EXPECT_EQ(info->history[1].node, "after");
}

TEST(LeaseOfASlowRun, SyncFirstNodeRunningThreeLeaseTtlsCompletesOnRedis) {
  slow_first_node_keeps_its_lease(redis_config(600ms));
}

TEST(LeaseOfASlowRun, SyncFirstNodeRunningThreeLeaseTtlsCompletesInMemory) {
  flux::Config config;
  config.store = "memory";
  config.lease_ttl = 600ms;
  slow_first_node_keeps_its_lease(std::move(config));
}

/// Counts how many executions are inside a node at once, and the most ever seen.
struct Concurrency {
  std::atomic<int> now{0}, most{0};
  void enter() {
    int n = ++now;
    for (int m = most.load(); n > m && !most.compare_exchange_weak(m, n);) {
    }
  }
  void leave() { --now; }
};

// One node used by 20 concurrent runs used to execute them one at a time (each node was
// one actor): 20 runs of a 50 ms sync node took 1,004 ms. Now its executions proceed side
// by side, one per scheduler thread.
TEST(NodeConcurrency, RunsThroughOneSyncNodeExecuteItSideBySide) {
  flux::Runtime rt(flux::Config{.store = "memory", .threads = 2});
  Concurrency seen;
  auto slow = flux::node("slow", [&](std::int64_t x) {
    seen.enter();
    std::this_thread::sleep_for(50ms);
    seen.leave();
    return x * 3;
  });
  std::vector<flux::RunHandle> handles;
  for (int i = 0; i < 20; ++i) handles.push_back(rt.start(slow, i));
  for (int i = 0; i < 20; ++i) {
    flux::RunResult r = handles[i].wait();
    ASSERT_TRUE(r.ok()) << r.error->message;
    EXPECT_EQ(r.value<std::int64_t>(), 3 * i);
  }
  EXPECT_EQ(seen.most.load(), 2) << "one execution per scheduler thread at a time";
}

// A node whose execution for one run never returns (until released) no longer blocks the
// runs queued behind it at that node: the other executors take them.
TEST(NodeConcurrency, AStuckExecutionDoesNotHoldUpOtherRunsOfTheSameNode) {
  flux::Runtime rt(flux::Config{.store = "memory", .threads = 3});
  std::atomic<bool> release{false};
  auto maybe_stuck = flux::node("maybe_stuck", [&](std::int64_t x) {
    if (x == 0) {
      while (!release) std::this_thread::sleep_for(1ms);
    }
    return x + 100;
  });
  flux::RunHandle stuck = rt.start(maybe_stuck, 0);
  std::this_thread::sleep_for(20ms);  // it is executing
  std::vector<flux::RunHandle> others;
  for (int i = 1; i <= 30; ++i) others.push_back(rt.start(maybe_stuck, i));
  for (int i = 0; i < 30; ++i) {
    auto r = others[i].wait_for(10s);
    ASSERT_TRUE(r.has_value()) << "run " << i + 1 << " waited behind the stuck execution";
    EXPECT_EQ(r->value<std::int64_t>(), i + 101);
  }
  EXPECT_FALSE(stuck.done());
  // Unrelated runs go on as well: the stuck execution holds one of three threads.
  auto other_node = flux::node("other", [](std::int64_t x) { return -x; });
  auto r = rt.start(other_node, 5).wait_for(10s);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->value<std::int64_t>(), -5);
  release = true;
  EXPECT_EQ(stuck.wait().value<std::int64_t>(), 100);
}

// Parallel branches that use the same node run at the same time too.
TEST(NodeConcurrency, ParallelBranchesOfTheSameNodeRunAtTheSameTime) {
  flux::Runtime rt(flux::Config{.store = "memory", .threads = 4});
  Concurrency seen;
  auto slow = flux::node("slow", [&](std::int64_t x) {
    seen.enter();
    std::this_thread::sleep_for(30ms);
    seen.leave();
    return x + 1;
  });
  auto sum = flux::node("sum", [](std::vector<std::int64_t> xs) {
    std::int64_t s = 0;
    for (auto x : xs) s += x;
    return s;
  });
  flux::RunResult r = rt.run(flux::parallel(slow, slow, slow, slow) | sum, 1);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.value<std::int64_t>(), 8);
  EXPECT_GE(seen.most.load(), 2);
}

// ---- Child runs -------------------------------------------------------------------

// A node starts a child run and returns it: the node's output is the child's, the child
// names its parent, and the parent's history entry names the child — on memory and Redis.
void child_run_is_linked_to_its_parent(flux::Config config) {
  flux::Runtime rt(std::move(config));
  auto price = flux::node("price", [](std::int64_t qty) { return qty * 3; });
  auto order = flux::node(
      "order", [price](std::int64_t qty, flux::Context& ctx) { return ctx.start(price, qty + 1); });
  auto done = flux::node("done", [](std::int64_t total) { return total + 1000; });
  flux::RunResult r = rt.run(order | done, 4);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.value<std::int64_t>(), 1015);

  auto parent = rt.get_run(r.run_id);
  ASSERT_TRUE(parent);
  ASSERT_EQ(parent->history.size(), 2u);
  const flux::HistoryEntry& step = parent->history[0];
  EXPECT_EQ(step.node, "order");
  EXPECT_EQ(step.output, flux::Value(15));
  ASSERT_EQ(step.children.size(), 1u);
  EXPECT_TRUE(parent->parent_run_id.empty());

  auto child = rt.get_run(step.children[0]);
  ASSERT_TRUE(child);
  EXPECT_EQ(child->status, flux::RunStatus::completed);
  EXPECT_EQ(child->parent_run_id, r.run_id);
  EXPECT_EQ(child->parent_step, "0");
  EXPECT_EQ(child->input, flux::Value(5));
  EXPECT_EQ(child->output, flux::Value(15));
}

TEST(ChildRuns, AreLinkedToTheirParentInMemory) {
  child_run_is_linked_to_its_parent(flux::Config{.store = "memory"});
}

TEST(ChildRuns, AreLinkedToTheirParentOnRedis) {
  child_run_is_linked_to_its_parent(redis_config(10s));
}

// 100 parents at once, each starting children that start grandchildren (3 deep), with
// blocking and sync nodes, on a 2-thread scheduler and a 4-thread blocking pool: every run
// completes with the right value (blocking waits used to deadlock 2 of 2, 6 of 7).
TEST(ChildRuns, HundredsOfNestedChildrenNeverDeadlockOnFewThreads) {
  flux::Runtime rt(flux::Config{.store = "memory", .threads = 2, .blocking_threads = 4});
  auto leaf = flux::node("leaf", [](std::int64_t x) {
                std::this_thread::sleep_for(1ms);
                return x * 2;
              }).blocking();
  auto middle = flux::node("middle", [leaf](std::int64_t x, flux::Context& ctx) {
    return ctx.start(leaf | flux::node("plus1", [](std::int64_t y) { return y + 1; }), x);
  });
  auto top = flux::node(
      "top", [middle](std::int64_t x, flux::Context& ctx) { return ctx.start(middle, x + 10); });
  auto pipeline = top | flux::node("last", [](std::int64_t x) { return x - 1; });
  std::vector<flux::RunHandle> parents;
  for (int i = 0; i < 100; ++i) parents.push_back(rt.start(pipeline, i));
  for (int i = 0; i < 100; ++i) {
    auto r = parents[i].wait_for(60s);
    ASSERT_TRUE(r.has_value()) << "parent " << i << " never ended";
    ASSERT_TRUE(r->ok()) << r->error->message;
    EXPECT_EQ(r->value<std::int64_t>(), (i + 10) * 2 + 1 - 1);
  }
  // 100 parents, 100 children, 100 grandchildren.
  EXPECT_EQ(rt.list_runs().size(), 300u);
}

// A node that runs its own pipeline (recursion through child runs, 3 levels).
TEST(ChildRuns, ANodeCanRunItsOwnPipeline) {
  flux::Runtime rt(flux::Config{.store = "memory", .threads = 2});
  // The node refers to the pipeline that holds it: through a weak_ptr, so that the two do
  // not keep each other alive.
  auto self = std::make_shared<std::optional<flux::Pipeline>>();
  std::weak_ptr<std::optional<flux::Pipeline>> weak_self = self;
  auto countdown = flux::node("countdown", [weak_self](std::int64_t n, flux::Context& ctx) {
    if (n == 0) return ctx.start(flux::node("zero", [](std::int64_t) { return 100; }), 0);
    return ctx.start(**weak_self.lock(), n - 1);
  });
  *self = countdown | flux::node("inc", [](std::int64_t x) { return x + 1; });
  flux::RunResult r = rt.run(**self, 3);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.value<std::int64_t>(), 104);  // 100, then +1 at each of 4 levels
}

// A child that fails fails its parent's step, with the child's error.
TEST(ChildRuns, AFailingChildFailsTheParentStepWithTheChildsError) {
  flux::Runtime rt(flux::Config{.store = "memory"});
  auto broken = flux::node(
      "broken", [](std::int64_t) -> std::int64_t { throw std::runtime_error("no stock"); });
  auto order = flux::node(
      "order", [broken](std::int64_t x, flux::Context& ctx) { return ctx.start(broken, x); });
  flux::RunResult r = rt.run(order, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->node, "order");
  EXPECT_TRUE(contains(r.error->message, "node 'order' (step 0) failed: child run "))
      << r.error->message;
  EXPECT_TRUE(contains(r.error->message, "no stock")) << r.error->message;
  auto parent = rt.get_run(r.run_id);
  ASSERT_EQ(parent->history.size(), 1u);
  ASSERT_EQ(parent->history[0].children.size(), 1u);
  EXPECT_EQ(rt.get_run(parent->history[0].children[0])->status, flux::RunStatus::failed);
}

// Waiting for a run inside a node fails at once, naming the supported way, instead of
// risking a deadlock.
TEST(ChildRuns, WaitingForARunInsideANodeFailsAtOnceNamingTheWayToDoIt) {
  flux::Runtime rt(flux::Config{.store = "memory", .threads = 2});
  auto inner = flux::node("inner", [](std::int64_t x) { return x; });
  auto outer =
      flux::node("outer", [&](std::int64_t x) { return rt.run(inner, x).value<std::int64_t>(); });
  flux::RunResult r = rt.run(outer, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error->message, "node 'outer' (step 0) failed:")) << r.error->message;
  EXPECT_TRUE(contains(r.error->message, "ctx.start(pipeline, input)")) << r.error->message;
  auto blocking_outer = flux::node("outer", [&](std::int64_t x) {
                          return rt.run(inner, x).value<std::int64_t>();
                        }).blocking();
  flux::RunResult b = rt.run(blocking_outer, 1);
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(contains(b.error->message, "can deadlock")) << b.error->message;
}

}  // namespace
