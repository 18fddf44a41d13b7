#pragma once
// Internal: a driver's placement of node steps on cluster workers.
//
// Two parts. The discovery thread reads the live worker cards from the store every
// `discovery_interval`, connects to new workers (bounded: CAF's own connect is not) and
// reports joins and departures. The dispatcher actor places each step on the worker with the
// least outstanding work among those hosting its node (same signature) and within their
// capacity, keeps the table of steps in flight, serves their Context calls, records their
// results, and places a lost worker's steps again (attempt + 1) — CAF never fails requests
// to a peer that went away, so the table is what notices (through down messages, which the
// heartbeats turn on for hung and cut-off peers too).

#include <caf/all.hpp>
#include <memory>
#include <string>
#include <thread>

#include "engine/run_driver.hpp"
#include "flux/cluster.hpp"

namespace flux::detail {

class Dispatcher final : public RemoteSteps {
 public:
  /// `system` must have been configured with wire::configure_network. `driver` names this
  /// process in messages.
  Dispatcher(caf::actor_system& system, ClusterConfig config, std::string store_url,
             std::string key_prefix, std::string driver);
  /// Stops discovery and the actor; call once no run is in flight.
  ~Dispatcher() override;
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  void submit(ExecRequest req) override;

  struct Shared;  // what the discovery thread and the actor exchange (dispatcher.cpp)

 private:
  void discover();

  caf::actor_system& system_;
  const ClusterConfig config_;
  const std::string store_url_;
  const std::string key_prefix_;
  std::shared_ptr<Shared> shared_;
  caf::actor actor_;
  std::thread discovery_;
};

}  // namespace flux::detail
