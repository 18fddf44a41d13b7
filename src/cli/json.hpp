#pragma once
// Internal: what the command line prints as JSON — values, runs, history entries, worker cards
// and Chrome trace events — and how it reads `--input` JSON. The field names here are the
// stable, documented ones (README, "Command line"); nlohmann-json stays inside src/cli.

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flux/record.hpp"
#include "flux/value.hpp"
#include "format/worker_card.hpp"

namespace flux::cli {

using Json = nlohmann::ordered_json;

/// A Value as JSON: null, bool, int64 and string as themselves; a finite float64 as a number,
/// NaN and the infinities as the strings "NaN", "Infinity", "-Infinity" (JSON has no such
/// numbers); bytes as {"$bytes": "<base64>"}; lists and maps as arrays and objects.
Json to_json(const Value& value);

/// Parses `text` (the `--input` of `run`) into a Value: integers that fit int64 as int64,
/// other numbers as float64, objects as maps. Throws Error(invalid_argument) for malformed
/// JSON with the position (line, column, byte) and what was expected, for an integer beyond
/// int64 and for nesting deeper than k_max_value_depth.
Value parse_input(std::string_view text);

/// "2026-12-01T03:04:05.123456Z" (UTC, microseconds).
std::string format_time(Timestamp t);
/// "850 ns", "85.0 us", "12.345 ms", "1.204 s", "5m 02s", "3h 04m", "2d 01h" — for tables.
std::string format_duration(std::chrono::nanoseconds d);

Json run_json(const RunInfo& run);
Json history_json(const HistoryEntry& entry);
Json worker_json(const detail::WorkerCard& card);
/// `flux runs show --json` and `runs export --format json`: {"run": run_json, "history": [...]}.
Json show_json(const RunInfo& run);
/// `flux workers --json`: {"workers": [worker_json + "expires_in_ms"], "corrupt": [{"key"}]};
/// `expires_in[i]` is the time left on `cards[i]` (nullopt: gone).
Json workers_json(const std::vector<detail::WorkerCard>& cards,
                  const std::vector<std::optional<std::chrono::milliseconds>>& expires_in,
                  const std::vector<std::string>& corrupt);

/// Chrome trace event JSON (chrome://tracing, Perfetto): one process for the run, one lane
/// (tid) per worker — "owner" for steps the run's owner executed — and one complete ("X")
/// slice per step; a step that overlaps another on its worker without nesting in it gets a
/// further lane of that worker ("worker A (2)"), so that every lane nests properly. `ts` counts
/// microseconds from the run's creation (otherData.origin gives it as a time).
Json trace_json(const RunInfo& run);

/// `json` rendered as one document on one line (invalid UTF-8 replaced, never thrown).
std::string dump(const Json& json);

}  // namespace flux::cli
