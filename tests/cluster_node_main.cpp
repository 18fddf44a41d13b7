// A worker process of the cluster tests: serves the nodes of tests/support/cluster_nodes.hpp
// until SIGTERM.
//
//   cluster_node --store URL --prefix P --id ID [--nodes a,b] [--listen HOST]
//                [--capacity N] [--tls CERT KEY CA]
//
// Prints "ready <port>" on stdout once it is announced in the store.

#include <cstdio>
#include <cstring>
#include <flux/flux.hpp>
#include <string>

#include "support/cluster_nodes.hpp"

int main(int argc, char** argv) {
  flux::WorkerConfig config;
  std::string nodes;
  for (int i = 1; i < argc; ++i) {
    auto is = [&](const char* flag, int values = 1) {
      return std::strcmp(argv[i], flag) == 0 && i + values < argc;
    };
    if (is("--store")) {
      config.store = argv[++i];
    } else if (is("--prefix")) {
      config.key_prefix = argv[++i];
    } else if (is("--id")) {
      config.id = argv[++i];
    } else if (is("--nodes")) {
      nodes = argv[++i];
    } else if (is("--listen")) {
      config.listen_host = argv[++i];
    } else if (is("--capacity")) {
      config.capacity = static_cast<std::size_t>(std::atoi(argv[++i]));
    } else if (is("--tls", 3)) {
      config.network.tls.certificate = argv[++i];
      config.network.tls.key = argv[++i];
      config.network.tls.ca_file = argv[++i];
    } else {
      std::fprintf(stderr, "cluster_node: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  try {
    flux::Worker worker(flux::test::cluster_registry(nodes), config);
    std::printf("ready %u\n", worker.port());
    std::fflush(stdout);
    worker.serve_until_signal();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cluster_node: %s\n", e.what());
    return 1;
  }
  return 0;
}
