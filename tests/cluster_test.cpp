// A cluster on loopback with real processes: worker processes (tests/cluster_node_main.cpp)
// serve nodes over CAF's network layer, announced in a private redis-server; the driver is a
// cluster-enabled Runtime in the test process. Every wait is bounded.

#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <chrono>
#include <flux/flux.hpp>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "support/certs.hpp"
#include "support/cluster_nodes.hpp"
#include "support/redis_server.hpp"
#include "support/worker_process.hpp"

namespace {

using namespace std::chrono_literals;
using flux::test::shared_redis;
using flux::test::unique_prefix;
using flux::test::WorkerProcess;

class Cluster : public ::testing::Test {
 protected:
  std::string prefix = unique_prefix("cluster");

  std::unique_ptr<WorkerProcess> start_worker(const std::string& name,
                                              const std::string& nodes = {},
                                              std::vector<std::string> env = {}) {
    std::vector<std::string> args{"--store", shared_redis().url(), "--prefix", prefix, "--id",
                                  name};
    if (!nodes.empty()) {
      args.push_back("--nodes");
      args.push_back(nodes);
    }
    return std::make_unique<WorkerProcess>(FLUX_CLUSTER_NODE, name, args, env);
  }

  flux::Config driver_config() {
    flux::Config config;
    config.store = shared_redis().url();
    config.key_prefix = prefix;
    config.cluster.enabled = true;
    config.cluster.placement_timeout = 5s;
    return config;
  }

  /// Waits (bounded) until the driver has seen `n` workers: a one-node run placed on each.
  static void wait_for_workers(flux::Runtime& rt, const std::set<std::string>& names) {
    auto where = flux::test::where_node();
    std::set<std::string> seen;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (seen != names && std::chrono::steady_clock::now() < deadline) {
      auto r = rt.run(flux::Pipeline(where), 0);
      ASSERT_TRUE(r.ok()) << r.error->message;
      seen.insert(r.output.as_string());
    }
    ASSERT_EQ(seen, names);
  }
};

TEST_F(Cluster, W2ShapedPipelineSpreadsItsBranchesOverTwoWorkers) {
  auto a = start_worker("A");
  auto b = start_worker("B");
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
      EXPECT_TRUE(e.worker == "A" || e.worker == "B") << e.node << " ran on '" << e.worker << "'";
      ++steps_per_worker[e.worker];
    }
    EXPECT_EQ(nodes, 12);
  }
  // Least outstanding work: both workers take part.
  EXPECT_GT(steps_per_worker["A"], 40);
  EXPECT_GT(steps_per_worker["B"], 40);
}

TEST_F(Cluster, ManyRunsInFlightAllComplete) {
  auto a = start_worker("A");
  auto b = start_worker("B");
  flux::Runtime rt(driver_config());
  auto pipeline = flux::test::w2_pipeline();
  std::vector<flux::RunHandle> handles;
  for (int i = 0; i < 200; ++i) handles.push_back(rt.start(pipeline, i));
  for (int i = 0; i < 200; ++i) {
    auto r = handles[i].wait_for(60s);
    ASSERT_TRUE(r) << "run " << i << " did not end within 60 s";
    ASSERT_TRUE(r->ok()) << r->error->message;
    EXPECT_EQ(r->output.as_int(), (i + 1) * 55);
  }
}

TEST_F(Cluster, SharedStateIsAtomicAcrossWorkers) {
  auto a = start_worker("A");
  auto b = start_worker("B");
  flux::Runtime rt(driver_config());
  auto count = flux::test::count_node();
  std::vector<flux::Pipeline> branches(10, flux::Pipeline(count));
  auto r = rt.run(flux::parallel(branches), 7);
  ASSERT_TRUE(r.ok()) << r.error->message;
  auto shared = rt.run_keys(r.run_id, flux::Scope::shared);
  ASSERT_TRUE(shared.count("counter"));
  EXPECT_EQ(shared.at("counter").as_int(), 1000);
  std::set<std::string> workers;
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info);
  for (const auto& e : info->history) {
    if (e.type == flux::HistoryEntry::Type::node) workers.insert(e.worker);
  }
  EXPECT_EQ(workers, (std::set<std::string>{"A", "B"}));
}

