#pragma once
// Internal: what the user binary's verbs (flux::main) and the `flux` tool share — exit codes
// for errors, telling an unreachable store from a corrupt record, tables that fit 100
// columns, and waiting for SIGTERM/SIGINT.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "flux/error.hpp"
#include "flux/main.hpp"

namespace flux::cli {

inline int code(ExitCode c) { return static_cast<int>(c); }

/// The exit code for an error Flux threw: invalid_argument and type_mismatch are usage (2),
/// not_found 4, run_owned 6, storage 3 (an unreachable store; use `classify_storage_error`
/// where the store answered and the data may be what is wrong), anything else 1.
int exit_code_for(const Error& e);

/// After an Error(storage) from a read: is the store at `store_url` reachable now? If it is,
/// the record was what could not be read (5, corrupt); if not, 3. `prefix` is unused today.
int classify_storage_error(const std::string& store_url);

/// `store`, else FLUX_STORE; "" if neither is set.
std::string store_url(const std::string& store);

/// A table that fits 100 columns: each column has its natural width up to its `max`; the one
/// column with `max` 0 (an error, a list of nodes) takes what is left and is cut with "...".
/// Every table's maxima leave that column at least its header's width (checked in
/// `render`, which cuts the last column to the width otherwise).
struct Column {
  std::string name;
  std::size_t max = 0;
};
class Table {
 public:
  explicit Table(std::vector<Column> columns);
  void add(std::vector<std::string> row);
  std::string render(std::size_t width = 100) const;
  bool empty() const noexcept { return rows_.empty(); }

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

/// A new random run id (UUID v4 text), as the engine makes them.
std::string new_run_id();

/// Text with control characters (a newline in an error message) shown as spaces, so that a
/// table row stays one line.
std::string one_line(std::string text);

}  // namespace flux::cli
