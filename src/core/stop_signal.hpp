#pragma once
// Internal: waiting for the signal that asks a process to stop (a worker's drain, the CLI's
// `worker` and `driver` verbs, the dashboard).

namespace flux::detail {

/// While it lives, SIGTERM and SIGINT are caught (not the default action, which kills the
/// process) and remembered; `wait` blocks until one has arrived. Make it before the process
/// says it is ready, so that a signal sent right after that is never lost. The previous
/// handlers are restored by the destructor. One at a time per process.
///
/// A handler writing to a pipe, not sigwait: the threads CAF and the pools started do not
/// block the signals, so any of them may receive one.
class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  /// Blocks until SIGTERM or SIGINT has arrived; returns its name ("SIGTERM" or "SIGINT").
  const char* wait();
};

}  // namespace flux::detail