TEST_F(Cluster, KvWrittenOnOneWorkerIsReadOnAnotherInTheNextStep) {
  auto a = start_worker("A", "put_kv");
  auto b = start_worker("B", "get_kv");
  flux::Runtime rt(driver_config());
  auto r = rt.run(flux::test::put_kv_node() | flux::test::get_kv_node(), 41);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.output.as_string(), "A/41/read by B/keys 2/history 1");
  auto kv = rt.run_keys(r.run_id);
  EXPECT_EQ(kv.at("written_by").as_string(), "A");
}

TEST_F(Cluster, ANodeThatNoWorkerHostsFailsTheRunNamingTheNodeAndTheWorkersSeen) {
  auto a = start_worker("A", "inc,where");
  auto config = driver_config();
  config.cluster.placement_timeout = 700ms;
  flux::Runtime rt(config);
  wait_for_workers(rt, {"A"});
  const auto started = std::chrono::steady_clock::now();
  auto r = rt.run(flux::test::inc_node() | flux::test::times_node(2), 1);
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->node, "times2");
  EXPECT_EQ(r.error->message,
            "no worker hosts node 'times2' (step 1, signature (int64) -> int64): waited "
            "0.700 s; workers seen: A (nodes: inc, where)");
  EXPECT_GE(took, 700ms);
  EXPECT_LT(took, 10s);
  auto stored = rt.get_run(r.run_id);
  EXPECT_EQ(stored->status, flux::RunStatus::failed);
  EXPECT_EQ(stored->error->message, r.error->message);
}

TEST_F(Cluster, ANodeWithAnotherSignatureIsNotPlacedOnTheWorker) {
  auto a = start_worker("A", "inc,where");
  auto config = driver_config();
  config.cluster.placement_timeout = 500ms;
  flux::Runtime rt(config);
  wait_for_workers(rt, {"A"});
  auto other_inc = flux::node("inc", [](const std::string& s) { return s + "+1"; });
  auto r = rt.run(flux::Pipeline(other_inc), std::string("x"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error->message.find("workers seen: A (hosts it as (int64) -> int64, not (string) "
                                  "-> string)"),
            std::string::npos)
      << r.error->message;
}

TEST_F(Cluster, AWorkerJoiningMidRunTakesTheWaitingStep) {
  flux::Runtime rt(driver_config());
  auto handle = rt.start(flux::test::inc_node() | flux::test::inc_node(), 1);
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(handle.done());
  auto a = start_worker("A");
  auto r = handle.wait_for(10s);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->ok()) << r->error->message;
  EXPECT_EQ(r->output.as_int(), 3);
}

/// Starts a slow step on worker A alone, then B; applies `fault` to A mid-step; the step must
/// be placed again on B (attempt 2), the run complete with the right output, and the lost
/// attempt be recorded. Returns how long the driver took to notice.
std::chrono::milliseconds fault_mid_step(
    Cluster* self, flux::Runtime& rt, std::unique_ptr<WorkerProcess>& a,
    std::unique_ptr<WorkerProcess>& b, const std::function<void()>& fault,
    const std::function<std::unique_ptr<WorkerProcess>()>& start_b) {
  (void)self;
  auto handle = rt.start(flux::Pipeline(flux::test::slow_node()), 10);
  std::this_thread::sleep_for(400ms);  // the step is executing on A (the only worker)
  b = start_b();
  std::this_thread::sleep_for(300ms);  // the driver knows B
  const auto fault_at = flux::Timestamp(std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::system_clock::now().time_since_epoch()));
  fault();
  auto r = handle.wait_for(20s);
  EXPECT_TRUE(r);
  if (!r) return {};
  EXPECT_TRUE(r->ok()) << r->error->message;
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
  EXPECT_NE(nodes[0].error->find("worker A at 127.0.0.1:" + std::to_string(a->port()) +
                                 " was lost while executing node 'slow' (step 0)"),
            std::string::npos)
      << *nodes[0].error;
  EXPECT_NE(nodes[0].error->find("placed again as attempt 2"), std::string::npos);
  EXPECT_EQ(nodes[1].attempt, 2u);
  EXPECT_EQ(nodes[1].worker, "B");
  EXPECT_TRUE(nodes[1].ok());
  return std::chrono::duration_cast<std::chrono::milliseconds>(nodes[0].end - fault_at);
}

