#pragma once
/// \file
/// What Flux records about runs: `HistoryEntry` (one execution of a node or a
/// parallel), `RunInfo` (a run's metadata, and optionally its history) and
/// `RunStatus`. These are plain value types, safe to copy between threads.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "flux/value.hpp"

namespace flux {

/// Wall-clock time as recorded in history (nanoseconds since the Unix epoch).
using Timestamp = std::chrono::time_point<std::chrono::system_clock, std::chrono::nanoseconds>;

/// Where a run stands. `cancelled`: stopped by `Runtime::cancel` / `RunHandle::cancel` or by
/// its deadline (its error says who and why); stored, listed and filtered like the others.
/// `compensated`: the run failed (or was cancelled with compensation, `CancelOptions`), then
/// the compensations of its completed steps (`Node::compensate`) all succeeded; its error is
/// still why it failed. `compensation_failed`: a compensation failed as well (its error names
/// that node and step, then why the run failed). README, "Compensation".
enum class RunStatus : std::uint8_t {
  running,
  completed,
  failed,
  cancelled,
  compensated,
  compensation_failed
};
const char* to_string(RunStatus status) noexcept;

/// What history records of each step's input and output.
enum class HistoryValues : std::uint8_t {
  full,       ///< the whole values (default; required to resume a run)
  none,       ///< nulls: timing, names and errors only
  truncated,  ///< a value whose text rendering exceeds the limit is replaced by
              ///< {"truncated": true, "preview": <the first `limit` bytes>}
};

/// One execution of a step. Durations are measured with a monotonic clock;
/// `start` and `end` are wall-clock times for display.
struct HistoryEntry {
  /// `resume`: the run was resumed here (node "resume", step ""); its output says from
  /// which status and how many recorded steps are reused.
  /// `cancel`: the run was cancelled here (node "cancel", step ""); its input says by whom
  /// (`by`: a process id, or "deadline") and why (`reason`).
  /// `compensating`: the run began undoing its completed steps here (node "compensation",
  /// step ""); its input says why the run stopped (`status` "failed" or "cancelled", `node`,
  /// `step`, `message`).
  /// `compensate`: one attempt of the compensation of the step `step` (node `node`); its input
  /// is that step's recorded output, its output what the compensation returned.
  enum class Type : std::uint8_t { node, parallel, resume, cancel, compensating, compensate };

  std::uint64_t seq = 0;  ///< position in the run's history, from 0, in append order
  Type type = Type::node;
  std::string node;           ///< node name ("parallel" for a parallel as a whole)
  std::string step;           ///< stable step id: the path in the pipeline tree, e.g. "1.0.2"
  std::uint32_t attempt = 1;  ///< 1 for the first execution of the step
  Timestamp start{};
  Timestamp end{};
  std::chrono::nanoseconds duration{0};
  Value input;
  Value output;                      ///< null when the step failed
  std::optional<std::string> error;  ///< the failure message, if the step failed
  /// The child runs this execution started (Context::start), in order.
  std::vector<std::string> children;
  /// The id of the cluster worker that executed the step; empty when the run's owner did.
  std::string worker;

  bool ok() const noexcept { return !error.has_value(); }
  friend bool operator==(const HistoryEntry&, const HistoryEntry&) = default;
};

/// Why a run failed: the step that failed and the message of what it threw.
struct RunFailure {
  std::string node;  ///< empty if the failure is not a node's (e.g. the store)
  std::string step;
  std::string message;  ///< full text, naming the node and step
  friend bool operator==(const RunFailure&, const RunFailure&) = default;
};

/// What the store knows about a run.
struct RunInfo {
  std::string id;
  std::string pipeline;     ///< the pipeline's name
  std::string fingerprint;  ///< hash of the pipeline's shape and node names (hex)
  RunStatus status = RunStatus::running;
  Timestamp created{};
  Timestamp updated{};
  std::optional<Timestamp> finished;
  Value input;
  Value output;
  std::optional<RunFailure> error;
  /// The process that owns (last owned) the run: "host:pid:nonce".
  std::string owner;
  /// What the history keeps of values; resume needs `full`.
  HistoryValues history_values = HistoryValues::full;
  /// For a child run (Context::start): the run and the step that started it; else empty.
  std::string parent_run_id;
  std::string parent_step;
  /// The run's deadline (RunOptions::deadline, Config::deadline), if it has one.
  std::optional<Timestamp> deadline;
  /// How many steps a complete run executes: the node steps of its pipeline's plan, a node
  /// inside a parallel's branches counted once per branch (`inc | parallel(dbl, inc | sq)` has
  /// 4); parallels themselves and the steps of child runs (Context::start) are not counted.
  /// Set when the run starts (and again when it is resumed); unset in records written before
  /// the field existed.
  std::optional<std::uint32_t> steps_total;
  /// How many of those steps completed: `completed_steps(history)` when the run's record was
  /// written at its end (so also for a failed, cancelled or compensated run: the steps that
  /// completed before it stopped). Unset while the run is running (count its history
  /// instead: it is not written per step) and in records written before the field existed.
  std::optional<std::uint32_t> steps_done;
  /// Filled by `Runtime::get_run`; empty in `list_runs` results.
  std::vector<HistoryEntry> history;

  friend bool operator==(const RunInfo&, const RunInfo&) = default;
};

/// The distinct node steps that completed in `history` (entries of type `node` without an
/// error, each step id counted once): what `RunInfo::steps_done` records at a run's end.
std::uint32_t completed_steps(const std::vector<HistoryEntry>& history);

}  // namespace flux
