#pragma once
// Internal: waiting for the signal that asks a process to stop (a worker's drain, the CLI's
// `driver` verb).

namespace flux::detail {

/// Blocks until SIGTERM or SIGINT arrives; returns its name ("SIGTERM" or "SIGINT"), or
/// "no signal pipe" if none could be made. A handler writing to a pipe, not sigwait: the
/// threads CAF and the pools started do not block the signals, so any of them may receive
/// one. The previous handlers are restored before it returns.
const char* wait_for_stop_signal();

}  // namespace flux::detail
