// The cluster across separate hosts: the scenarios of tests/cluster_test.cpp with every worker
// in a network namespace of its own (tests/support/netns.hpp), listening on its host's
// address, so that a worker can be cut off (link down, or a firewall dropping everything) and
// not only killed or stopped. Redis runs in the root namespace on the hosts' gateway address;
// the driver is a cluster Runtime in the test process (root namespace), or, where a driver is
// killed, a `cluster_node driver` process on a host of its own. Needs root, iproute2,
// nftables and redis-server: without them these tests fail, they do not skip. Every wait is
// bounded.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <flux/flux.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "support/certs.hpp"
#include "support/cluster_nodes.hpp"
#include "support/netns.hpp"
#include "support/redis_server.hpp"
#include "support/worker_process.hpp"

namespace {

using namespace std::chrono_literals;
using flux::test::RedisServer;
using flux::test::unique_prefix;
using flux::test::VirtualHosts;
using flux::test::WorkerProcess;
using Clock = std::chrono::steady_clock;

flux::Timestamp wall_now() {
  return flux::Timestamp(std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::system_clock::now().time_since_epoch()));
}

class ClusterNetns : public ::testing::Test {
 protected:
  static constexpr int k_hosts = 3;

  std::unique_ptr<VirtualHosts> hosts;
  std::unique_ptr<RedisServer> redis;  // in the root namespace, on the gateway address
  std::string prefix = unique_prefix("netns");

  void SetUp() override {
    std::string why;
    ASSERT_TRUE(VirtualHosts::available(&why))
        << "virtual hosts need root, iproute2 and nftables (these tests cannot run without "
           "them): "
        << why;
    hosts = std::make_unique<VirtualHosts>(k_hosts, "fc");
    redis = std::make_unique<RedisServer>("", false, hosts->gateway_ip());
  }

  std::vector<std::string> on_host(int host) const {
    return {"ip", "netns", "exec", hosts->netns(host)};
  }

  /// A worker named `name` on host `host`, listening on the host's address: in plaintext
  /// (--allow-plaintext), or with `tls` ({cert, key, ca}) if given.
  std::unique_ptr<WorkerProcess> start_worker(int host, const std::string& name,
                                              const std::string& nodes = {},
                                              std::vector<std::string> env = {},
                                              std::vector<std::string> tls = {}) {
    std::vector<std::string> args{"--store", redis->url(), "--prefix", prefix,
                                  "--id",    name,         "--listen", hosts->ip(host)};
    if (!nodes.empty()) {
      args.push_back("--nodes");
      args.push_back(nodes);
    }
    if (tls.empty()) {
      args.push_back("--allow-plaintext");
    } else {
      args.push_back("--tls");
      args.insert(args.end(), tls.begin(), tls.end());
    }
    return std::make_unique<WorkerProcess>(FLUX_CLUSTER_NODE, name, args, env, on_host(host));
  }

  /// Where the driver reaches worker `w` of host `host`: "<ip>:<port>".
  std::string where(int host, const WorkerProcess& w) const {
    return hosts->ip(host) + ":" + std::to_string(w.port());
  }

  flux::Config driver_config() {
    flux::Config config;
    config.store = redis->url();
    config.key_prefix = prefix;
    config.cluster.enabled = true;
    config.cluster.placement_timeout = 5s;
    config.cluster.network.allow_plaintext = true;
    return config;
  }

  /// Waits (bounded) until the driver has seen exactly `names`: one-node runs placed on them.
  static void wait_for_workers(flux::Runtime& rt, const std::set<std::string>& names) {
    auto where_node = flux::test::where_node();
    std::set<std::string> seen;
    const auto deadline = Clock::now() + 10s;
    while (seen != names && Clock::now() < deadline) {
      auto r = rt.run(flux::Pipeline(where_node), 0);
      ASSERT_TRUE(r.ok()) << r.error->message;
      seen.insert(r.output.as_string());
    }
    ASSERT_EQ(seen, names);
  }

