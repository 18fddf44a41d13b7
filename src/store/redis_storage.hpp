#pragma once
// Internal: the Redis backend of flux::Storage.
//
// Keys (P = the application's key prefix; every per-run key carries the run id in a
// {hash tag} so that Redis Cluster keeps a run on one shard):
//   P:{id}:run      string  the run record (RunRecord)
//   P:{id}:history  list    history entries (HistoryEntry), in order; index == seq
//   P:{id}:kv       hash    the run's key/value store (Value per field)
//   P:{id}:shared   hash    the run's shared state
//   P:{id}:lease    string  "owner|token" while a process owns the run (expires: PX ttl)
//   P:{id}:fence    string  the newest fencing token granted for the run (INCR)
//   P:{id}:cancel   string  a cancel request (a Value map; expires after a day)
//   P:{id}:resume   string  a resume request (a Value map; expires after a week)
//   P:resume_requests set   the ids of the runs whose resume request is pending
//   P:runs          zset    every run id, scored by creation time (µs): newest-first listing
//   P:runs:<status> zset    run ids by status, same score: listing by status without a scan
// The apply script writes a run's record and its index entries in one atomic step; readers
// drop index entries whose record is gone (expired by retention) and re-index a record
// found under another status.
// Every value is an enveloped Cap'n Proto record (record_codec.hpp).

#include <array>
#include <chrono>
#include <memory>
#include <string>

#include "flux/storage.hpp"
#include "redis/redis_client.hpp"

namespace flux::detail {

struct RedisOptions {
  std::string key_prefix = "flux";
  std::chrono::milliseconds io_timeout{5000};
  std::chrono::milliseconds retry_deadline{10000};
  /// The largest record (encoded value, history entry or run record) sent to the server.
  std::size_t max_record_size = std::size_t{64} << 20;
  Retention retention{};  // default: keep every run
};

/// Thread-safe. Writes (the persistence actor) and reads (any thread) use separate
/// connections, so reads never wait behind a large batch.
class RedisStorage final : public Storage {
 public:
  /// Connects; throws Error(storage) "cannot reach redis at host:port: <cause>" or an
  /// authentication error, and Error(invalid_argument) for a bad key prefix.
  RedisStorage(const RedisAddress& address, RedisOptions options);
  ~RedisStorage() override;

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
  std::vector<std::optional<std::string>> lease_holders(
      std::span<const std::string> run_ids) const override;
  void request_cancel(std::string_view run_id, const CancelRequest& request) override;
  std::vector<std::optional<CancelRequest>> cancel_requests(
      std::span<const std::string> run_ids) const override;
  void clear_cancel_request(std::string_view run_id) override;
  void request_resume(std::string_view run_id, const ResumeRequest& request) override;
  std::vector<std::string> pending_resume_requests(std::size_t limit) const override;
  std::vector<std::optional<ResumeRequest>> resume_requests(
      std::span<const std::string> run_ids) const override;
  void clear_resume_request(std::string_view run_id) override;

  /// The key of a run's record, history, kv or shared hash (for tests and tools).
  std::string run_key(std::string_view run_id) const;
  std::string history_key(std::string_view run_id) const;
  std::string scope_key(std::string_view run_id, Scope scope) const;
  std::string lease_key(std::string_view run_id) const;
  std::string fence_key(std::string_view run_id) const;
  std::string cancel_key(std::string_view run_id) const;
  std::string resume_key(std::string_view run_id) const;
  /// The set of run ids whose resume request is pending.
  std::string resume_index() const;
  /// The largest record this store sends: the configured limit or the server's
  /// proto-max-bulk-len, whichever is smaller.
  std::size_t max_record_size() const noexcept;
  /// The run indexes: all runs, and the runs with one status.
  std::string runs_index() const;
  std::string status_index(RunStatus status) const;
  /// How many runs each status index holds, indexed by RunStatus (running, completed, failed,
  /// cancelled, compensated, compensation_failed), in one round trip (ZCARD): the dashboard's
  /// counts, O(1) whatever the store's size. An index may briefly count a run whose record
  /// retention just removed (readers drop such entries).
  std::array<std::size_t, 6> count_by_status() const;

 private:
  void load_scripts();
  void learn_server_limits();
  /// `record`, or Error(invalid_argument) naming the run, the key and the limit if too large.
  const std::string& checked_size(const std::string& record, const std::string& run_id,
                                  const std::string& key) const;
  /// The apply script's call for one run's writes (the run indexes' updates included).
  /// Throws Error for a record that cannot be encoded or is too large.
  RedisCommand script_for(const std::vector<const Write*>& group) const;
  RedisCommand fail_script_for(const Write& w) const;
  std::vector<RedisReply> write(const std::vector<RedisCommand>& commands);
  std::vector<RedisReply> read(const std::vector<RedisCommand>& commands) const;

  const RedisOptions options_;
  std::unique_ptr<RedisConnection> writer_;
  std::unique_ptr<RedisConnection> reader_;
  std::string apply_sha_;  // SHA1 of the apply script, as loaded on the server
  std::string fail_sha_;   // SHA1 of the FailRun script
  std::size_t max_record_size_ = 0;
};

}  // namespace flux::detail
