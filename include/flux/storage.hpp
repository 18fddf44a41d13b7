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

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "flux/error.hpp"
#include "flux/record.hpp"
#include "flux/value.hpp"

namespace flux {

/// Which per-run key/value space a key lives in.
enum class Scope : std::uint8_t { kv, shared };

/// Which runs `list_runs` / `list_runs_page` return: newest first (by creation time).
struct RunFilter {
  std::optional<RunStatus> status{};  ///< only runs with this status
  std::size_t limit = 0;              ///< at most this many (0: all — O(runs); page instead)
  /// Where the page starts: empty for the newest run, else the `next_cursor` of the page
  /// before (same store, same status). Runs created after the first page was read do not
  /// shift later pages; they appear on a new first page.
  std::string cursor{};
};

/// One page of runs, newest first.
struct RunPage {
  std::vector<RunInfo> runs;
  /// The `RunFilter::cursor` of the next page; empty when there are no more runs.
  /// A non-empty cursor may lead to an empty page.
  std::string next_cursor;
  /// Keys of run records that could not be decoded: left out of `runs`, left in the store
  /// for inspection. One bad record never hides the others; their count is
  /// `corrupt_keys.size()`.
  std::vector<std::string> corrupt_keys;
};

/// How long a store keeps *finished* (completed or failed) runs: record, history, kv and
/// shared state. Running runs are never removed. Both limits may be combined; 0 turns one
/// off. See `Config::retention` for the defaults.
struct Retention {
  /// A finished run is removed this long after its final record was written (Redis: EXPIRE
  /// on all of its keys; memory: checked whenever a run is written).
  std::chrono::milliseconds max_age{0};
  /// At most this many finished runs are kept; beyond it the oldest are removed (memory:
  /// first finished, first removed; Redis: oldest by creation time, a few per batch).
  std::size_t max_runs = 0;
};

/// One write, as queued by the persistence actor. A run's writes come in the order its
/// steps made them: ClaimLease (a new run) first, ReleaseLease last.
struct Write {
  /// Creates or replaces a run's metadata (`run->history` is ignored). The record is
  /// immutable and shared, as history entries are: a Write stays small (the journal queues
  /// thousands) and journaling a run's record copies it once. Never null.
  struct PutRun {
    std::shared_ptr<const RunInfo> run;
  };
  /// Appends `*entry` at position `entry->seq`; an entry already stored at that position is
  /// left as it is (so a batch may be applied twice), a gap before it is an error.
  /// The entry is immutable and shared — by the run's live state, this write and a store
  /// that keeps it in memory — so recording a step copies it nowhere. Never null.
  struct AppendHistory {
    std::string run_id;
    std::shared_ptr<const HistoryEntry> entry;
  };
  struct PutKey {
    std::string run_id;
    Scope scope;
    std::string key;
    Value value;
  };
  struct EraseKey {
    std::string run_id;
    Scope scope;
    std::string key;
  };
  /// Takes the lease of a new run for `owner` with token `fence` == 1 (the run's first
  /// write, so that starting a run costs no round trip of its own). Refused with
  /// Error(run_owned) if the run id already has another owner; applying it twice is fine.
  struct ClaimLease {
    std::string run_id;
    std::string owner;
    std::chrono::milliseconds ttl;
  };
  /// Gives up the lease `owner` holds with token `fence` (the run's last write).
  struct ReleaseLease {
    std::string run_id;
    std::string owner;
  };
  /// Records `run` (status failed) over whatever the run's writer with token `fence` stored
  /// before, because that writer's caller was told the run failed while some of its writes
  /// may still land (the store was unreachable, full, ...). Takes a new fencing token, so
  /// that those writes are refused if they arrive later, and gives the lease up. Skipped if
  /// another owner took the run since. A networked store applies it even when it is out of
  /// memory (one small record replacing another), so that the store says what the caller
  /// was told.
  struct FailRun {
    std::shared_ptr<const RunInfo> run;  ///< never null
  };
  std::variant<PutRun, AppendHistory, PutKey, EraseKey, ClaimLease, ReleaseLease, FailRun> op;