TEST_F(Cluster, AKilledWorkersStepIsPlacedAgainOnAnotherWorker) {
  auto a = start_worker("A", "slow,where");
  flux::Runtime rt(driver_config());
  wait_for_workers(rt, {"A"});
  std::unique_ptr<WorkerProcess> b;
  auto detected = fault_mid_step(
      this, rt, a, b, [&] { a->signal(SIGKILL); }, [&] { return start_worker("B", "slow,where"); });
  std::printf("SIGKILL detected after %lld ms\n", static_cast<long long>(detected.count()));
  EXPECT_LT(detected, 2000ms);
}

TEST_F(Cluster, AHungWorkerIsDetectedByHeartbeatsAndItsStepPlacedAgain) {
  auto a = start_worker("A", "slow,where");
  flux::Runtime rt(driver_config());
  wait_for_workers(rt, {"A"});
  std::unique_ptr<WorkerProcess> b;
  auto detected = fault_mid_step(
      this, rt, a, b, [&] { a->signal(SIGSTOP); }, [&] { return start_worker("B", "slow,where"); });
  std::printf("SIGSTOP detected after %lld ms\n", static_cast<long long>(detected.count()));
  EXPECT_GE(detected, 500ms);  // heartbeats: ~connection_timeout (1 s), not at once
  EXPECT_LT(detected, 2500ms);
  // Once it runs again it is used again.
  a->signal(SIGCONT);
  b->kill();
  auto r = rt.run(flux::Pipeline(flux::test::where_node()), 0);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((!r.ok() || r.output.as_string() != "A") && std::chrono::steady_clock::now() < deadline) {
    r = rt.run(flux::Pipeline(flux::test::where_node()), 0);
  }
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.output.as_string(), "A");
}

TEST_F(Cluster, ADrainingWorkerFinishesItsStepAndGetsNoMoreWork) {
  auto a = start_worker("A", "slow,where", {"FLUX_TEST_SLOW_MS=800"});
  flux::Runtime rt(driver_config());
  wait_for_workers(rt, {"A"});
  auto handle = rt.start(flux::Pipeline(flux::test::slow_node()), 1);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(a->terminate(10s), 0);  // SIGTERM: drains, then exits 0
  auto r = handle.wait_for(10s);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->ok()) << r->error->message;
  EXPECT_EQ(r->output.as_int(), 2);
  auto info = rt.get_run(r->run_id);
  ASSERT_EQ(info->history.size(), 1u);
  EXPECT_EQ(info->history[0].worker, "A");
  EXPECT_EQ(info->history[0].attempt, 1u);
}

