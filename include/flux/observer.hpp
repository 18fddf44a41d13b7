#pragma once
/// \file
/// `flux::Observer`: hooks for monitoring runs (metrics, tracing, logs).
///
/// Register any number through `Config::observers`. Callbacks run on Flux's
/// threads, concurrently for concurrent runs and parallel branches, so an
/// implementation must be thread-safe and quick. An exception thrown by an
/// observer is caught and reported on stderr; it never affects the run.

#include <cstdint>
#include <string>

#include "flux/record.hpp"

namespace flux {

/// Identifies one node execution.
struct NodeEvent {
  const std::string& run_id;
  const std::string& node;
  const std::string& step;
  std::uint32_t attempt;
};

class Observer {
 public:
  virtual ~Observer() = default;
  /// A run was started (status running).
  virtual void on_run_start(const RunInfo& run) { (void)run; }
  /// A run ended (completed or failed), after all its records are in the store and
  /// before its `RunHandle::wait()` returns. Called on the persistence thread.
  virtual void on_run_end(const RunInfo& run) { (void)run; }
  /// A node (or a parallel as a whole, `event.node == "parallel"`) starts executing.
  virtual void on_node_start(const NodeEvent& event) { (void)event; }
  /// A node (or a parallel as a whole) finished successfully.
  virtual void on_node_end(const NodeEvent& event, const HistoryEntry& entry) {
    (void)event, (void)entry;
  }
  /// A node (or a parallel) failed; `entry.error` holds the message.
  virtual void on_node_error(const NodeEvent& event, const HistoryEntry& entry) {
    (void)event, (void)entry;
  }
};

}  // namespace flux