  /// The run this write belongs to.
  const std::string& run_id() const noexcept {
    return std::visit(
        [](const auto& o) -> const std::string& {
          if constexpr (requires { o.run_id; }) {
            return o.run_id;
          } else {
            return o.run->id;
          }
        },
        op);
  }
  /// The writer's fencing token for the run (0: unfenced). A store with leases refuses the
  /// write with Error(run_owned) if a newer lease has been granted since.
  std::uint64_t fence = 0;
};

/// The writes of one run in a batch that the store refused (the rest of the batch was
/// applied): which run, with which token, and why — an error that names the run and the key.
struct RunRefusal {
  std::string run_id;
  std::uint64_t fence = 0;
  Error error;
};

/// Ownership of a running run: who holds it and the fencing token its writes carry.
struct Lease {
  std::string owner;
  std::uint64_t token = 0;  ///< larger than every token granted for the run before
};

/// The outcome of `Storage::acquire_lease`.
struct LeaseResult {
  std::optional<Lease> lease;  ///< set when granted
  std::string holder;          ///< otherwise: who holds it
};

/// A request to cancel a running run, recorded in the store by `Runtime::cancel` in a process
/// that does not own the run; the owner picks it up at its next lease renewal.
struct CancelRequest {
  std::string by;      ///< who asked: the requesting Runtime's owner id
  std::string reason;  ///< why (may be empty)
  /// CancelOptions::compensate: the run's completed steps are to be undone.
  bool compensate = false;
  friend bool operator==(const CancelRequest&, const CancelRequest&) = default;
};

/// A request to resume or retry a run, recorded in the store by a process that does not have
/// the run's pipeline (the `flux` tool, its dashboard) for a driver that has: a process with
/// `Config::cluster.adopt` takes the pending requests of the pipelines it adopts, resumes the
/// run (`Runtime::resume`, with `ResumeOptions::cancelled` for a cancelled run) and clears the
/// request. README, "Dashboard".
struct ResumeRequest {
  /// What was asked: resume an interrupted or cancelled run, or retry a failed one from the
  /// step that failed. Both are `Runtime::resume`; the verb says what the user meant.
  enum class Verb : std::uint8_t { resume, retry };
  Verb verb = Verb::resume;
  std::string by;  ///< who asked, e.g. "flux dashboard (host:pid:nonce)"
  Timestamp at{};  ///< when
  /// Set (once) by a driver that could not honour the request — the pipeline's fingerprint
  /// differs, the history does not keep full values, a record cannot be decoded: why. A
  /// refused request is no longer pending (no driver tries it again) but stays in the store,
  /// so that whoever asked sees why, until it is cleared or replaced by a new request.
  std::optional<std::string> refusal;
  friend bool operator==(const ResumeRequest&, const ResumeRequest&) = default;
};
const char* to_string(ResumeRequest::Verb verb) noexcept;

class Storage {
 public:
  virtual ~Storage() = default;

  virtual void put_run(const RunInfo& run) = 0;
  virtual std::optional<RunInfo> get_run(std::string_view run_id) const = 0;
  /// Newest first (by creation time). A record that cannot be decoded is left out.
  virtual std::vector<RunInfo> list_runs(const RunFilter& filter) const = 0;
  /// One page of `list_runs`, with the cursor of the next one and the keys of the records
  /// that could not be decoded. Flux's stores cost O(limit + log runs) per page and never
  /// throw for a corrupt record; the default pages over `list_runs` (O(runs)), using the
  /// run id as cursor.
  virtual RunPage list_runs_page(const RunFilter& filter) const;

  virtual void append_history(std::string_view run_id, const HistoryEntry& entry) = 0;
  /// The run's history in append order, from position `from`.
  virtual std::vector<HistoryEntry> history(std::string_view run_id, std::size_t from) const = 0;

  virtual void put_key(std::string_view run_id, Scope scope, std::string_view key,
                       const Value& value) = 0;
  virtual std::optional<Value> get_key(std::string_view run_id, Scope scope,
                                       std::string_view key) const = 0;
  virtual void erase_key(std::string_view run_id, Scope scope, std::string_view key) = 0;
  virtual Value::Map keys(std::string_view run_id, Scope scope) const = 0;

  /// Applies a batch of writes in order. The default calls the methods above one by one
  /// (ignoring fences); a networked backend overrides it to send the batch in one round
  /// trip. Applying a batch twice must leave the same state as applying it once.
  ///
  /// One run's bad write never harms another run: a write that cannot be applied (a stale
  /// fencing token, a record too large or impossible to encode, a refusal by the server) is
  /// skipped with the rest of its run's writes in the batch, and the run is returned with
  /// the reason; every other run's writes are applied. Throws Error(storage) only when the
  /// store as a whole failed (e.g. unreachable past the retry deadline), when it is unknown
  /// which writes were applied.
  virtual std::vector<RunRefusal> apply(std::span<const Write> batch);

  /// Leases (see DESIGN.md, resume). Expiry is measured by the store's clock, never by the
  /// wall clocks of two machines. The defaults grant every request with token 0: a store
  /// that does not override them gives no protection against two owners.
  ///
  /// Takes the run's lease for `ttl` if nobody holds it.
  virtual LeaseResult acquire_lease(std::string_view run_id, std::string_view owner,
                                    std::chrono::milliseconds ttl);
  /// Extends a lease still held; false if it expired or someone else holds the run now.
  virtual bool renew_lease(std::string_view run_id, const Lease& lease,
                           std::chrono::milliseconds ttl);
  /// Gives a lease up (no effect if it is no longer held).
  virtual void release_lease(std::string_view run_id, const Lease& lease);
  /// Who holds the run's lease now, if anyone.
  virtual std::optional<std::string> lease_holder(std::string_view run_id) const;
  /// `lease_holder` of each run, in order. The default asks one by one; Redis answers all
  /// in one round trip (`Runtime::list_orphans` relies on it).
  virtual std::vector<std::optional<std::string>> lease_holders(
      std::span<const std::string> run_ids) const;

