// A process of the cluster tests: a worker serving the nodes of tests/support/cluster_nodes.hpp,
// or a driver.
//
//   cluster_node [worker] --store URL --prefix P --id ID [--nodes a,b] [--listen HOST]
//                [--advertise HOST] [--capacity N] [--drain-grace-ms MS] [--tls CERT KEY CA]
//                [--allow-plaintext]
//     Prints "ready <port>" once announced in the store; serves until SIGTERM (drains).
//   cluster_node driver --store URL --prefix P [--pipeline NAME --input N] [--adopt]
//                [--lease-ttl-ms MS] [--tls CERT KEY CA] [--allow-plaintext]
//     With --pipeline: starts a run of it, prints "run <id>", waits for it and prints
//     "output <value>" (exit 0) or "failed <message>" (exit 1). With --adopt alone: prints
//     "ready 0" and adopts orphans of the registered pipelines until SIGTERM.
//   --allow-plaintext sets network.allow_plaintext (a worker listening in plaintext on a
//   non-loopback address, as in the virtual hosts of tests/cluster_netns_test.cpp).

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <flux/flux.hpp>
#include <string>

#include "support/cluster_nodes.hpp"

namespace {

int wait_for_sigterm() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Blocked before any thread starts, so that sigwait (driver mode) receives them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  const bool driver = argc > 1 && std::strcmp(argv[1], "driver") == 0;
  if (driver) pthread_sigmask(SIG_BLOCK, &set, nullptr);
  flux::WorkerConfig worker;
  flux::Config config;
  config.cluster.enabled = true;
  std::string nodes, pipeline;
  long long input = 0;
  bool adopt = false;
  for (int i = (argc > 1 && (driver || std::strcmp(argv[1], "worker") == 0)) ? 2 : 1; i < argc;
       ++i) {
    auto is = [&](const char* flag, int values = 1) {
      return std::strcmp(argv[i], flag) == 0 && i + values < argc;
    };
    if (is("--store")) {
      worker.store = config.store = argv[++i];
    } else if (is("--prefix")) {
      worker.key_prefix = config.key_prefix = argv[++i];
    } else if (is("--id")) {
      worker.id = argv[++i];
    } else if (is("--nodes")) {
      nodes = argv[++i];
    } else if (is("--listen")) {
      worker.listen_host = argv[++i];
    } else if (is("--advertise")) {
      worker.advertise_host = argv[++i];
    } else if (is("--drain-grace-ms")) {
      worker.drain_grace = std::chrono::milliseconds(std::atoll(argv[++i]));
    } else if (is("--capacity")) {
      worker.capacity = static_cast<std::size_t>(std::atoi(argv[++i]));
    } else if (is("--pipeline")) {
      pipeline = argv[++i];
    } else if (is("--input")) {
      input = std::atoll(argv[++i]);
    } else if (is("--lease-ttl-ms")) {
      config.lease_ttl = std::chrono::milliseconds(std::atoll(argv[++i]));
    } else if (std::strcmp(argv[i], "--allow-plaintext") == 0) {
      worker.network.allow_plaintext = config.cluster.network.allow_plaintext = true;
    } else if (std::strcmp(argv[i], "--adopt") == 0) {
      adopt = true;
    } else if (is("--tls", 3)) {
      worker.network.tls.certificate = argv[++i];
      worker.network.tls.key = argv[++i];
      worker.network.tls.ca_file = argv[++i];
      config.cluster.network.tls = worker.network.tls;
    } else {
      std::fprintf(stderr, "cluster_node: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  try {
    if (!driver) {
      flux::Worker w(flux::test::cluster_registry(nodes), worker);
      std::printf("ready %u\n", w.port());
      std::fflush(stdout);
      w.serve_until_signal();
      return 0;
    }
    flux::Registry pipelines = flux::test::cluster_pipelines();
    if (adopt) {
      config.cluster.adopt = pipelines;
      config.cluster.adopt_interval = std::chrono::milliseconds(200);
    }
    flux::Runtime rt(config);
    if (pipeline.empty()) {
      std::printf("ready 0\n");
      std::fflush(stdout);
      return wait_for_sigterm();
    }
    const flux::Pipeline* p = pipelines.pipeline(pipeline);
    if (!p) {
      std::fprintf(stderr, "cluster_node: no pipeline named %s\n", pipeline.c_str());
      return 2;
    }
    flux::RunHandle h = rt.start(*p, static_cast<std::int64_t>(input));
    std::printf("ready 0\nrun %s\n", h.run_id().c_str());
    std::fflush(stdout);
    flux::RunResult r = h.wait();
    if (r.ok()) {
      std::printf("output %s\n", r.output.to_string().c_str());
      return 0;
    }
    std::printf("failed %s\n", r.error->message.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cluster_node: %s\n", e.what());
    return 1;
  }
}