TEST_F(Cluster, AKilledDriversRunIsAdoptedByAnotherDriverWhileTheWorkersKeepServing) {
  auto a = start_worker("A", "", {"FLUX_TEST_SLOW_MS=600"});
  auto b = start_worker("B", "", {"FLUX_TEST_SLOW_MS=600"});
  WorkerProcess first(FLUX_CLUSTER_NODE, "D1",
                      {"driver", "--store", shared_redis().url(), "--prefix", prefix, "--pipeline",
                       "slow3", "--input", "1", "--lease-ttl-ms", "1000"});
  const std::string line = first.read_line(10s);
  ASSERT_EQ(line.rfind("run ", 0), 0u) << line;
  const std::string run_id = line.substr(4);
  // Kill the driver once the first step is recorded.
  flux::Config reader;
  reader.store = shared_redis().url();
  reader.key_prefix = prefix;
  flux::Runtime store(reader);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (store.history(run_id).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(store.history(run_id).empty()) << "the first step was not recorded in 10 s";
  first.kill();

  auto config = driver_config();
  config.lease_ttl = 1000ms;
  config.cluster.adopt = flux::test::cluster_pipelines();
  config.cluster.adopt_interval = 200ms;
  flux::Runtime second(config);
  std::optional<flux::RunInfo> info;
  deadline = std::chrono::steady_clock::now() + 20s;
  do {
    std::this_thread::sleep_for(50ms);
    info = second.get_run(run_id);
  } while ((!info || info->status == flux::RunStatus::running) &&
           std::chrono::steady_clock::now() < deadline);
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

class ClusterTls : public Cluster {
 protected:
  flux::test::TestCerts certs;

  std::unique_ptr<WorkerProcess> start_tls_worker(const std::string& name) {
    std::vector<std::string> args{
        "--store", shared_redis().url(), "--prefix",       prefix,         "--id", name,
        "--tls",   certs.peer_cert(),    certs.peer_key(), certs.ca_cert()};
    return std::make_unique<WorkerProcess>(FLUX_CLUSTER_NODE, name, args);
  }
  flux::Config tls_driver(const std::string& cert, const std::string& key, const std::string& ca) {
    flux::Config config = driver_config();
    config.cluster.placement_timeout = 1500ms;
    config.cluster.network.tls = {cert, key, ca, ""};
    return config;
  }
};

TEST_F(ClusterTls, MutualTlsBetweenDriverAndWorkers) {
  auto a = start_tls_worker("A");
  auto b = start_tls_worker("B");
  flux::Runtime rt(tls_driver(certs.peer2_cert(), certs.peer2_key(), certs.ca_cert()));
  auto r = rt.run(flux::test::w2_pipeline(), 2);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.output.as_int(), 165);
}

TEST_F(ClusterTls, ADriverWithACertificateOfAnotherCaIsRejected) {
  auto a = start_tls_worker("A");
  flux::Runtime rt(tls_driver(certs.other_cert(), certs.other_key(), certs.other_ca_cert()));
  auto r = rt.run(flux::Pipeline(flux::test::where_node()), 0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error->message.find("workers seen: A (not connected: cannot connect to 127.0.0.1:" +
                                  std::to_string(a->port())),
            std::string::npos)
      << r.error->message;
}

/// What a client that is not Flux (no checks of its own) gets from a TLS worker: plain CAF
/// with the TLS module and the given files (empty: not set).
std::string raw_tls_connect(int port, const std::string& cert, const std::string& key,
                            const std::string& ca) {
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  cfg.load<caf::openssl::manager>();
  if (!cert.empty()) cfg.set("openssl.certificate", cert);
  if (!key.empty()) cfg.set("openssl.key", key);
  if (!ca.empty()) cfg.set("openssl.cafile", ca);
  cfg.set("middleman.app-identifiers", std::vector<std::string>{"flux-wire-1"});
  caf::actor_system sys{cfg};
  std::string outcome = "connected";
  caf::scoped_actor self{sys};
  self->request(sys.openssl_manager().actor_handle(), std::chrono::seconds(5),
                caf::connect_atom::value, std::string("127.0.0.1"),
                static_cast<std::uint16_t>(port))
      .receive([](const caf::node_id&, caf::strong_actor_ptr&, const std::set<std::string>&) {},
               [&](caf::error& e) { outcome = sys.render(e); });
  return outcome;
}

TEST_F(ClusterTls, ClientsWithoutAValidCertificateAreRejectedByTheWorker) {
  auto a = start_tls_worker("A");
  // The worker's own CA and a certificate it signed: accepted (the control).
  EXPECT_EQ(raw_tls_connect(a->port(), certs.peer2_cert(), certs.peer2_key(), certs.ca_cert()),
            "connected");
  // No certificate (anonymous TLS), a self-signed one, one of another CA: refused.
  EXPECT_EQ(raw_tls_connect(a->port(), "", "", ""), "system_error(disconnect_during_handshake)");
  EXPECT_EQ(raw_tls_connect(a->port(), certs.self_signed_cert(), certs.self_signed_key(),
                            certs.ca_cert()),
            "system_error(disconnect_during_handshake)");
  EXPECT_EQ(raw_tls_connect(a->port(), certs.other_cert(), certs.other_key(), certs.ca_cert()),
            "system_error(disconnect_during_handshake)");
  // The worker is still serving.
  flux::Runtime rt(tls_driver(certs.peer2_cert(), certs.peer2_key(), certs.ca_cert()));
  auto r = rt.run(flux::Pipeline(flux::test::where_node()), 0);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.output.as_string(), "A");
}

