#pragma once
/// \file
/// Running steps on other machines: the settings every cluster process shares, and
/// `flux::Worker`, which serves a process's registered nodes to drivers.
///
/// Roles (README, "Cluster"): a *driver* is a `Runtime` whose `Config::cluster` is enabled and
/// whose store is Redis; it owns its runs and places each node step on a *worker* that hosts
/// the node by name. A worker is the user's binary serving its `Registry`:
///
/// ```cpp not-compiled: a fragment of main()
/// flux::Registry registry;
/// registry.add(inc).add(dbl);
/// flux::Worker worker(registry, {.store = "redis://127.0.0.1:6379"});
/// worker.serve_until_signal();  // SIGTERM / SIGINT: drain, deregister, return
/// ```

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "flux/registry.hpp"

namespace flux {

/// Mutual TLS between cluster processes (CAF's openssl module). Every process of a cluster
/// sets all of `certificate`, `key` and `ca_file`, issued by one CA dedicated to the cluster:
/// a peer is accepted when its certificate is signed by that CA — there is no host name
/// check. The files are checked when a Worker or driver starts (Error(invalid_argument)
/// naming the file and what is wrong); no key material or passphrase is ever logged.
struct TlsConfig {
  std::string certificate{};  ///< PEM certificate (chain) of this process
  std::string key{};          ///< PEM private key of `certificate`
  std::string ca_file{};      ///< PEM CA certificate(s) a peer's certificate must be signed by
  std::string passphrase{};   ///< for an encrypted `key`; empty: FLUX_TLS_PASSPHRASE, if set
  bool enabled() const noexcept { return !certificate.empty() || !key.empty() || !ca_file.empty(); }
};

/// How cluster processes talk: failure detection and transport security. Drivers and workers
/// must agree on the heartbeat settings (CAF drops a healthy idle connection whose other end
/// sends no heartbeats).
struct NetworkConfig {
  /// A heartbeat is sent on every connection this often...
  std::chrono::milliseconds heartbeat_interval{200};
  /// ... and a peer silent for this long is lost: a hung (SIGSTOP) or cut-off process is
  /// detected after about this long, a killed one at once (its socket closes).
  std::chrono::milliseconds connection_timeout{1000};
  TlsConfig tls{};
  /// Plaintext on an address other than loopback is refused unless this is set.
  bool allow_plaintext = false;
};

/// A driver's side of a cluster: `Config::cluster`.
struct ClusterConfig {
  /// Discover workers through the store (which must be Redis) and place node steps on them.
  bool enabled = false;
  /// Nodes this process executes itself (by name) instead of placing them on workers: cheap
  /// steps, for which a network round trip (~0.2 ms) costs more than the work.
  std::set<std::string> local_nodes{};
  /// How long a step waits for a worker that hosts its node (and has room) before its run
  /// fails with an error naming the node and the workers seen.
  std::chrono::milliseconds placement_timeout{10000};
  /// Steps this driver may send a worker beyond what it executes at once, per unit of its
  /// capacity (a worker of capacity 2 is sent up to 2 + 2 x 16 steps): they wait in the
  /// worker's queue, so that short steps do not each wait a network round trip for a free
  /// slot, and the worker's threads take them without sleeping in between (bench W6: 0 gives
  /// ~550 runs/s, 1 ~820, 16 ~2,700). Set 0 when steps are long and workers join during a run:
  /// a queued step waits for its worker even when another one is idle. A lost worker's queued
  /// steps are placed again like its running ones.
  std::uint32_t prefetch = 16;
  /// How often the store is asked which workers are alive.
  std::chrono::milliseconds discovery_interval{100};
  NetworkConfig network{};
  /// Adopt orphans: when set, this driver resumes every run whose owner died (its lease
  /// expired; see `Runtime::list_orphans`) and whose pipeline is registered here by the name
  /// it was started with. Checked every `adopt_interval`; when several drivers adopt, the
  /// store's lease gives each orphan to exactly one of them. The driver also honours the
  /// pending resume requests of those pipelines (`Storage::request_resume`: `flux runs
  /// resume|retry`, the `flux` tool's dashboard): it resumes the run (a cancelled one too) and
  /// clears the request, or records in it why the run cannot be resumed (README, "Cluster").
  std::optional<Registry> adopt{};
  std::chrono::milliseconds adopt_interval{1000};
};

/// What a Worker serves and where.
struct WorkerConfig {
  /// The cluster's store: "redis://...", or "" for the FLUX_STORE environment variable.
  std::string store{};
  std::string key_prefix = "flux";
  /// The address to listen on. Anything but loopback needs TLS or `network.allow_plaintext`.
  std::string listen_host = "127.0.0.1";
  std::uint16_t port = 0;  ///< 0: any free port
  /// The address drivers connect to; empty: `listen_host`.
  std::string advertise_host{};
  /// Executions at once (each on its own thread); 0: one per core.
  std::size_t capacity = 0;
  /// This worker's id in the cluster; empty: "host:pid:nonce".
  std::string id{};
  /// The worker's announcement expires this long after its last refresh (refreshed every
  /// third of it): a worker that stops refreshing is no longer given work.
  std::chrono::milliseconds announce_ttl{1500};
  /// On drain: how long executions in progress may take to finish.
  std::chrono::milliseconds drain_grace{30000};
  NetworkConfig network{};
  /// Serve this process's Prometheus metrics (flux/metrics.hpp) at "host:port", e.g.
  /// "127.0.0.1:9464" (port 0: any free one, see `Worker::metrics_port`); empty: off.
  std::string metrics_listen{};
};

namespace detail {
class WorkerImpl;
}
class MetricsServer;

/// Serves the nodes of a Registry to the drivers of a cluster: listens (CAF's network layer,
/// mutual TLS when configured), announces itself in the store (id, address, node names and
/// signatures, capacity, protocol version) and keeps the announcement alive, and executes up
/// to `capacity` steps at once. A node's `Context` works as on the driver: every kv,
/// shared-state and history call goes to the run's owner, which orders them.
///
/// Thread safety: all member functions may be called from any thread.
class Worker {
 public:
  /// Starts serving at once. Throws Error(invalid_argument) for a bad configuration (TLS files,
  /// plaintext on a non-loopback address, an empty registry) and Error(storage) if the store
  /// cannot be reached.
  Worker(const Registry& registry, WorkerConfig config);
  /// Drains (see `drain`).
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  const std::string& id() const noexcept;
  /// The port it listens on.
  std::uint16_t port() const noexcept;
  /// Steps executing now.
  std::size_t busy() const;
  /// The port of its metrics endpoint (`WorkerConfig::metrics_listen`); 0 when off.
  std::uint16_t metrics_port() const noexcept;

  /// Stops taking work (new requests are handed back, and drivers place them elsewhere),
  /// withdraws the announcement, waits up to `drain_grace` for the executions in progress,
  /// then closes. Idempotent.
  void drain();
  /// Serves until SIGTERM or SIGINT, then drains. The signals are caught from the call on:
  /// one that arrives before it has its default action (the process ends without a drain).
  void serve_until_signal();

 private:
  std::unique_ptr<detail::WorkerImpl> impl_;
  std::uint64_t metrics_watch_ = 0;         // its load in the process's metrics
  std::unique_ptr<MetricsServer> metrics_;  // when metrics_listen is set
};

}  // namespace flux
