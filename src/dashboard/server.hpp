#pragma once
// Internal: the web dashboard — a JSON API under /api/ over a shared (Redis) store, and a
// static page (src/dashboard/assets, embedded at build time) that draws it. Served by the
// `flux` tool (`flux dashboard`: reads, and acts with the token: cancels, and hands resume and
// retry to a driver through the store); a program that has the pipelines' code may serve it
// with its Registry, which then resumes and retries runs itself.
// Built as its own internal library (flux_dashboard), so that libflux and its consumers do
// not link cpp-httplib.
//
// The API (README, "Dashboard", documents every field):
//   GET  /api/info                       what this dashboard may do (no store password)
//   GET  /api/runs?status=&pipeline=&id=&since=&until=&limit=&cursor=
//                                        a page of runs newest first, counts per status
//   GET  /api/runs/<id>?from=N&trace=1   a run, its history from seq N, kv, shared state,
//                                        parent and children; with trace=1 its Chrome trace
//   GET  /api/runs/<id>/export?format=json|trace   what `flux runs export` writes
//   GET  /api/workers                    what `flux workers --json` prints
//   POST /api/runs/<id>/cancel|resume|retry        actions: header X-Flux-Token, same Origin
// Errors are {"error": "..."} with 400 (bad input), 403 (no or wrong token, foreign Origin),
// 404 (unknown run or path), 409 (the run's state refuses the action), 503 (store down).
//
// Thread-safe: requests are served on a pool of threads; the store is thread-safe and the
// worker directory is guarded.

#include <cstdint>
#include <memory>
#include <string>

#include "flux/registry.hpp"

namespace flux::dashboard {

struct Options {
  std::string store;            ///< redis://[user:password@]host:port[/db]
  std::string prefix = "flux";  ///< key prefix in the store
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  ///< 0: any free port (see Server::port)
  /// The actions' token (header X-Flux-Token); empty: the dashboard is read-only.
  std::string token;
  /// The pipelines resume and retry need; nullptr: those actions store a request for a driver
  /// adopting the run's pipeline (202, Storage::request_resume).
  const Registry* registry = nullptr;
};

class Server {
 public:
  /// Opens the store (throws flux::Error(storage) if unreachable, invalid_argument for a
  /// store that is not Redis) and binds the address (throws Error(invalid_argument) naming
  /// it if it cannot be bound). Serving starts with `serve`.
  explicit Server(Options options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The bound address and port.
  const std::string& host() const noexcept;
  std::uint16_t port() const noexcept;
  /// Serves until `stop` (from another thread or a signal handler's thread). A `stop` before
  /// `serving()` is true is lost (httplib's): wait for it first.
  void serve();
  bool serving() const;
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// `flux dashboard` / `app dashboard`: parses "host:port" of `listen`, serves until SIGTERM or
/// SIGINT, printing "dashboard at http://host:port/ (read-only|actions need the token)" first.
/// Returns an exit code (flux::ExitCode).
int serve_until_signal(Options options, const std::string& listen);

}  // namespace flux::dashboard