TEST_F(ClusterTls, ADriverRefusesASelfSignedCertificateOfItsOwn) {
  try {
    flux::Runtime rt(
        tls_driver(certs.self_signed_cert(), certs.self_signed_key(), certs.ca_cert()));
    FAIL() << "a self-signed certificate was accepted";
  } catch (const flux::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not signed by a CA in tls.ca_file"), std::string::npos)
        << e.what();
  }
}

TEST_F(ClusterTls, APlaintextDriverDoesNotUseATlsWorker) {
  auto a = start_tls_worker("A");
  auto config = driver_config();
  config.cluster.placement_timeout = 800ms;
  flux::Runtime rt(config);
  auto r = rt.run(flux::Pipeline(flux::test::where_node()), 0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error->message.find("A (not connected: at 127.0.0.1:" + std::to_string(a->port()) +
                                  ", it speaks flux-wire-1 over TLS, this driver flux-wire-1 in "
                                  "plaintext)"),
            std::string::npos)
      << r.error->message;
}

TEST_F(ClusterTls, ABadKeyIsRefusedBeforeAnythingStarts) {
  auto config = driver_config();
  config.cluster.network.tls = {certs.peer_cert(), certs.peer2_key(), certs.ca_cert(), ""};
  try {
    flux::Runtime rt(config);
    FAIL() << "a key of another certificate was accepted";
  } catch (const flux::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not belong to the certificate"), std::string::npos)
        << e.what();
  }
}

TEST(ClusterConfig, ADriverNeedsARedisStore) {
  flux::Config config;
  config.store = "memory";
  config.cluster.enabled = true;
  try {
    flux::Runtime rt(config);
    FAIL() << "a cluster driver on the memory store was accepted";
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("needs a Redis store"), std::string::npos) << e.what();
  }
}

TEST(ClusterConfig, AWorkerRefusesPlaintextOnANonLoopbackAddress) {
  flux::WorkerConfig config;
  config.store = shared_redis().url();
  config.listen_host = "0.0.0.0";
  try {
    flux::Worker w(flux::test::cluster_registry(), config);
    FAIL() << "plaintext on 0.0.0.0 was accepted";
  } catch (const flux::Error& e) {
    EXPECT_NE(std::string(e.what()).find("refusing to listen in plaintext on 0.0.0.0"),
              std::string::npos)
        << e.what();
  }
}

TEST(ClusterConfig, TheRegistryRefusesADifferentNodeUnderATakenName) {
  flux::Registry r;
  auto inc = flux::test::inc_node();
  r.add(inc).add(inc);            // the same node again: nothing changes
  r.add(flux::test::inc_node());  // built again by the same code: the first one stays
  EXPECT_EQ(r.node_names(), std::vector<std::string>{"inc"});
  EXPECT_EQ(r.node("inc")->def(), inc.def());
  EXPECT_THROW(r.add(inc.blocking()), flux::Error);  // another kind
  auto other = flux::node("inc", [](const std::string& s) { return s; });
  try {
    r.add(other);
    FAIL() << "a second 'inc' was accepted";
  } catch (const flux::Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "registry: a different node named 'inc' is already registered (registered: "
              "(int64) -> int64, this one: (string) -> string); node names must be unique");
  }
}

}  // namespace
