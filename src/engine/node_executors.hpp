#pragma once
// Internal: the executor actors of one node, and the queue they take work from.
//
// A node is served by a small pool of executor actors (Config::node_executors, by default
// one per scheduler thread), so that executions of one node for different runs proceed
// side by side: a sync node that takes 50 ms no longer makes every other run through it
// wait in one actor's mailbox, and one that never returns holds only its own executor
// (and the scheduler thread it runs on).
//
// Work goes to an idle executor directly, in the message that wakes it; when all are busy
// it waits in the node's queue, and the first executor to finish takes it. A request
// therefore never waits behind a stuck execution while another executor is free — which a
// fixed assignment (round robin, least outstanding) cannot promise.

#include <caf/all.hpp>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "engine/run_driver.hpp"

namespace flux::detail {

class NodeExecutors {
 public:
  /// Up to `count` (at least 1) executor actors for `def`. One is spawned now; the others
  /// when a request finds every executor busy — a pipeline of thousands of nodes that runs
  /// one step at a time keeps one actor per node.
  NodeExecutors(caf::actor_system& system, const NodeDef* def, std::size_t count);
  /// Stops the executors (an execution in progress finishes first).
  ~NodeExecutors();
  NodeExecutors(const NodeExecutors&) = delete;
  NodeExecutors& operator=(const NodeExecutors&) = delete;

  /// Hands `req` to an idle executor, or queues it until one is free. Any thread.
  void submit(ExecRequest req);
  /// Called by executor `index` when it is done with a request: it is handed the next queued
  /// request, or it becomes idle.
  void finished(std::size_t index);
  /// Where the request handed to an executor waits for it: its (exec_atom) message only
  /// announces it, since the request holds this process's pointers and a message holds only
  /// values (what CAF could serialize). Each executor owns one slot, at a stable address,
  /// and takes its request without a lock: the message that announces it orders the write
  /// before the read.
  using Slot = std::optional<ExecRequest>;
  static ExecRequest take(Slot& slot) {
    ExecRequest req = std::move(*slot);
    slot.reset();
    return req;
  }

 private:
  caf::actor spawn_executor();  // called with mu_ held

  caf::actor_system& system_;
  const NodeDef* const def_;
  const std::size_t max_executors_;
  std::mutex mu_;  // guards actors_, handed_ (the vector, and a slot until handed), queue_, idle_
  std::vector<caf::actor> actors_;
  std::vector<std::unique_ptr<Slot>> handed_;  // per executor: its next request
  std::deque<ExecRequest> queue_;
  std::vector<std::size_t> idle_;  // executors with nothing to do, used most recently last
};

}  // namespace flux::detail