  /// Runs `where` until it ran on `name` (bounded by `limit`); returns how long that took, or
  /// nullopt.
  static std::optional<std::chrono::milliseconds> wait_until_used(flux::Runtime& rt,
                                                                  const std::string& name,
                                                                  std::chrono::seconds limit) {
    const auto started = Clock::now();
    const auto deadline = started + limit;
    while (Clock::now() < deadline) {
      auto r = rt.run(flux::Pipeline(flux::test::where_node()), 0);
      if (r.ok() && r.output.as_string() == name) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
      }
      if (!r.ok()) std::this_thread::sleep_for(100ms);
    }
    return std::nullopt;
  }

  /// Starts a slow step on worker A (host 0, the only worker), then worker B on host 1;
  /// applies `fault` to A mid-step. The step must be placed again on B (attempt 2), the run
  /// complete with the right output, and the lost attempt be recorded naming A's address.
  /// Returns how long after the fault the driver recorded the loss.
  std::chrono::milliseconds fault_mid_step(flux::Runtime& rt, WorkerProcess& a,
                                           std::unique_ptr<WorkerProcess>& b,
                                           const std::function<void()>& fault) {
    auto handle = rt.start(flux::Pipeline(flux::test::slow_node()), 10);
    std::this_thread::sleep_for(400ms);  // the step is executing on A (the only worker)
    b = start_worker(1, "B", "slow,where");
    std::this_thread::sleep_for(300ms);  // the driver knows B
    EXPECT_FALSE(handle.done());
    const auto fault_at = wall_now();
    fault();
    auto r = handle.wait_for(20s);
    EXPECT_TRUE(r) << "the run did not end within 20 s of the fault";
    if (!r) return {};
    EXPECT_TRUE(r->ok()) << r->error->message;
    if (!r->ok()) return {};
    EXPECT_EQ(r->output.as_int(), 11);
    auto info = rt.get_run(r->run_id);
    std::vector<flux::HistoryEntry> nodes;
    for (const auto& e : info->history) {
      if (e.type == flux::HistoryEntry::Type::node) nodes.push_back(e);
    }
    EXPECT_EQ(nodes.size(), 2u);
    if (nodes.size() != 2) return {};
    EXPECT_EQ(nodes[0].attempt, 1u);
    EXPECT_EQ(nodes[0].worker, "A");
    EXPECT_FALSE(nodes[0].ok());
    if (nodes[0].ok()) return {};
    EXPECT_NE(nodes[0].error->find("worker A at " + where(0, a) +
                                   " was lost while executing node 'slow' (step 0)"),
              std::string::npos)
        << *nodes[0].error;
    EXPECT_NE(nodes[0].error->find("placed again as attempt 2"), std::string::npos)
        << *nodes[0].error;
    std::printf("lost attempt: %s\n", nodes[0].error->c_str());
    EXPECT_EQ(nodes[1].attempt, 2u);
    EXPECT_EQ(nodes[1].worker, "B");
    EXPECT_TRUE(nodes[1].ok());
    return std::chrono::duration_cast<std::chrono::milliseconds>(nodes[0].end - fault_at);
  }

  /// A cut of host 0 (`cut`, later undone by `heal`) while A executes a step: detected by
  /// heartbeats, the step placed again on B; once healed, A is used again.
  void cut_mid_step(const char* what, const std::function<void()>& cut,
                    const std::function<void()>& heal) {
    auto a = start_worker(0, "A", "slow,where");
    flux::Runtime rt(driver_config());
    wait_for_workers(rt, {"A"});
    std::unique_ptr<WorkerProcess> b;
    auto detected = fault_mid_step(rt, *a, b, cut);
    std::printf("%s detected after %lld ms\n", what, static_cast<long long>(detected.count()));
    EXPECT_GE(detected, 500ms);  // heartbeats: ~connection_timeout (1 s), not at once
    EXPECT_LT(detected, 2500ms);
    heal();
    if (b) b->kill();  // only A is left: the next steps run on A once the driver has it again
    auto used = wait_until_used(rt, "A", 30s);
    ASSERT_TRUE(used) << "A was not used again within 30 s after the " << what << " was undone";
    std::printf("A used again %lld ms after the %s was undone\n",
                static_cast<long long>(used->count()), what);
  }
};

TEST_F(ClusterNetns, W2ShapedPipelineSpreadsItsBranchesOverTwoHosts) {
  auto a = start_worker(0, "A");
  auto b = start_worker(1, "B");
  flux::Runtime rt(driver_config());
  auto pipeline = flux::test::w2_pipeline();
  std::map<std::string, int> steps_per_worker;
  for (int i = 0; i < 20; ++i) {
    auto r = rt.run(pipeline, i);
    ASSERT_TRUE(r.ok()) << r.error->message;
    EXPECT_EQ(r.output.as_int(), (i + 1) * 55);
    auto info = rt.get_run(r.run_id);
    ASSERT_TRUE(info);
    int nodes = 0;
    for (const auto& e : info->history) {
      if (e.type != flux::HistoryEntry::Type::node) continue;
      ++nodes;
      EXPECT_TRUE(e.ok()) << e.node << ": " << *e.error;
      EXPECT_EQ(e.attempt, 1u);
      EXPECT_TRUE(e.worker == "A" || e.worker == "B") << e.node << " ran on '" << e.worker << "'";
      ++steps_per_worker[e.worker];
    }
    EXPECT_EQ(nodes, 12);
  }
  std::printf("steps on A: %d, on B: %d\n", steps_per_worker["A"], steps_per_worker["B"]);
  EXPECT_GT(steps_per_worker["A"], 40);
  EXPECT_GT(steps_per_worker["B"], 40);
}