  /// Cancel requests (see `Runtime::cancel`). Records a request for the run's owner; a later
  /// request replaces an earlier one. The default throws Error(invalid_argument): a store
  /// that does not override these cannot carry a cancel request between processes (a run
  /// owned by the calling Runtime is still cancelled directly).
  virtual void request_cancel(std::string_view run_id, const CancelRequest& request);
  /// The pending request of each run, in order (the default: none). Asked at every lease
  /// renewal for all the runs a process owns: Redis answers in one round trip.
  virtual std::vector<std::optional<CancelRequest>> cancel_requests(
      std::span<const std::string> run_ids) const;
  /// Forgets the run's request (once honoured, or when a cancelled run is resumed).
  virtual void clear_cancel_request(std::string_view run_id);

  /// Resume requests (`ResumeRequest`). Records the run's request, replacing any earlier one;
  /// a request without `refusal` is pending, one with it is not (a driver refusing a request
  /// records it again with the refusal). The default throws Error(invalid_argument): a store
  /// that does not override these cannot hand a resume to another process.
  virtual void request_resume(std::string_view run_id, const ResumeRequest& request);
  /// The ids of the runs with a pending request, at most `limit` of them (in no particular
  /// order): what drivers poll, without reading every run (Redis: one set under the key
  /// prefix). The default: none. An id may have lost its request meanwhile (cleared, or
  /// expired): `resume_requests` then answers none for it.
  virtual std::vector<std::string> pending_resume_requests(std::size_t limit) const;
  /// The request of each run (pending or refused), in order (the default: none); one round
  /// trip on Redis.
  virtual std::vector<std::optional<ResumeRequest>> resume_requests(
      std::span<const std::string> run_ids) const;
  /// Forgets the run's request, pending or refused (once honoured, or when it is moot).
  virtual void clear_resume_request(std::string_view run_id);
};

/// The default store: everything in this process's memory, lost when it exits.
/// Bounded by default (`k_default_retention`), so that a long-lived service does not grow
/// without limit. Runs are kept in order of creation per status, so a page of `list_runs`
/// costs O(limit + log runs) under a shared lock, and never waits on or delays running
/// runs for longer than that. Thread-safe.
class MemoryStorage final : public Storage {
 public:
  /// The newest 10,000 finished runs (about 12 MB for tiny runs); running runs are never
  /// removed.
  static constexpr Retention k_default_retention{.max_runs = 10'000};

  /// `retention`: which finished runs to keep; `Retention{}` keeps every run.
  explicit MemoryStorage(Retention retention = k_default_retention);
  ~MemoryStorage() override;

  void put_run(const RunInfo& run) override;
  std::optional<RunInfo> get_run(std::string_view run_id) const override;
  std::vector<RunInfo> list_runs(const RunFilter& filter) const override;
  RunPage list_runs_page(const RunFilter& filter) const override;
  void append_history(std::string_view run_id, const HistoryEntry& entry) override;
  std::vector<HistoryEntry> history(std::string_view run_id, std::size_t from) const override;
  void put_key(std::string_view run_id, Scope scope, std::string_view key,
               const Value& value) override;
  std::optional<Value> get_key(std::string_view run_id, Scope scope,
                               std::string_view key) const override;
  void erase_key(std::string_view run_id, Scope scope, std::string_view key) override;
  Value::Map keys(std::string_view run_id, Scope scope) const override;
  std::vector<RunRefusal> apply(std::span<const Write> batch) override;
  LeaseResult acquire_lease(std::string_view run_id, std::string_view owner,
                            std::chrono::milliseconds ttl) override;
  bool renew_lease(std::string_view run_id, const Lease& lease,
                   std::chrono::milliseconds ttl) override;
  void release_lease(std::string_view run_id, const Lease& lease) override;
  std::optional<std::string> lease_holder(std::string_view run_id) const override;
  void request_cancel(std::string_view run_id, const CancelRequest& request) override;
  std::vector<std::optional<CancelRequest>> cancel_requests(
      std::span<const std::string> run_ids) const override;
  void clear_cancel_request(std::string_view run_id) override;
  void request_resume(std::string_view run_id, const ResumeRequest& request) override;
  std::vector<std::string> pending_resume_requests(std::size_t limit) const override;
  std::vector<std::optional<ResumeRequest>> resume_requests(
      std::span<const std::string> run_ids) const override;
  void clear_resume_request(std::string_view run_id) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flux
