#pragma once
// Internal: waiting for the signal that asks a process to stop (a worker's drain, the CLI's
// `driver` verb, the dashboard).

namespace flux::detail {

/// Blocks until SIGTERM or SIGINT arrives; returns its name ("SIGTERM" or "SIGINT"), or
/// "no signal pipe" if none could be made. A handler writing to a pipe, not sigwait: the
/// threads CAF and the pools started do not block the signals, so any of them may receive
/// one. The previous handlers are restored before it returns.
const char* wait_for_stop_signal();
/// Starts catching SIGTERM and SIGINT for `wait_for_stop_signal` (which calls it too): call it
/// before a process announces that it is ready, so that a signal sent on the announcement is
/// waited for, not fatal. False if no pipe could be made.
bool catch_stop_signals();

}  // namespace flux::detail