TEST_F(ClusterNetns, AKilledWorkersStepIsPlacedAgainOnAnotherHost) {
  auto a = start_worker(0, "A", "slow,where");
  flux::Runtime rt(driver_config());
  wait_for_workers(rt, {"A"});
  std::unique_ptr<WorkerProcess> b;
  auto detected = fault_mid_step(rt, *a, b, [&] { a->signal(SIGKILL); });
  std::printf("SIGKILL detected after %lld ms\n", static_cast<long long>(detected.count()));
  EXPECT_LT(detected, 2000ms);
}

TEST_F(ClusterNetns, AHungWorkerIsDetectedByHeartbeatsAndItsStepPlacedAgainOnAnotherHost) {
  auto a = start_worker(0, "A", "slow,where");
  flux::Runtime rt(driver_config());
  wait_for_workers(rt, {"A"});
  std::unique_ptr<WorkerProcess> b;
  auto detected = fault_mid_step(rt, *a, b, [&] { a->signal(SIGSTOP); });
  std::printf("SIGSTOP detected after %lld ms\n", static_cast<long long>(detected.count()));
  EXPECT_GE(detected, 500ms);
  EXPECT_LT(detected, 2500ms);
  a->signal(SIGCONT);
  b->kill();
  auto used = wait_until_used(rt, "A", 30s);
  ASSERT_TRUE(used) << "A was not used again within 30 s of SIGCONT";
  std::printf("A used again %lld ms after SIGCONT\n", static_cast<long long>(used->count()));
}

TEST_F(ClusterNetns, AWorkerWhoseLinkGoesDownIsDetectedByHeartbeatsAndUsedAgainAfterLinkUp) {
  cut_mid_step(
      "link down", [&] { hosts->link_down(0); }, [&] { hosts->link_up(0); });
}

TEST_F(ClusterNetns, AWorkerCutOffByAFirewallIsDetectedByHeartbeatsAndUsedAgainAfterwards) {
  cut_mid_step(
      "firewall drop", [&] { hosts->drop_all(0); }, [&] { hosts->undrop(0); });
}

TEST_F(ClusterNetns, AWorkerJoiningFromANewHostMidRunTakesTheWaitingStep) {
  auto a = start_worker(0, "A", "inc,where");
  flux::Runtime rt(driver_config());
  wait_for_workers(rt, {"A"});
  // times2 is hosted by no one yet: the run waits for it.
  auto handle = rt.start(flux::test::inc_node() | flux::test::times_node(2), 4);
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(handle.done());
  auto b = start_worker(1, "B", "times2");
  auto r = handle.wait_for(10s);
  ASSERT_TRUE(r) << "the run did not end within 10 s of B's start";
  ASSERT_TRUE(r->ok()) << r->error->message;
  EXPECT_EQ(r->output.as_int(), 10);
  auto info = rt.get_run(r->run_id);
  ASSERT_TRUE(info);
  std::vector<std::string> workers;
  for (const auto& e : info->history) {
    if (e.type == flux::HistoryEntry::Type::node) {
      workers.push_back(e.node + "@" + e.worker + "#" + std::to_string(e.attempt));
    }
  }
  EXPECT_EQ(workers, (std::vector<std::string>{"inc@A#1", "times2@B#1"}));
}

