#pragma once
/// \file
/// Prometheus metrics of a Flux process: what its runs, steps, store and worker do, served
/// as the Prometheus text format (version 0.0.4) over HTTP at `/metrics`.
///
/// Opt-in: set `Config::metrics_listen` (a driver or any Runtime) or
/// `WorkerConfig::metrics_listen` (a worker) to "127.0.0.1:9464", or run a `MetricsServer`
/// yourself. The numbers are the process's: several Runtimes or Workers in one process add
/// up (as with the default registry of Prometheus's client libraries).
///
/// | metric | type | what |
/// |---|---|---|
/// | `flux_runs_started_total` | counter | runs started or resumed (1) |
/// | `flux_runs_completed_total`, `flux_runs_failed_total` | counter | runs ended so (1) |
/// | `flux_steps_in_flight` | gauge | node steps executing now, here or on workers (1) |
/// | `flux_step_duration_seconds{node}` | histogram | node steps ended, failed ones too (1) |
/// | `flux_step_failures_total{node}` | counter | node steps that failed (1) |
/// | `flux_step_redispatches_total` | counter | steps placed again because their worker was lost |
/// | `flux_persistence_queue_depth` | gauge | records waiting for the persistence actor |
/// | `flux_store_write_seconds` | histogram | one batch of records written to the store |
/// | `flux_store_writes_total` | counter | records handed to the store |
/// | `flux_worker_steps_in_flight{worker}` | gauge | steps a Worker executes now (its load) |
/// | `flux_worker_capacity{worker}` | gauge | steps it executes at most at once |
/// | `flux_worker_step_duration_seconds{node}` | histogram | steps a Worker executed |
///
/// (1) counted by `metrics_observer()`, which a Runtime with `metrics_listen` registers
/// itself; a parallel as a whole is not a step.
///
/// Security: the endpoint has no authentication and tells run counts and node names, so it
/// listens on loopback unless told otherwise; publish it no further than your Prometheus.

#include <cstdint>
#include <memory>
#include <string>

#include "flux/observer.hpp"

namespace flux {

namespace detail {
class MetricsServerImpl;
}

/// An HTTP server answering `GET /metrics` with `metrics_text()`, on a thread of its own,
/// one connection at a time (each bounded: 2 s to send its request, at most 8 KiB of it).
/// Other paths get 404, other methods 405, a malformed request 400.
class MetricsServer {
 public:
  /// Listens on `listen`, "host:port" (an IPv4 or IPv6 address, "[::1]:9464" for the
  /// latter, or "localhost"; port 0: any free one). Throws Error(invalid_argument) naming the
  /// address and why (malformed, port in use...).
  explicit MetricsServer(const std::string& listen = "127.0.0.1:9464");
  /// Stops listening and joins its thread.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// The port it listens on (the one chosen when `listen` said 0).
  std::uint16_t port() const noexcept;

 private:
  std::unique_ptr<detail::MetricsServerImpl> impl_;
};

/// The process's metrics in the Prometheus text format, as a scrape gets them.
std::string metrics_text();

/// The process-wide Observer that counts runs and steps (the metrics marked (1) above). A
/// Runtime with `Config::metrics_listen` adds it itself; add it to `Config::observers` when
/// you serve the metrics some other way. Always the same object.
std::shared_ptr<Observer> metrics_observer();

}  // namespace flux
