#pragma once
/// \file
/// `flux::Storage`: where runs are kept — metadata, history, kv and shared state.
///
/// Flux ships `MemoryStorage` (the default) and lets you plug in your own
/// backend through `Config::storage`. Within a process, only Flux's persistence
/// actor writes to a Storage, and it does so from one thread, in order per run;
/// reads (`list_runs`, `get_run`, ...) may come from any thread at the same time,
/// so an implementation must make reads safe against that writer.
///
/// Errors: throw `flux::Error` with code `storage` and a message that names
/// the key or address involved.

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "flux/record.hpp"
#include "flux/value.hpp"

namespace flux {

/// Which per-run key/value space a key lives in.
enum class Scope : std::uint8_t { kv, shared };

/// Which runs `list_runs` returns.
struct RunFilter {
  std::optional<RunStatus> status;  ///< only runs with this status
  std::size_t limit = 0;            ///< at most this many (0: all)
};

/// One write, as queued by the persistence actor.
struct Write {
  struct PutRun { RunInfo run; };  ///< create or replace a run's metadata (history ignored)
  struct AppendHistory { std::string run_id; HistoryEntry entry; };
  struct PutKey { std::string run_id; Scope scope; std::string key; Value value; };
  struct EraseKey { std::string run_id; Scope scope; std::string key; };
  std::variant<PutRun, AppendHistory, PutKey, EraseKey> op;
};

class Storage {
 public:
  virtual ~Storage() = default;

  virtual void put_run(const RunInfo& run) = 0;
  virtual std::optional<RunInfo> get_run(std::string_view run_id) const = 0;
  /// Newest first (by creation time).
  virtual std::vector<RunInfo> list_runs(const RunFilter& filter) const = 0;

  virtual void append_history(std::string_view run_id, const HistoryEntry& entry) = 0;
  /// The run's history in append order, from position `from`.
  virtual std::vector<HistoryEntry> history(std::string_view run_id, std::size_t from) const = 0;

  virtual void put_key(std::string_view run_id, Scope scope, std::string_view key,
                       const Value& value) = 0;
  virtual std::optional<Value> get_key(std::string_view run_id, Scope scope,
                                       std::string_view key) const = 0;
  virtual void erase_key(std::string_view run_id, Scope scope, std::string_view key) = 0;
  virtual Value::Map keys(std::string_view run_id, Scope scope) const = 0;

  /// Applies a batch of writes in order. The default calls the methods above one by one;
  /// a networked backend overrides it to send the batch in one round trip.
  virtual void apply(std::span<const Write> batch);
};

/// The default store: everything in this process's memory, lost when it exits.
/// Thread-safe.
class MemoryStorage final : public Storage {
 public:
  MemoryStorage();
  ~MemoryStorage() override;

  void put_run(const RunInfo& run) override;
  std::optional<RunInfo> get_run(std::string_view run_id) const override;
  std::vector<RunInfo> list_runs(const RunFilter& filter) const override;
  void append_history(std::string_view run_id, const HistoryEntry& entry) override;
  std::vector<HistoryEntry> history(std::string_view run_id, std::size_t from) const override;
  void put_key(std::string_view run_id, Scope scope, std::string_view key,
               const Value& value) override;
  std::optional<Value> get_key(std::string_view run_id, Scope scope,
                               std::string_view key) const override;
  void erase_key(std::string_view run_id, Scope scope, std::string_view key) override;
  Value::Map keys(std::string_view run_id, Scope scope) const override;
  void apply(std::span<const Write> batch) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flux