TEST_F(ClusterNetns, AKilledDriversRunIsAdoptedByADriverOnAnotherHost) {
  auto a = start_worker(0, "A", "", {"FLUX_TEST_SLOW_MS=600"});
  auto b = start_worker(1, "B", "", {"FLUX_TEST_SLOW_MS=600"});
  // The first driver: a process on host 2.
  WorkerProcess first(FLUX_CLUSTER_NODE, "D1",
                      {"driver", "--store", redis->url(), "--prefix", prefix, "--pipeline", "slow3",
                       "--input", "1", "--lease-ttl-ms", "1000", "--allow-plaintext"},
                      {}, on_host(2));
  const std::string line = first.read_line(10s);
  ASSERT_EQ(line.rfind("run ", 0), 0u) << line;
  const std::string run_id = line.substr(4);
  flux::Config reader;
  reader.store = redis->url();
  reader.key_prefix = prefix;
  flux::Runtime store(reader);
  auto deadline = Clock::now() + 10s;
  while (store.history(run_id).empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(store.history(run_id).empty()) << "the first step was not recorded in 10 s";
  first.kill();

  // The second driver: in the test process (root namespace).
  auto config = driver_config();
  config.lease_ttl = 1000ms;
  config.cluster.adopt = flux::test::cluster_pipelines();
  config.cluster.adopt_interval = 200ms;
  flux::Runtime second(config);
  std::optional<flux::RunInfo> info;
  deadline = Clock::now() + 20s;
  do {
    std::this_thread::sleep_for(50ms);
    info = second.get_run(run_id);
  } while ((!info || info->status == flux::RunStatus::running) && Clock::now() < deadline);
  ASSERT_TRUE(info);
  ASSERT_EQ(info->status, flux::RunStatus::completed) << (info->error ? info->error->message : "");
  EXPECT_EQ(info->output.as_int(), 4);
  EXPECT_EQ(info->owner, second.owner_id());
  int resumes = 0, first_step_runs = 0;
  for (const auto& e : info->history) {
    resumes += e.type == flux::HistoryEntry::Type::resume;
    first_step_runs += e.step == "0" && e.ok();
    if (e.type == flux::HistoryEntry::Type::node) {
      EXPECT_TRUE(e.worker == "A" || e.worker == "B") << e.step << " ran on " << e.worker;
    }
  }
  EXPECT_EQ(resumes, 1);
  EXPECT_EQ(first_step_runs, 1);  // a recorded step is never executed again
}

TEST_F(ClusterNetns, ACutOffDriversRunIsAdoptedAndTheCutOffDriverStopsAfterLinkUp) {
  auto a = start_worker(0, "A", "", {"FLUX_TEST_SLOW_MS=600"});
  auto b = start_worker(1, "B", "", {"FLUX_TEST_SLOW_MS=600"});
  WorkerProcess first(FLUX_CLUSTER_NODE, "D1",
                      {"driver", "--store", redis->url(), "--prefix", prefix, "--pipeline", "slow3",
                       "--input", "1", "--lease-ttl-ms", "1000", "--allow-plaintext"},
                      {}, on_host(2));
  const std::string line = first.read_line(10s);
  ASSERT_EQ(line.rfind("run ", 0), 0u) << line;
  const std::string run_id = line.substr(4);
  flux::Config reader;
  reader.store = redis->url();
  reader.key_prefix = prefix;
  flux::Runtime store(reader);
  auto deadline = Clock::now() + 10s;
  while (store.history(run_id).empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(store.history(run_id).empty()) << "the first step was not recorded in 10 s";
  hosts->link_down(2);  // the driver lives on, but reaches neither Redis nor the workers

  auto config = driver_config();
  config.lease_ttl = 1000ms;
  config.cluster.adopt = flux::test::cluster_pipelines();
  config.cluster.adopt_interval = 200ms;
  flux::Runtime second(config);
  std::optional<flux::RunInfo> info;
  deadline = Clock::now() + 20s;
  do {
    std::this_thread::sleep_for(50ms);
    info = second.get_run(run_id);
  } while ((!info || info->status == flux::RunStatus::running) && Clock::now() < deadline);
  ASSERT_TRUE(info);
  ASSERT_EQ(info->status, flux::RunStatus::completed) << (info->error ? info->error->message : "");
  EXPECT_EQ(info->output.as_int(), 4);
  EXPECT_EQ(info->owner, second.owner_id());

  // The first driver comes back: it must not finish the run as well, nor change what the
  // second one stored.
  hosts->link_up(2);
  std::string last;
  try {
    last = first.read_line(30s);
  } catch (const std::exception& e) {
    last = std::string("(nothing: ") + e.what() + ")";
  }
  std::printf("the cut-off driver said: %s\n", last.c_str());
  EXPECT_EQ(last.rfind("failed ", 0), 0u) << last;
  auto after = store.get_run(run_id);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, flux::RunStatus::completed);
  EXPECT_EQ(after->owner, second.owner_id());
  EXPECT_EQ(after->output.as_int(), 4);
  EXPECT_EQ(after->history.size(), info->history.size());
  for (const auto& e : after->history) {
    std::printf("  %s step %s attempt %u on %s: %s\n", e.node.c_str(), e.step.c_str(),
                static_cast<unsigned>(e.attempt), e.worker.c_str(),
                e.ok() ? "ok" : e.error->c_str());
  }
}

// CAF 0.17 opens a connection with a blocking connect() inside its one middleman actor: a
// worker whose address does not answer (a host gone from the network, a firewall dropping its
// packets) held every later connect of the driver for the kernel's SYN timeout (~2 min), so
// a worker joining meanwhile was never used. The driver now probes addresses first, bounded.
TEST_F(ClusterNetns, AWorkerThatDoesNotAnswerDoesNotKeepTheDriverFromTheOthers) {
  auto a = start_worker(0, "A", "where");
  hosts->drop_all(0);  // A's card stays in the store until its TTL runs out
  auto config = driver_config();
  config.cluster.placement_timeout = 8s;
  flux::Runtime rt(config);
  std::this_thread::sleep_for(300ms);  // the driver's discovery has tried A
  auto b = start_worker(1, "B", "where");
  const auto started = Clock::now();
  auto r = rt.run(flux::Pipeline(flux::test::where_node()), 0);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.output.as_string(), "B");
  std::printf("B used %lld ms after it started, A not answering\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started)
                      .count()));
  hosts->undrop(0);
}

TEST_F(ClusterNetns, ANodeThatNoWorkerHostsFailsTheRunNamingTheNodeAndTheWorkersSeen) {
  auto a = start_worker(0, "A", "inc,where");
  auto config = driver_config();
  config.cluster.placement_timeout = 700ms;
  flux::Runtime rt(config);
  wait_for_workers(rt, {"A"});
  const auto started = Clock::now();
  auto r = rt.run(flux::test::inc_node() | flux::test::times_node(2), 1);
  const auto took = Clock::now() - started;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->node, "times2");
  EXPECT_EQ(r.error->message,
            "no worker hosts node 'times2' (step 1, signature (int64) -> int64): waited "
            "0.700 s; workers seen: A (nodes: inc, where)");
  EXPECT_GE(took, 700ms);
  EXPECT_LT(took, 10s);
  auto stored = rt.get_run(r.run_id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, flux::RunStatus::failed);
  EXPECT_EQ(stored->error->message, r.error->message);
}

class ClusterNetnsTls : public ClusterNetns {
 protected:
  std::unique_ptr<flux::test::TestCerts> certs;

  void SetUp() override {
    ClusterNetns::SetUp();
    if (HasFatalFailure()) return;
    std::vector<std::string> ips;
    for (int i = 0; i < k_hosts; ++i) ips.push_back(hosts->ip(i));
    certs = std::make_unique<flux::test::TestCerts>(ips);
  }

  std::unique_ptr<WorkerProcess> start_tls_worker(int host, const std::string& name) {
    return start_worker(host, name, {}, {},
                        {certs->peer_cert(), certs->peer_key(), certs->ca_cert()});
  }
  flux::Config tls_driver(const std::string& cert, const std::string& key, const std::string& ca) {
    flux::Config config = driver_config();
    config.cluster.network.allow_plaintext = false;
    config.cluster.placement_timeout = 1500ms;
    config.cluster.network.tls = {cert, key, ca, ""};
    return config;
  }
};

TEST_F(ClusterNetnsTls, MutualTlsBetweenTheDriverAndWorkersOnOtherHosts) {
  auto a = start_tls_worker(0, "A");
  auto b = start_tls_worker(1, "B");
  flux::Runtime rt(tls_driver(certs->peer2_cert(), certs->peer2_key(), certs->ca_cert()));
  // Sequential one-node runs all go to one worker (least outstanding work, ties to the
  // first): W2's parallel branches reach both, once the driver is connected to both.
  std::set<std::string> workers;
  const auto deadline = Clock::now() + 10s;
  for (int i = 0; workers.size() < 2 && Clock::now() < deadline; ++i) {
    auto r = rt.run(flux::test::w2_pipeline(), i);
    ASSERT_TRUE(r.ok()) << r.error->message;
    EXPECT_EQ(r.output.as_int(), (i + 1) * 55);
    auto info = rt.get_run(r.run_id);
    ASSERT_TRUE(info);
    for (const auto& e : info->history) {
      if (e.type == flux::HistoryEntry::Type::node) workers.insert(e.worker);
    }
  }
  EXPECT_EQ(workers, (std::set<std::string>{"A", "B"}));
}

TEST_F(ClusterNetnsTls, ADriverWithACertificateOfAnotherCaIsRejectedByAWorkerOnAnotherHost) {
  auto a = start_tls_worker(0, "A");
  flux::Runtime rt(tls_driver(certs->other_cert(), certs->other_key(), certs->other_ca_cert()));
  auto r = rt.run(flux::Pipeline(flux::test::where_node()), 0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(
      r.error->message.find("workers seen: A (not connected: cannot connect to " + where(0, *a)),
      std::string::npos)
      << r.error->message;
  std::printf("error: %s\n", r.error->message.c_str());
}

}  // namespace
