// The Storage contract: one value-parameterized suite that runs the same assertions against
// every backend Flux ships (flux::MemoryStorage and the Redis backend behind
// Config{.store = "redis://..."}), plus Redis-only tests of the key layout, key-prefix
// isolation and what a second connection sees.
//
// One private redis-server serves the whole binary (started lazily by the first test that
// needs it); every test uses its own key prefix, so tests are independent of each other.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <flux/flux.hpp>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/redis_server.hpp"

// ---------------------------------------------------------------- readable failures
// gtest finds these by argument-dependent lookup, so they live in the types' namespace.
namespace flux {

inline void PrintTo(const Value& v, std::ostream* os) { *os << v.to_string(); }

inline void PrintTo(RunStatus s, std::ostream* os) { *os << to_string(s); }

inline void PrintTo(const HistoryEntry& e, std::ostream* os) {
  const char* type = e.type == HistoryEntry::Type::node       ? "node"
                     : e.type == HistoryEntry::Type::parallel ? "parallel"
                                                              : "other";
  *os << "{seq " << e.seq << ", " << type << " \"" << e.node << "\" step \"" << e.step
      << "\" attempt " << e.attempt << ", start " << e.start.time_since_epoch().count()
      << "ns, end " << e.end.time_since_epoch().count() << "ns, duration " << e.duration.count()
      << "ns, input " << e.input.to_string() << ", output " << e.output.to_string() << ", error "
      << (e.error ? "\"" + *e.error + "\"" : std::string("none")) << "}";
}

inline void PrintTo(const RunInfo& r, std::ostream* os) {
  *os << "{id \"" << r.id << "\", pipeline \"" << r.pipeline << "\", fingerprint \""
      << r.fingerprint << "\", " << to_string(r.status) << ", created "
      << r.created.time_since_epoch().count() << "ns, updated "
      << r.updated.time_since_epoch().count() << "ns, finished "
      << (r.finished ? std::to_string(r.finished->time_since_epoch().count()) + "ns"
                     : std::string("none"))
      << ", input " << r.input.to_string() << ", output " << r.output.to_string() << ", error ";
  if (r.error) {
    *os << "{node \"" << r.error->node << "\", step \"" << r.error->step << "\", message \""
        << r.error->message << "\"}";
  } else {
    *os << "none";
  }
  *os << ", owner \"" << r.owner << "\", history_values " << static_cast<int>(r.history_values)
      << ", " << r.history.size() << " history entries}";
}

}  // namespace flux

namespace {

using namespace std::chrono_literals;
using flux::HistoryEntry;
using flux::RunFilter;
using flux::RunInfo;
using flux::RunStatus;
using flux::Scope;
using flux::Value;
using flux::Write;

// ---------------------------------------------------------------- the shared server

/// The binary's one redis-server, started on first use and stopped at exit.
flux::test::RedisServer& redis() {
  static flux::test::RedisServer server;
  return server;
}

/// A key prefix no other test (and no other process) uses: pid, a counter and the test name,
/// restricted to characters that are not special in a SCAN/KEYS glob.
std::string unique_prefix() {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "none";
  for (char& c : name) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '.';
    if (!plain) c = '_';
  }
  return "contract-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + name;
}

flux::Config redis_config(const std::string& prefix,
                          std::optional<flux::Retention> retention = std::nullopt) {
  return flux::Config{.store = redis().url(),
                      .key_prefix = prefix,
                      .retention = retention,
                      .store_retry_deadline = 3000ms,
                      .threads = 1,
                      .blocking_threads = 1};
}

// ---------------------------------------------------------------- backends

/// An opened store; for Redis it owns the Runtime whose storage() it hands out.
class OpenStore {
 public:
  virtual ~OpenStore() = default;
  virtual flux::Storage& storage() = 0;
};

class MemoryStore final : public OpenStore {
 public:
  explicit MemoryStore(flux::Retention retention) : storage_(retention) {}
  flux::Storage& storage() override { return storage_; }

 private:
  flux::MemoryStorage storage_;
};

class RedisStore final : public OpenStore {
 public:
  explicit RedisStore(const std::string& prefix, flux::Retention retention)
      : runtime_(redis_config(prefix, retention)) {}
  flux::Storage& storage() override { return runtime_.storage(); }

 private:
  flux::Runtime runtime_;
};

struct Backend {
  const char* name;
  std::unique_ptr<OpenStore> (*open)(const std::string& prefix, flux::Retention retention);
};

void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

// The contract tests keep every run (Retention{}) unless they test retention.
std::unique_ptr<OpenStore> open_memory(const std::string&, flux::Retention retention) {
  return std::make_unique<MemoryStore>(retention);
}
std::unique_ptr<OpenStore> open_redis(const std::string& prefix, flux::Retention retention) {
  return std::make_unique<RedisStore>(prefix, retention);
}

// ---------------------------------------------------------------- data

flux::Timestamp at(std::int64_t ns) { return flux::Timestamp(std::chrono::nanoseconds(ns)); }

/// 2023-11-14T22:13:20Z plus an odd number of nanoseconds, so that ns precision shows.
constexpr std::int64_t kBase = 1'700'000'000'123'456'789;
constexpr std::int64_t kSecond = 1'000'000'000;

flux::Bytes bytes(std::initializer_list<unsigned> octets) {
  flux::Bytes b;
  for (unsigned o : octets) b.push_back(static_cast<std::byte>(o));
  return b;
}

/// A map holding every kind of Value, nested, with unicode, NULs and extreme numbers.
Value rich_value() {
  return Value::Map{
      {"null", nullptr},
      {"true", true},
      {"false", false},
      {"int", std::int64_t{-42}},
      {"int_max", std::numeric_limits<std::int64_t>::max()},
      {"int_min", std::numeric_limits<std::int64_t>::min()},
      {"float", 3.141592653589793},
      {"denormal", 5e-324},
      {"float_min", -1.7976931348623157e308},
      {"text",
       "h\xC3\xA9llo w\xC3\xB6rld \xE2\x80\x94 \xE2\x9C\x93 \xE6\x97\xA5\xE6\x9C\xAC "
       "\xF0\x9F\x9A\x80"},
      {"text_with_nul", std::string("a\0b\0", 4)},
      {"empty_text", ""},
      {"bytes", bytes({0x00, 0x01, 0xff, 0x00, 0x7f, 0x00})},
      {"empty_bytes", flux::Bytes{}},
      {"list", Value::List{1, "two", 3.5, nullptr, false, Value::List{}, Value::Map{}}},
      {"nested", Value::Map{{"a", Value::Map{{"b", Value::List{Value::Map{{"c", bytes({0x00})}},
                                                               Value::List{Value::List{true}}}}}}}},
      {"", "empty key"},
      {"\xD0\xBA\xD0\xBB\xD1\x8E\xD1\x87 \xE2\x9C\x93", "unicode key"},
      {std::string("k\0ey", 4), "key with a NUL"},
  };
}

RunInfo make_run(std::string id, std::int64_t created_ns, RunStatus status = RunStatus::running) {
  RunInfo r;
  r.id = std::move(id);
  r.pipeline = "pipe-" + r.id;
  r.fingerprint = "0123456789abcdef";
  r.status = status;
  r.created = at(created_ns);
  r.updated = at(created_ns + 17);
  if (status != RunStatus::running) r.finished = at(created_ns + 29);
  r.input = Value::Map{{"id", r.id}};
  if (status == RunStatus::completed) r.output = Value::List{r.id, std::int64_t{7}};
  if (status == RunStatus::failed) r.error = flux::RunFailure{"n", "0", "failed: " + r.id};
  return r;
}

HistoryEntry make_entry(std::uint64_t seq) {
  HistoryEntry e;
  e.seq = seq;
  e.type = seq % 3 == 2 ? HistoryEntry::Type::parallel : HistoryEntry::Type::node;
  e.node = e.type == HistoryEntry::Type::parallel ? "parallel" : "node-" + std::to_string(seq);
  e.step = "1." + std::to_string(seq) + ".2";
  e.attempt = static_cast<std::uint32_t>(1 + seq % 2);
  e.start = at(kBase + static_cast<std::int64_t>(seq) * kSecond + 1);
  e.end = at(kBase + static_cast<std::int64_t>(seq) * kSecond + 987'654'322);
  e.duration = std::chrono::nanoseconds(987'654'000 + static_cast<std::int64_t>(seq));
  e.input = Value::List{static_cast<std::int64_t>(seq), "in"};
  e.output = Value::Map{{"seq", static_cast<std::int64_t>(seq)}};
  return e;
}

std::vector<HistoryEntry> make_entries(std::uint64_t from, std::uint64_t to) {
  std::vector<HistoryEntry> out;
  for (std::uint64_t s = from; s < to; ++s) out.push_back(make_entry(s));
  return out;
}

std::vector<std::string> ids(const std::vector<RunInfo>& runs) {
  std::vector<std::string> out;
  for (const auto& r : runs) out.push_back(r.id);
  return out;
}

RunFilter with_status(RunStatus s, std::size_t limit = 0) {
  RunFilter f;
  f.status = s;
  f.limit = limit;
  return f;
}

RunFilter with_limit(std::size_t limit) {
  RunFilter f;
  f.limit = limit;
  return f;
}

Write put_run(RunInfo r) {
  return Write{Write::PutRun{std::make_shared<const RunInfo>(std::move(r))}};
}
Write append(std::string id, HistoryEntry e) {
  return Write{Write::AppendHistory{std::move(id), std::make_shared<const HistoryEntry>(std::move(e))}};
}
Write put_key(std::string id, Scope scope, std::string key, Value v) {
  return Write{Write::PutKey{std::move(id), scope, std::move(key), std::move(v)}};
}
Write erase_key(std::string id, Scope scope, std::string key) {
  return Write{Write::EraseKey{std::move(id), scope, std::move(key)}};
}

// ---------------------------------------------------------------- the parameterized suite

class StorageContract : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { open_ = GetParam().open(unique_prefix(), flux::Retention{}); }
  /// Replaces the store with a new, empty one that applies `retention`.
  void reopen(flux::Retention retention) { open_ = GetParam().open(unique_prefix(), retention); }
  void TearDown() override { open_.reset(); }

  flux::Storage& store() { return open_->storage(); }

 private:
  std::unique_ptr<OpenStore> open_;
};

// ---- runs: put_run / get_run

TEST_P(StorageContract, PutRunGetRunRoundTripsEveryField) {
  RunInfo full;
  full.id = "run-\xE2\x9C\x93-1";
  full.pipeline = "pipeline \xE6\x97\xA5\xE6\x9C\xAC";
  full.fingerprint = "deadbeef0123456789abcdef00112233";
  full.status = RunStatus::failed;
  full.created = at(kBase);
  full.updated = at(kBase + 1);
  full.finished = at(kBase + 999'999'999);
  full.input = rich_value();
  full.output = Value::List{rich_value(), bytes({0x00}), std::string(1, '\0'), nullptr};
  full.error = flux::RunFailure{"node \xE2\x9C\x97", "1.0.2",
                                "node \"x\" at step 1.0.2 failed:\nboom\t\xE2\x9C\x97"};
  store().put_run(full);

  // A run with every optional field unset and every value at its default.
  RunInfo minimal;
  minimal.id = "run-minimal";
  store().put_run(minimal);

  // Completed: finished set, no error, scalar output.
  RunInfo completed = make_run("run-completed", kBase + 5, RunStatus::completed);
  completed.output = 3.25;
  store().put_run(completed);

  std::optional<RunInfo> got = store().get_run(full.id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->id, full.id);
  EXPECT_EQ(got->pipeline, full.pipeline);
  EXPECT_EQ(got->fingerprint, full.fingerprint);
  EXPECT_EQ(got->status, RunStatus::failed);
  EXPECT_EQ(got->created.time_since_epoch().count(), kBase);
  EXPECT_EQ(got->updated.time_since_epoch().count(), kBase + 1);
  ASSERT_TRUE(got->finished.has_value());
  EXPECT_EQ(got->finished->time_since_epoch().count(), kBase + 999'999'999);
  EXPECT_EQ(got->input, full.input);
  EXPECT_EQ(got->output, full.output);
  ASSERT_TRUE(got->error.has_value());
  EXPECT_EQ(got->error->node, full.error->node);
  EXPECT_EQ(got->error->step, full.error->step);
  EXPECT_EQ(got->error->message, full.error->message);
  EXPECT_TRUE(got->history.empty());
  EXPECT_EQ(*got, full);

  got = store().get_run("run-minimal");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, minimal);
  EXPECT_FALSE(got->finished.has_value());
  EXPECT_FALSE(got->error.has_value());
  EXPECT_TRUE(got->input.is_null());

  got = store().get_run("run-completed");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, completed);
}

TEST_P(StorageContract, GetRunOfAnUnknownIdIsNullopt) {
  EXPECT_EQ(store().get_run("nope"), std::nullopt);
  store().put_run(make_run("known", kBase));
  EXPECT_EQ(store().get_run("nope"), std::nullopt);
  EXPECT_EQ(store().get_run(""), std::nullopt);
  EXPECT_EQ(store().get_run("know"), std::nullopt);
  EXPECT_EQ(store().get_run("known-"), std::nullopt);
  EXPECT_TRUE(store().get_run("known").has_value());
}

TEST_P(StorageContract, PutRunIgnoresTheHistoryField) {
  RunInfo r = make_run("with-history", kBase);
  r.history = make_entries(0, 2);
  store().put_run(r);
  std::optional<RunInfo> got = store().get_run("with-history");
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(got->history.empty());
  r.history.clear();
  EXPECT_EQ(*got, r);
  EXPECT_TRUE(store().history("with-history", 0).empty());
}

TEST_P(StorageContract, PutRunRoundTripsOwnerAndHistoryValues) {
  RunInfo r = make_run("owned", kBase);
  r.owner = "host-\xE2\x9C\x93:4242:0123abcd";
  r.history_values = flux::HistoryValues::truncated;
  store().put_run(r);
  std::optional<RunInfo> got = store().get_run("owned");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->owner, r.owner);
  EXPECT_EQ(got->history_values, flux::HistoryValues::truncated);
  EXPECT_EQ(*got, r);

  r.owner.clear();
  r.history_values = flux::HistoryValues::none;
  store().put_run(r);
  EXPECT_EQ(store().get_run("owned"), r);
  std::vector<RunInfo> listed = store().list_runs({});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0], r);
}

TEST_P(StorageContract, PutRunReplacesMetadataAndMovesTheRunBetweenStatusFilters) {
  RunInfo r = make_run("r", kBase, RunStatus::running);
  store().put_run(r);
  ASSERT_EQ(store().get_run("r"), r);
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::running))), std::vector<std::string>{"r"});
  EXPECT_TRUE(store().list_runs(with_status(RunStatus::completed)).empty());

  RunInfo done = r;
  done.status = RunStatus::completed;
  done.updated = at(kBase + 3 * kSecond + 1);
  done.finished = at(kBase + 3 * kSecond + 2);
  done.output = Value::Map{{"answer", std::int64_t{42}}};
  store().put_run(done);

  EXPECT_EQ(store().get_run("r"), done);
  EXPECT_TRUE(store().list_runs(with_status(RunStatus::running)).empty());
  EXPECT_TRUE(store().list_runs(with_status(RunStatus::failed)).empty());
  std::vector<RunInfo> completed = store().list_runs(with_status(RunStatus::completed));
  ASSERT_EQ(completed.size(), 1u);
  EXPECT_EQ(completed[0], done);
  // Replaced, not added: still one run.
  std::vector<RunInfo> all = store().list_runs({});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], done);
}

TEST_P(StorageContract, ACancelledRunIsStoredListedAndFilteredByItsOwnStatus) {
  RunInfo r = make_run("c", kBase, RunStatus::running);
  store().put_run(r);
  RunInfo cancelled = r;
  cancelled.status = RunStatus::cancelled;
  cancelled.finished = at(kBase + kSecond);
  cancelled.deadline = at(kBase + 2 * kSecond);
  cancelled.error = flux::RunFailure{"", "", "run c was cancelled by me: why"};
  store().put_run(cancelled);
  EXPECT_EQ(store().get_run("c"), cancelled);
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::cancelled))),
            std::vector<std::string>{"c"});
  EXPECT_TRUE(store().list_runs(with_status(RunStatus::running)).empty());
  EXPECT_TRUE(store().list_runs(with_status(RunStatus::failed)).empty());
  EXPECT_EQ(store().list_runs({}).size(), 1u);
  // Resumed: running again, out of the cancelled index.
  store().put_run(r);
  EXPECT_TRUE(store().list_runs(with_status(RunStatus::cancelled)).empty());
}

TEST_P(StorageContract, CompensatedRunsAreStoredListedAndFilteredByTheirOwnStatus) {
  RunInfo a = make_run("a", kBase, RunStatus::running);
  RunInfo b = make_run("b", kBase + kSecond, RunStatus::running);
  store().put_run(a);
  store().put_run(b);
  a.status = RunStatus::compensated;
  a.finished = at(kBase + 2 * kSecond);
  a.error = flux::RunFailure{"pay", "3", "node 'pay' (step 3) failed: declined"};
  b.status = RunStatus::compensation_failed;
  b.finished = at(kBase + 3 * kSecond);
  b.error = flux::RunFailure{"reserve", "1", "compensation of node 'reserve' (step 1) failed"};
  store().put_run(a);
  store().put_run(b);
  EXPECT_EQ(store().get_run("a"), a);
  EXPECT_EQ(store().get_run("b"), b);
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::compensated))),
            std::vector<std::string>{"a"});
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::compensation_failed))),
            std::vector<std::string>{"b"});
  EXPECT_TRUE(store().list_runs(with_status(RunStatus::running)).empty());
  EXPECT_TRUE(store().list_runs(with_status(RunStatus::failed)).empty());
  EXPECT_EQ(store().list_runs({}).size(), 2u);
  // Resumed (a failed compensation retried): running again, out of its index.
  b.status = RunStatus::running;
  store().put_run(b);
  EXPECT_TRUE(store().list_runs(with_status(RunStatus::compensation_failed)).empty());
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::running))),
            std::vector<std::string>{"b"});
}

TEST_P(StorageContract, CancelRequestsAreKeptPerRunUntilCleared) {
  store().put_run(make_run("a", kBase, RunStatus::running));
  store().put_run(make_run("b", kBase + 1, RunStatus::running));
  const std::vector<std::string> both = {"a", "b", "unknown"};
  EXPECT_EQ(store().cancel_requests(both), (std::vector<std::optional<flux::CancelRequest>>{
                                               std::nullopt, std::nullopt, std::nullopt}));
  store().request_cancel("b", {"host:1:x", "first"});
  store().request_cancel("b", {"host:2:y", "second"});  // the later one counts
  auto requests = store().cancel_requests(both);
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_FALSE(requests[0]);
  EXPECT_EQ(requests[1], (flux::CancelRequest{"host:2:y", "second"}));
  EXPECT_FALSE(requests[2]);
  store().clear_cancel_request("b");
  EXPECT_FALSE(store().cancel_requests(both)[1]);
  EXPECT_TRUE(store().cancel_requests({}).empty());
}

TEST_P(StorageContract, ResumeRequestsArePendingUntilRefusedAndKeptUntilCleared) {
  store().put_run(make_run("a", kBase, RunStatus::failed));
  store().put_run(make_run("b", kBase + 1, RunStatus::cancelled));
  const std::vector<std::string> both = {"a", "b", "unknown"};
  EXPECT_TRUE(store().pending_resume_requests(100).empty());
  EXPECT_EQ(store().resume_requests(both), (std::vector<std::optional<flux::ResumeRequest>>{
                                               std::nullopt, std::nullopt, std::nullopt}));
  const flux::ResumeRequest retry{flux::ResumeRequest::Verb::retry, "flux dashboard (h:1:x)",
                                  at(kBase + kSecond), std::nullopt};
  flux::ResumeRequest resume{flux::ResumeRequest::Verb::resume, "flux runs resume (h:2:y)",
                             at(kBase + 2 * kSecond), std::nullopt};
  store().request_resume("a", retry);
  store().request_resume("b", {flux::ResumeRequest::Verb::retry, "first", at(kBase), {}});
  store().request_resume("b", resume);  // the later one counts
  EXPECT_EQ(store().pending_resume_requests(100), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(store().pending_resume_requests(1).size(), 1u);
  EXPECT_TRUE(store().pending_resume_requests(0).empty());
  auto requests = store().resume_requests(both);
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0], retry);
  EXPECT_EQ(requests[1], resume);
  EXPECT_FALSE(requests[2]);

  // A driver refuses b: no longer pending, still there with its text.
  resume.refusal = "run b was recorded without full history values";
  store().request_resume("b", resume);
  EXPECT_EQ(store().pending_resume_requests(100), std::vector<std::string>{"a"});
  EXPECT_EQ(store().resume_requests(both)[1], resume);
  // Asked again: pending again.
  resume.refusal.reset();
  store().request_resume("b", resume);
  EXPECT_EQ(store().pending_resume_requests(100), (std::vector<std::string>{"a", "b"}));

  store().clear_resume_request("a");
  store().clear_resume_request("unknown");  // nothing to clear: fine
  EXPECT_EQ(store().pending_resume_requests(100), std::vector<std::string>{"b"});
  EXPECT_FALSE(store().resume_requests(both)[0]);
  EXPECT_TRUE(store().resume_requests({}).empty());
}

TEST_P(StorageContract, StepCountsRoundTripAndZeroIsNotUnknown) {
  RunInfo r = make_run("steps", kBase, RunStatus::failed);
  r.steps_total = 6;
  r.steps_done = 0;
  store().put_run(r);
  EXPECT_EQ(store().get_run("steps"), r);
  r.steps_total.reset();
  r.steps_done.reset();
  store().put_run(r);
  std::optional<RunInfo> got = store().get_run("steps");
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->steps_total);
  EXPECT_FALSE(got->steps_done);
}

// ---- runs: list_runs

TEST_P(StorageContract, ListRunsOnAnEmptyStoreIsEmpty) {
  EXPECT_TRUE(store().list_runs({}).empty());
  EXPECT_TRUE(store().list_runs(with_limit(3)).empty());
  for (RunStatus s : {RunStatus::running, RunStatus::completed, RunStatus::failed}) {
    EXPECT_TRUE(store().list_runs(with_status(s)).empty()) << flux::to_string(s);
    EXPECT_TRUE(store().list_runs(with_status(s, 1)).empty()) << flux::to_string(s);
  }
}

TEST_P(StorageContract, ListRunsIsNewestFirstByCreatedTimeNotByInsertionOrder) {
  // Inserted out of creation order.
  const std::vector<RunInfo> runs = {
      make_run("c3", kBase + 3 * kSecond), make_run("c1", kBase + 1 * kSecond),
      make_run("c5", kBase + 5 * kSecond), make_run("c2", kBase + 2 * kSecond),
      make_run("c4", kBase + 4 * kSecond)};
  for (const auto& r : runs) store().put_run(r);

  std::vector<RunInfo> listed = store().list_runs({});
  EXPECT_EQ(ids(listed), (std::vector<std::string>{"c5", "c4", "c3", "c2", "c1"}));
  // Full metadata, not just ids.
  for (const RunInfo& got : listed) {
    auto want = std::find_if(runs.begin(), runs.end(), [&](auto& r) { return r.id == got.id; });
    ASSERT_NE(want, runs.end());
    EXPECT_EQ(got, *want);
  }
  // A limit keeps the newest by creation time.
  EXPECT_EQ(ids(store().list_runs(with_limit(2))), (std::vector<std::string>{"c5", "c4"}));

  // A run created earlier than all others but written last goes last.
  store().put_run(make_run("c0", kBase));
  EXPECT_EQ(ids(store().list_runs({})),
            (std::vector<std::string>{"c5", "c4", "c3", "c2", "c1", "c0"}));
}

TEST_P(StorageContract, ListRunsFiltersByStatus) {
  // Inserted in creation order: this test is about the filter, not the ordering.
  store().put_run(make_run("r1", kBase + 1 * kSecond, RunStatus::running));
  store().put_run(make_run("c2", kBase + 2 * kSecond, RunStatus::completed));
  store().put_run(make_run("f3", kBase + 3 * kSecond, RunStatus::failed));
  store().put_run(make_run("r4", kBase + 4 * kSecond, RunStatus::running));
  store().put_run(make_run("c5", kBase + 5 * kSecond, RunStatus::completed));
  store().put_run(make_run("r6", kBase + 6 * kSecond, RunStatus::running));

  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::running))),
            (std::vector<std::string>{"r6", "r4", "r1"}));
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::completed))),
            (std::vector<std::string>{"c5", "c2"}));
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::failed))),
            (std::vector<std::string>{"f3"}));
  for (const RunInfo& r : store().list_runs(with_status(RunStatus::completed))) {
    EXPECT_EQ(r.status, RunStatus::completed) << r.id;
  }

  // r4 completes: it leaves "running" and joins "completed" at its creation-time place.
  RunInfo r4 = make_run("r4", kBase + 4 * kSecond, RunStatus::completed);
  store().put_run(r4);
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::running))),
            (std::vector<std::string>{"r6", "r1"}));
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::completed))),
            (std::vector<std::string>{"c5", "r4", "c2"}));
  // r1 fails.
  store().put_run(make_run("r1", kBase + 1 * kSecond, RunStatus::failed));
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::running))),
            (std::vector<std::string>{"r6"}));
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::failed))),
            (std::vector<std::string>{"f3", "r1"}));
  EXPECT_EQ(ids(store().list_runs({})),
            (std::vector<std::string>{"r6", "c5", "r4", "f3", "c2", "r1"}));
}

TEST_P(StorageContract, ListRunsLimit) {
  for (int i = 1; i <= 5; ++i) {
    store().put_run(make_run("l" + std::to_string(i), kBase + i * kSecond));
  }
  EXPECT_EQ(ids(store().list_runs(with_limit(1))), std::vector<std::string>{"l5"});
  EXPECT_EQ(ids(store().list_runs(with_limit(3))), (std::vector<std::string>{"l5", "l4", "l3"}));
  EXPECT_EQ(ids(store().list_runs(with_limit(5))),
            (std::vector<std::string>{"l5", "l4", "l3", "l2", "l1"}));
  EXPECT_EQ(ids(store().list_runs(with_limit(100))),
            (std::vector<std::string>{"l5", "l4", "l3", "l2", "l1"}));
  EXPECT_EQ(ids(store().list_runs(with_limit(0))),
            (std::vector<std::string>{"l5", "l4", "l3", "l2", "l1"}));
}

TEST_P(StorageContract, ListRunsStatusAndLimitTogether) {
  store().put_run(make_run("r1", kBase + 1 * kSecond, RunStatus::running));
  store().put_run(make_run("c2", kBase + 2 * kSecond, RunStatus::completed));
  store().put_run(make_run("r3", kBase + 3 * kSecond, RunStatus::running));
  store().put_run(make_run("c4", kBase + 4 * kSecond, RunStatus::completed));
  store().put_run(make_run("r5", kBase + 5 * kSecond, RunStatus::running));
  store().put_run(make_run("c6", kBase + 6 * kSecond, RunStatus::completed));
  store().put_run(make_run("f7", kBase + 7 * kSecond, RunStatus::failed));

  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::running, 2))),
            (std::vector<std::string>{"r5", "r3"}));
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::completed, 1))),
            std::vector<std::string>{"c6"});
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::completed, 3))),
            (std::vector<std::string>{"c6", "c4", "c2"}));
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::completed, 10))),
            (std::vector<std::string>{"c6", "c4", "c2"}));
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::failed, 2))),
            std::vector<std::string>{"f7"});
}

// ---- runs: paging

RunFilter page_of(std::size_t limit, std::string cursor, std::optional<RunStatus> s = {}) {
  RunFilter f;
  f.status = s;
  f.limit = limit;
  f.cursor = std::move(cursor);
  return f;
}

/// Every run `filter` selects, read page by page; also checks each page's size.
std::vector<std::string> read_in_pages(flux::Storage& store, std::size_t limit,
                                       std::optional<RunStatus> status = {}) {
  std::vector<std::string> out;
  std::string cursor;
  for (int pages = 0; pages < 1000; ++pages) {
    flux::RunPage page = store.list_runs_page(page_of(limit, cursor, status));
    EXPECT_LE(page.runs.size(), limit);
    EXPECT_TRUE(page.corrupt_keys.empty());
    for (const RunInfo& r : page.runs) out.push_back(r.id);
    if (page.next_cursor.empty()) return out;
    cursor = page.next_cursor;
  }
  ADD_FAILURE() << "paging never ended";
  return out;
}

TEST_P(StorageContract, ListRunsPagesWithACursorAndEachRunAppearsOnce) {
  // Ten runs, three of them created in the same nanosecond, inserted out of order.
  for (int i : {4, 9, 0, 7, 2, 5, 8, 1, 3, 6}) {
    const std::int64_t created = kBase + (i < 3 ? 0 : i) * kSecond;
    store().put_run(make_run("p" + std::to_string(i), created,
                             i % 3 == 0 ? RunStatus::completed : RunStatus::running));
  }
  const std::vector<std::string> all = ids(store().list_runs({}));
  ASSERT_EQ(all.size(), 10u);
  for (std::size_t limit : {1u, 3u, 4u, 10u, 11u}) {
    EXPECT_EQ(read_in_pages(store(), limit), all) << "pages of " << limit;
  }
  EXPECT_EQ(read_in_pages(store(), 2, RunStatus::completed),
            ids(store().list_runs(with_status(RunStatus::completed))));
  EXPECT_EQ(read_in_pages(store(), 2, RunStatus::running),
            ids(store().list_runs(with_status(RunStatus::running))));

  // The last page has no cursor; a full page has one.
  flux::RunPage first = store().list_runs_page(with_limit(4));
  EXPECT_EQ(ids(first.runs), std::vector<std::string>(all.begin(), all.begin() + 4));
  ASSERT_FALSE(first.next_cursor.empty());
  EXPECT_TRUE(store().list_runs_page({}).next_cursor.empty());

  // A run created after the first page was read does not shift the next pages.
  store().put_run(make_run("newest", kBase + 100 * kSecond));
  flux::RunPage second = store().list_runs_page(page_of(4, first.next_cursor));
  EXPECT_EQ(ids(second.runs), std::vector<std::string>(all.begin() + 4, all.begin() + 8));
  EXPECT_EQ(store().list_runs(with_limit(1))[0].id, "newest");
  // list_runs takes a cursor too.
  EXPECT_EQ(ids(store().list_runs(page_of(4, first.next_cursor))), ids(second.runs));

  // A cursor the store never gave is refused, not guessed at.
  for (const char* bad : {"garbage", ":", "12"}) {
    try {
      (void)store().list_runs_page(page_of(4, bad));
      ADD_FAILURE() << "accepted cursor " << bad;
    } catch (const flux::Error& e) {
      EXPECT_EQ(e.code(), flux::Errc::invalid_argument) << e.what();
    }
  }
}

// ---- retention

TEST_P(StorageContract, RetentionKeepsTheNewestFinishedRunsAndEveryRunningOne) {
  reopen(flux::Retention{.max_runs = 3});
  store().put_run(make_run("running-old", kBase));
  store().put_run(make_run("running-new", kBase + 100 * kSecond));
  for (int i = 1; i <= 6; ++i) {  // created and finished in this order
    const std::string id = "done" + std::to_string(i);
    store().apply(std::vector<Write>{put_run(make_run(id, kBase + i * kSecond)),
                                     append(id, make_entry(0)),
                                     put_key(id, Scope::kv, "k", std::int64_t{i})});
    store().put_run(
        make_run(id, kBase + i * kSecond, i % 2 ? RunStatus::completed : RunStatus::failed));
  }
  EXPECT_EQ(ids(store().list_runs({})),
            (std::vector<std::string>{"running-new", "done6", "done5", "done4", "running-old"}));
  // A removed run is gone entirely: record, history and kv.
  EXPECT_EQ(store().get_run("done1"), std::nullopt);
  EXPECT_TRUE(store().history("done1", 0).empty());
  EXPECT_TRUE(store().keys("done1", Scope::kv).empty());
  EXPECT_EQ(store().keys("done6", Scope::kv), (Value::Map{{"k", std::int64_t{6}}}));
  EXPECT_EQ(store().history("done6", 0).size(), 1u);
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::completed))),
            (std::vector<std::string>{"done5"}));
}

// ---- history

TEST_P(StorageContract, HistoryRoundTripsEveryFieldInAppendOrder) {
  std::vector<HistoryEntry> entries;
  HistoryEntry e0;  // a node with rich input/output
  e0.seq = 0;
  e0.type = HistoryEntry::Type::node;
  e0.node = "inc \xE2\x9C\x93";
  e0.step = "0";
  e0.attempt = 1;
  e0.start = at(kBase);
  e0.end = at(kBase + 1'234'567'891);
  e0.duration = 1'234'567'001ns;
  e0.input = rich_value();
  e0.output = Value::List{rich_value(), bytes({0x00, 0x00})};
  entries.push_back(e0);

  HistoryEntry e1;  // a failed retry: null output, an error with newlines and unicode
  e1.seq = 1;
  e1.type = HistoryEntry::Type::node;
  e1.node = "flaky";
  e1.step = "1.0.3";
  e1.attempt = 4'000'000'000u;
  e1.start = at(kBase + kSecond + 3);
  e1.end = at(kBase + kSecond + 5);
  e1.duration = 1ns;
  e1.input = std::int64_t{-1};
  e1.output = Value();
  e1.error = "node \"flaky\" failed:\nline 2 \xE2\x9C\x97";
  entries.push_back(e1);

  HistoryEntry e2;  // a parallel as a whole
  e2.seq = 2;
  e2.type = HistoryEntry::Type::parallel;
  e2.node = "parallel";
  e2.step = "1";
  e2.attempt = 2;
  e2.start = at(-5);  // before the epoch
  e2.end = at(std::numeric_limits<std::int64_t>::max());
  e2.duration = std::chrono::nanoseconds(std::numeric_limits<std::int64_t>::max());
  e2.input = Value::List{1, 2};
  e2.output = Value::List{Value::List{2}, Value::List{4}};
  entries.push_back(e2);

  HistoryEntry e3;  // failed with an empty message: still a failure, distinct from success
  e3.seq = 3;
  e3.node = "";
  e3.step = "";
  e3.error = "";
  entries.push_back(e3);

  for (const auto& e : entries) store().append_history("h", e);

  std::vector<HistoryEntry> got = store().history("h", 0);
  ASSERT_EQ(got.size(), entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    SCOPED_TRACE("entry " + std::to_string(i));
    EXPECT_EQ(got[i].seq, entries[i].seq);
    EXPECT_EQ(got[i].type, entries[i].type);
    EXPECT_EQ(got[i].node, entries[i].node);
    EXPECT_EQ(got[i].step, entries[i].step);
    EXPECT_EQ(got[i].attempt, entries[i].attempt);
    EXPECT_EQ(got[i].start.time_since_epoch().count(), entries[i].start.time_since_epoch().count());
    EXPECT_EQ(got[i].end.time_since_epoch().count(), entries[i].end.time_since_epoch().count());
    EXPECT_EQ(got[i].duration.count(), entries[i].duration.count());
    EXPECT_EQ(got[i].input, entries[i].input);
    EXPECT_EQ(got[i].output, entries[i].output);
    EXPECT_EQ(got[i].error, entries[i].error);
    EXPECT_EQ(got[i], entries[i]);
  }
  EXPECT_TRUE(got[0].ok());
  EXPECT_FALSE(got[1].ok());
  EXPECT_FALSE(got[3].ok());
  ASSERT_TRUE(got[3].error.has_value());
  EXPECT_EQ(*got[3].error, "");
}

TEST_P(StorageContract, HistoryRoundTripsTheResumeEntryType) {
  HistoryEntry resume;
  resume.seq = 0;
  resume.type = HistoryEntry::Type::resume;
  resume.node = "resume";
  resume.step = "";
  resume.start = at(kBase);
  resume.end = at(kBase);
  resume.output = Value::Map{{"from", "failed"}, {"reused", std::int64_t{3}}};
  store().append_history("resumed", resume);
  std::vector<HistoryEntry> got = store().history("resumed", 0);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, HistoryEntry::Type::resume);
  EXPECT_EQ(got[0], resume);
}

TEST_P(StorageContract, HistoryFromReturnsTheTailAndFollowsAppends) {
  const std::vector<HistoryEntry> all = make_entries(0, 7);
  for (std::size_t i = 0; i < 5; ++i) store().append_history("t", all[i]);

  for (std::size_t from = 0; from <= 5; ++from) {
    SCOPED_TRACE("from " + std::to_string(from));
    std::vector<HistoryEntry> tail = store().history("t", from);
    EXPECT_EQ(tail, std::vector<HistoryEntry>(all.begin() + static_cast<std::ptrdiff_t>(from),
                                              all.begin() + 5));
  }
  EXPECT_TRUE(store().history("t", 6).empty());
  EXPECT_TRUE(store().history("t", 1000).empty());

  // Live tailing: a reader that has seen 5 entries asks for what follows.
  EXPECT_TRUE(store().history("t", 5).empty());
  store().append_history("t", all[5]);
  EXPECT_EQ(store().history("t", 5), std::vector<HistoryEntry>{all[5]});
  store().append_history("t", all[6]);
  EXPECT_EQ(store().history("t", 6), std::vector<HistoryEntry>{all[6]});
  EXPECT_EQ(store().history("t", 5), (std::vector<HistoryEntry>{all[5], all[6]}));
  EXPECT_EQ(store().history("t", 0), all);
}

TEST_P(StorageContract, HistoryOfAnUnknownRunIsEmptyAndRunsAreSeparate) {
  EXPECT_TRUE(store().history("ghost", 0).empty());
  EXPECT_TRUE(store().history("ghost", 3).empty());

  const std::vector<HistoryEntry> a = make_entries(0, 3);
  std::vector<HistoryEntry> b = make_entries(0, 2);
  for (auto& e : b) e.node = "b-" + e.node;
  store().append_history("a", a[0]);
  store().append_history("b", b[0]);
  store().append_history("a", a[1]);
  store().append_history("b", b[1]);
  store().append_history("a", a[2]);
  EXPECT_EQ(store().history("a", 0), a);
  EXPECT_EQ(store().history("b", 0), b);
  EXPECT_TRUE(store().history("ghost", 0).empty());
}

// ---- kv and shared state

TEST_P(StorageContract, KvAndSharedRoundTripAndAreIndependent) {
  store().put_run(make_run("k", kBase));
  store().put_key("k", Scope::kv, "x", std::int64_t{1});
  store().put_key("k", Scope::shared, "x", "shared-x");
  store().put_key("k", Scope::kv, "rich", rich_value());
  store().put_key("k", Scope::shared, "only-shared", Value::List{true, nullptr});

  EXPECT_EQ(store().get_key("k", Scope::kv, "x"), Value(std::int64_t{1}));
  EXPECT_EQ(store().get_key("k", Scope::shared, "x"), Value("shared-x"));
  EXPECT_EQ(store().get_key("k", Scope::kv, "rich"), rich_value());
  EXPECT_EQ(store().get_key("k", Scope::shared, "rich"), std::nullopt);
  EXPECT_EQ(store().get_key("k", Scope::kv, "only-shared"), std::nullopt);
  EXPECT_EQ(store().keys("k", Scope::kv),
            (Value::Map{{"x", std::int64_t{1}}, {"rich", rich_value()}}));
  EXPECT_EQ(store().keys("k", Scope::shared),
            (Value::Map{{"x", "shared-x"}, {"only-shared", Value::List{true, nullptr}}}));

  // Erasing in one scope leaves the other alone.
  store().erase_key("k", Scope::kv, "x");
  EXPECT_EQ(store().get_key("k", Scope::kv, "x"), std::nullopt);
  EXPECT_EQ(store().get_key("k", Scope::shared, "x"), Value("shared-x"));
  EXPECT_EQ(store().keys("k", Scope::kv), (Value::Map{{"rich", rich_value()}}));
  store().erase_key("k", Scope::shared, "x");
  store().erase_key("k", Scope::shared, "only-shared");
  EXPECT_TRUE(store().keys("k", Scope::shared).empty());
  EXPECT_EQ(store().keys("k", Scope::kv), (Value::Map{{"rich", rich_value()}}));

  // Other runs do not see these keys.
  store().put_key("other", Scope::kv, "rich", "other's");
  EXPECT_EQ(store().get_key("k", Scope::kv, "rich"), rich_value());
  EXPECT_EQ(store().keys("other", Scope::kv), (Value::Map{{"rich", "other's"}}));
  EXPECT_TRUE(store().keys("other", Scope::shared).empty());
}

TEST_P(StorageContract, PutKeyOverwrites) {
  store().put_key("o", Scope::kv, "k", std::int64_t{1});
  store().put_key("o", Scope::kv, "k", "two");
  EXPECT_EQ(store().get_key("o", Scope::kv, "k"), Value("two"));
  store().put_key("o", Scope::kv, "k", Value::Map{{"three", 3.0}});
  EXPECT_EQ(store().get_key("o", Scope::kv, "k"), Value(Value::Map{{"three", 3.0}}));
  store().put_key("o", Scope::kv, "k", Value());
  // A stored null is a value, not an absence.
  EXPECT_EQ(store().get_key("o", Scope::kv, "k"), Value());
  EXPECT_EQ(store().keys("o", Scope::kv), (Value::Map{{"k", Value()}}));

  store().put_key("o", Scope::shared, "k", bytes({0x00}));
  store().put_key("o", Scope::shared, "k", bytes({0x00, 0x00}));
  EXPECT_EQ(store().keys("o", Scope::shared), (Value::Map{{"k", bytes({0x00, 0x00})}}));
}

TEST_P(StorageContract, EraseOfAMissingKeyIsFine) {
  store().put_run(make_run("e", kBase));
  store().put_key("e", Scope::kv, "keep", std::int64_t{1});
  EXPECT_NO_THROW(store().erase_key("e", Scope::kv, "missing"));
  EXPECT_NO_THROW(store().erase_key("e", Scope::shared, "missing"));
  EXPECT_NO_THROW(store().erase_key("unknown-run", Scope::kv, "missing"));
  EXPECT_NO_THROW(store().erase_key("unknown-run", Scope::shared, "missing"));
  // Erasing twice is fine too.
  store().erase_key("e", Scope::kv, "keep");
  EXPECT_NO_THROW(store().erase_key("e", Scope::kv, "keep"));
  EXPECT_TRUE(store().keys("e", Scope::kv).empty());
  EXPECT_TRUE(store().keys("unknown-run", Scope::kv).empty());
}

TEST_P(StorageContract, KvOfAnUnknownRunIsEmpty) {
  EXPECT_TRUE(store().keys("nobody", Scope::kv).empty());
  EXPECT_TRUE(store().keys("nobody", Scope::shared).empty());
  EXPECT_EQ(store().get_key("nobody", Scope::kv, "x"), std::nullopt);
  EXPECT_EQ(store().get_key("nobody", Scope::shared, "x"), std::nullopt);
  store().put_key("somebody", Scope::kv, "x", std::int64_t{1});
  EXPECT_TRUE(store().keys("nobody", Scope::kv).empty());
  EXPECT_EQ(store().get_key("nobody", Scope::kv, "x"), std::nullopt);
}

TEST_P(StorageContract, KeysMayHoldUnicodeAndArbitraryBytes) {
  const std::vector<std::string> names = {
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",  // 日本語
      "emoji \xF0\x9F\x9A\x80",
      std::string("nul\0inside", 10),
      std::string("\xff\xfe\x00\x01", 4),  // not UTF-8, with a NUL
      std::string(1, '\0'),
      "",
      "with space",
      "new\nline\r\n",
      "{brace}:colon*star?[glob]\\",
      "\"quoted\" 'single'",
      std::string(1000, 'k'),
  };
  Value::Map expected;
  for (std::size_t i = 0; i < names.size(); ++i) {
    Value v = Value::List{static_cast<std::int64_t>(i), names[i]};
    store().put_key("bin", Scope::kv, names[i], v);
    store().put_key("bin", Scope::shared, names[i], static_cast<std::int64_t>(i));
    expected.emplace(names[i], v);
  }
  ASSERT_EQ(expected.size(), names.size());  // all distinct
  for (std::size_t i = 0; i < names.size(); ++i) {
    SCOPED_TRACE("key #" + std::to_string(i));
    EXPECT_EQ(store().get_key("bin", Scope::kv, names[i]), expected.at(names[i]));
    EXPECT_EQ(store().get_key("bin", Scope::shared, names[i]), Value(static_cast<std::int64_t>(i)));
  }
  EXPECT_EQ(store().keys("bin", Scope::kv), expected);
  EXPECT_EQ(store().keys("bin", Scope::shared).size(), names.size());
  // A key that differs only after a NUL is a different key.
  EXPECT_EQ(store().get_key("bin", Scope::kv, "nul"), std::nullopt);
  EXPECT_EQ(store().get_key("bin", Scope::kv, std::string("nul\0insidE", 10)), std::nullopt);

  store().erase_key("bin", Scope::kv, std::string("\xff\xfe\x00\x01", 4));
  store().erase_key("bin", Scope::kv, std::string(1, '\0'));
  expected.erase(std::string("\xff\xfe\x00\x01", 4));
  expected.erase(std::string(1, '\0'));
  EXPECT_EQ(store().keys("bin", Scope::kv), expected);
  EXPECT_EQ(store().get_key("bin", Scope::kv, ""), expected.at(""));
}

TEST_P(StorageContract, KeyAndHistoryWritesDoNotCreateRunMetadata) {
  // Only put_run creates a run: kv, shared and history writes for an id without metadata
  // are kept, but the run is not listed and get_run does not invent metadata for it.
  store().put_key("ghost", Scope::kv, "k", std::int64_t{1});
  store().put_key("ghost", Scope::shared, "s", std::int64_t{2});
  store().append_history("ghost-h", make_entry(0));
  store().erase_key("ghost-e", Scope::kv, "missing");

  EXPECT_EQ(store().get_run("ghost"), std::nullopt);
  EXPECT_EQ(store().get_run("ghost-h"), std::nullopt);
  EXPECT_EQ(store().get_run("ghost-e"), std::nullopt);
  EXPECT_EQ(ids(store().list_runs({})), std::vector<std::string>{});
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::running))), std::vector<std::string>{});

  EXPECT_EQ(store().keys("ghost", Scope::kv), (Value::Map{{"k", std::int64_t{1}}}));
  EXPECT_EQ(store().keys("ghost", Scope::shared), (Value::Map{{"s", std::int64_t{2}}}));
  EXPECT_EQ(store().history("ghost-h", 0), std::vector<HistoryEntry>{make_entry(0)});
}

// ---- apply

TEST_P(StorageContract, ApplyRunsAMixedBatchInOrder) {
  const RunInfo run = make_run("batch", kBase, RunStatus::running);
  const std::vector<HistoryEntry> entries = make_entries(0, 3);
  const std::vector<Write> batch = {
      put_run(run),
      append("batch", entries[0]),
      append("batch", entries[1]),
      append("batch", entries[2]),
      put_key("batch", Scope::kv, "k", std::int64_t{1}),
      erase_key("batch", Scope::kv, "k"),
      put_key("batch", Scope::kv, "k", "second"),
  };
  store().apply(batch);

  EXPECT_EQ(store().get_run("batch"), run);
  EXPECT_EQ(store().history("batch", 0), entries);
  EXPECT_EQ(store().keys("batch", Scope::kv), (Value::Map{{"k", "second"}}));
  EXPECT_TRUE(store().keys("batch", Scope::shared).empty());

  // A put followed by an erase of the same key leaves nothing; later metadata wins.
  RunInfo done = make_run("batch", kBase, RunStatus::completed);
  const std::vector<Write> second = {
      put_key("batch", Scope::shared, "s", std::int64_t{1}),
      erase_key("batch", Scope::shared, "s"),
      put_key("batch", Scope::kv, "k2", std::int64_t{2}),
      erase_key("batch", Scope::kv, "k"),
      put_run(run),
      append("batch", make_entry(3)),
      put_run(done),
  };
  store().apply(second);
  EXPECT_EQ(store().get_run("batch"), done);
  EXPECT_EQ(store().history("batch", 0), make_entries(0, 4));
  EXPECT_EQ(store().keys("batch", Scope::kv), (Value::Map{{"k2", std::int64_t{2}}}));
  EXPECT_TRUE(store().keys("batch", Scope::shared).empty());
  EXPECT_EQ(ids(store().list_runs(with_status(RunStatus::completed))),
            std::vector<std::string>{"batch"});
  EXPECT_TRUE(store().list_runs(with_status(RunStatus::running)).empty());
}

TEST_P(StorageContract, ApplyKeepsHistoryOfInterleavedRunsApart) {
  std::vector<HistoryEntry> b = make_entries(0, 3);
  for (auto& e : b) e.node = "b-" + e.node;
  const std::vector<HistoryEntry> a = make_entries(0, 3);
  const std::vector<Write> batch = {
      append("a", a[0]), append("a", a[1]), append("b", b[0]),
      append("a", a[2]), append("b", b[1]), append("b", b[2]),
  };
  store().apply(batch);
  EXPECT_EQ(store().history("a", 0), a);
  EXPECT_EQ(store().history("b", 0), b);
}

TEST_P(StorageContract, ApplyingTheSameHistoryBatchTwiceDoesNotDuplicateIt) {
  store().put_run(make_run("idem", kBase));
  const std::vector<HistoryEntry> entries = make_entries(0, 3);
  const std::vector<Write> batch = {append("idem", entries[0]), append("idem", entries[1]),
                                    append("idem", entries[2])};
  store().apply(batch);
  store().apply(batch);  // e.g. resent after a lost connection
  std::vector<HistoryEntry> got = store().history("idem", 0);
  EXPECT_EQ(got.size(), 3u);
  EXPECT_EQ(got, entries);

  // A resent batch that overlaps what is stored and goes further adds only the new part.
  const std::vector<HistoryEntry> more = make_entries(0, 5);
  const std::vector<Write> overlapping = {append("idem", more[1]), append("idem", more[2]),
                                          append("idem", more[3]), append("idem", more[4])};
  store().apply(overlapping);
  got = store().history("idem", 0);
  EXPECT_EQ(got.size(), 5u);
  EXPECT_EQ(got, more);
}

TEST_P(StorageContract, AppendHistoryOfAStoredSeqIsNotDuplicated) {
  const std::vector<HistoryEntry> entries = make_entries(0, 2);
  store().append_history("idem1", entries[0]);
  store().append_history("idem1", entries[1]);
  store().append_history("idem1", entries[1]);
  store().append_history("idem1", entries[0]);
  std::vector<HistoryEntry> got = store().history("idem1", 0);
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(got, entries);
}

INSTANTIATE_TEST_SUITE_P(Backends, StorageContract,
                         ::testing::Values(Backend{"memory", &open_memory},
                                           Backend{"redis", &open_redis}),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return std::string(info.param.name);
                         });

// ---------------------------------------------------------------- Redis only

bool contains_text(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

/// Every key under `prefix` ("<prefix>:..."), sorted. The prefix has no glob characters.
std::vector<std::string> keys_under(const std::string& prefix) {
  std::vector<std::string> out = lines(redis().cli("--scan --pattern '" + prefix + ":*'"));
  std::sort(out.begin(), out.end());
  return out;
}

std::string redis_type(const std::string& key) {
  std::vector<std::string> l = lines(redis().cli("TYPE '" + key + "'"));
  return l.empty() ? "" : l[0];
}

TEST(RedisStorageLayout, KeysCarryTheRunIdInAHashTag) {
  const std::string p = unique_prefix();
  flux::Runtime rt(redis_config(p));
  flux::Storage& s = rt.storage();

  RunInfo r = make_run("run-1", kBase);
  s.put_run(r);
  s.append_history("run-1", make_entry(0));
  s.append_history("run-1", make_entry(1));
  s.put_key("run-1", Scope::kv, "k", std::int64_t{1});
  s.put_key("run-1", Scope::shared, "s", std::int64_t{2});
  s.put_run(make_run("run-2", kBase + kSecond, RunStatus::failed));
  s.put_key("run-2", Scope::kv, "k", std::int64_t{3});

  std::vector<std::string> expected = {
      p + ":runs",        p + ":runs:failed", p + ":runs:running",   p + ":{run-1}:history",
      p + ":{run-1}:kv",  p + ":{run-1}:run", p + ":{run-1}:shared", p + ":{run-2}:kv",
      p + ":{run-2}:run",
  };
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(keys_under(p), expected);

  EXPECT_EQ(redis_type(p + ":{run-1}:run"), "string");
  EXPECT_EQ(redis_type(p + ":{run-1}:history"), "list");
  EXPECT_EQ(redis_type(p + ":{run-1}:kv"), "hash");
  EXPECT_EQ(redis_type(p + ":{run-1}:shared"), "hash");
  EXPECT_EQ(redis_type(p + ":runs"), "zset");
  EXPECT_EQ(redis_type(p + ":runs:running"), "zset");
  EXPECT_EQ(redis_type(p + ":runs:failed"), "zset");

  EXPECT_EQ(lines(redis().cli("LLEN '" + p + ":{run-1}:history'")), std::vector<std::string>{"2"});
  EXPECT_EQ(lines(redis().cli("HLEN '" + p + ":{run-1}:kv'")), std::vector<std::string>{"1"});
  // The runs index is scored by creation time in microseconds.
  EXPECT_EQ(lines(redis().cli("ZSCORE '" + p + ":runs' run-1")),
            std::vector<std::string>{std::to_string(kBase / 1000)});
  EXPECT_EQ(lines(redis().cli("ZREVRANGE '" + p + ":runs' 0 -1")),
            (std::vector<std::string>{"run-2", "run-1"}));
  EXPECT_EQ(lines(redis().cli("ZRANGE '" + p + ":runs:running' 0 -1")),
            std::vector<std::string>{"run-1"});

  // Completing run-1 moves it between the status indexes; the empty index disappears.
  s.put_run(make_run("run-1", kBase, RunStatus::completed));
  expected.erase(std::find(expected.begin(), expected.end(), p + ":runs:running"));
  expected.push_back(p + ":runs:completed");
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(keys_under(p), expected);
  EXPECT_EQ(lines(redis().cli("ZRANGE '" + p + ":runs:completed' 0 -1")),
            std::vector<std::string>{"run-1"});
}

TEST(RedisStorageLayout, AResumeRequestIsARecordWithATtlAndThePendingOnesASetUnderThePrefix) {
  const std::string p = unique_prefix();
  flux::Runtime rt(redis_config(p));
  flux::Storage& s = rt.storage();
  s.put_run(make_run("run-1", kBase, RunStatus::failed));
  flux::ResumeRequest request{flux::ResumeRequest::Verb::retry, "me", at(kBase), std::nullopt};
  s.request_resume("run-1", request);
  EXPECT_EQ(redis_type(p + ":{run-1}:resume"), "string");
  EXPECT_EQ(redis_type(p + ":resume_requests"), "set");
  EXPECT_EQ(lines(redis().cli("SMEMBERS '" + p + ":resume_requests'")),
            std::vector<std::string>{"run-1"});
  const long ttl = std::stol(lines(redis().cli("PTTL '" + p + ":{run-1}:resume'")).at(0));
  EXPECT_GT(ttl, 6L * 24 * 3600 * 1000);  // kept a week
  EXPECT_LE(ttl, 7L * 24 * 3600 * 1000);
  // Refused: out of the pending set, still readable.
  request.refusal = "no";
  s.request_resume("run-1", request);
  EXPECT_EQ(redis_type(p + ":resume_requests"), "none");
  const std::string ids[] = {"run-1"};
  EXPECT_EQ(s.resume_requests(ids).at(0), request);
  s.clear_resume_request("run-1");
  EXPECT_EQ(redis_type(p + ":{run-1}:resume"), "none");
  // A request that cannot be decoded is an error naming its key.
  redis().cli("SET '" + p + ":{run-1}:resume' garbage");
  try {
    (void)s.resume_requests(ids);
    ADD_FAILURE() << "a corrupt request was read";
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::storage);
    EXPECT_NE(std::string(e.what()).find(p + ":{run-1}:resume"), std::string::npos) << e.what();
  }
}

TEST(RedisStorageLayout, DifferentKeyPrefixesDoNotSeeEachOthersRuns) {
  const std::string pa = unique_prefix() + "-a";
  const std::string pb = unique_prefix() + "-b";
  flux::Runtime a(redis_config(pa));
  flux::Runtime b(redis_config(pb));

  RunInfo ra = make_run("same-id", kBase, RunStatus::completed);
  ra.pipeline = "pipeline-a";
  RunInfo rb = make_run("same-id", kBase + kSecond, RunStatus::running);
  rb.pipeline = "pipeline-b";
  a.storage().put_run(ra);
  a.storage().put_run(make_run("only-a", kBase + 2 * kSecond));
  b.storage().put_run(rb);
  a.storage().append_history("same-id", make_entry(0));
  a.storage().put_key("same-id", Scope::kv, "k", "a");
  a.storage().put_key("same-id", Scope::shared, "s", "a");
  b.storage().put_key("same-id", Scope::kv, "k", "b");

  EXPECT_EQ(ids(a.storage().list_runs({})), (std::vector<std::string>{"only-a", "same-id"}));
  EXPECT_EQ(ids(b.storage().list_runs({})), std::vector<std::string>{"same-id"});
  EXPECT_EQ(a.storage().get_run("same-id"), ra);
  EXPECT_EQ(b.storage().get_run("same-id"), rb);
  EXPECT_EQ(b.storage().get_run("only-a"), std::nullopt);
  EXPECT_TRUE(b.storage().list_runs(with_status(RunStatus::completed)).empty());
  EXPECT_EQ(a.storage().history("same-id", 0), std::vector<HistoryEntry>{make_entry(0)});
  EXPECT_TRUE(b.storage().history("same-id", 0).empty());
  EXPECT_EQ(a.storage().keys("same-id", Scope::kv), (Value::Map{{"k", "a"}}));
  EXPECT_EQ(b.storage().keys("same-id", Scope::kv), (Value::Map{{"k", "b"}}));
  EXPECT_TRUE(b.storage().keys("same-id", Scope::shared).empty());

  // And the runtimes' own views agree.
  EXPECT_EQ(ids(a.list_runs()), (std::vector<std::string>{"only-a", "same-id"}));
  EXPECT_EQ(ids(b.list_runs()), std::vector<std::string>{"same-id"});
}

TEST(RedisStorageLayout, ASecondRuntimeOnTheSamePrefixSeesTheSameData) {
  const std::string p = unique_prefix();
  flux::Runtime first(redis_config(p));
  flux::Storage& w = first.storage();

  RunInfo done = make_run("done", kBase + 1 * kSecond, RunStatus::completed);
  done.input = rich_value();
  done.output = Value::List{rich_value(), bytes({0x00, 0xff})};
  const RunInfo failed = make_run("failed", kBase + 2 * kSecond, RunStatus::failed);
  const RunInfo running = make_run("running", kBase + 3 * kSecond, RunStatus::running);
  std::vector<HistoryEntry> history = make_entries(0, 4);
  history[1].input = rich_value();
  history[3].error = "boom \xE2\x9C\x97";
  history[3].output = Value();

  std::vector<Write> batch = {put_run(done), put_run(failed), put_run(running)};
  for (const auto& e : history) batch.push_back(append("done", e));
  batch.push_back(put_key("done", Scope::kv, "rich", rich_value()));
  batch.push_back(put_key("done", Scope::kv, std::string("b\0in", 4), bytes({0x00})));
  batch.push_back(put_key("done", Scope::shared, "counter", std::int64_t{3}));
  w.apply(batch);

  flux::Runtime second(redis_config(p));
  flux::Storage& r = second.storage();
  ASSERT_NE(&r, &w);

  EXPECT_EQ(r.get_run("done"), done);
  EXPECT_EQ(r.get_run("failed"), failed);
  EXPECT_EQ(r.get_run("running"), running);
  EXPECT_EQ(r.get_run("done"), w.get_run("done"));
  EXPECT_EQ(ids(r.list_runs({})), (std::vector<std::string>{"running", "failed", "done"}));
  EXPECT_EQ(r.list_runs({}), w.list_runs({}));
  EXPECT_EQ(r.list_runs(with_status(RunStatus::failed)), std::vector<RunInfo>{failed});
  EXPECT_EQ(r.history("done", 0), history);
  EXPECT_EQ(r.history("done", 0), w.history("done", 0));
  EXPECT_EQ(r.history("done", 2), (std::vector<HistoryEntry>{history.begin() + 2, history.end()}));
  const Value::Map kv = {{"rich", rich_value()}, {std::string("b\0in", 4), bytes({0x00})}};
  EXPECT_EQ(r.keys("done", Scope::kv), kv);
  EXPECT_EQ(r.keys("done", Scope::kv), w.keys("done", Scope::kv));
  EXPECT_EQ(r.get_key("done", Scope::kv, std::string("b\0in", 4)), Value(bytes({0x00})));
  EXPECT_EQ(r.keys("done", Scope::shared), (Value::Map{{"counter", std::int64_t{3}}}));

  // The Runtime-level view (get_run with history) agrees as well.
  std::optional<RunInfo> with_history = second.get_run("done");
  ASSERT_TRUE(with_history.has_value());
  EXPECT_EQ(with_history->history, history);

  // Writes by the first are visible to the second as they happen (live tailing, kv updates),
  // and a resend from the second connection does not duplicate history.
  w.append_history("done", make_entry(4));
  EXPECT_EQ(r.history("done", 4), std::vector<HistoryEntry>{make_entry(4)});
  r.apply(std::vector<Write>{append("done", make_entry(4))});
  EXPECT_EQ(w.history("done", 0).size(), 5u);
  w.put_key("done", Scope::shared, "counter", std::int64_t{4});
  EXPECT_EQ(r.get_key("done", Scope::shared, "counter"), Value(std::int64_t{4}));
  RunInfo running_done = make_run("running", kBase + 3 * kSecond, RunStatus::completed);
  w.put_run(running_done);
  EXPECT_EQ(r.get_run("running"), running_done);
  EXPECT_EQ(ids(r.list_runs(with_status(RunStatus::completed))),
            (std::vector<std::string>{"running", "done"}));
  EXPECT_TRUE(r.list_runs(with_status(RunStatus::running)).empty());
}

// ---------------------------------------------------------------- retention defaults

TEST(MemoryStorageRetention, AMemoryStoreIsBoundedByDefault) {
  flux::Runtime rt(flux::Config{.store = "memory"});
  const flux::Pipeline one =
      flux::Pipeline(flux::node("inc", [](std::int64_t x) { return x + 1; })).named("one");
  std::string first_id;
  const std::size_t kept = flux::MemoryStorage::k_default_retention.max_runs;
  for (std::size_t i = 0; i < kept + 5; ++i) {
    auto r = rt.run(one, std::int64_t{1});
    ASSERT_TRUE(r.ok());
    if (i == 0) first_id = r.run_id;
  }
  EXPECT_EQ(rt.list_runs().size(), kept);
  EXPECT_EQ(rt.get_run(first_id), std::nullopt);
}

// ---------------------------------------------------------------- Redis: indexes and records

/// The ids in a sorted set, in score order.
std::vector<std::string> members(flux::test::RedisServer& server, const std::string& key) {
  return lines(server.cli("ZRANGE '" + key + "' 0 -1"));
}

TEST(RedisIndexes, NeverDisagreeWithTheRecordsWhenWritesFailUnderMaxmemory) {
  flux::test::RedisServer server;  // its own: this test fills it up
  const std::string p = "oom";
  flux::Runtime rt(flux::Config{.store = server.url(), .key_prefix = p, .threads = 1});
  flux::Storage& s = rt.storage();
  constexpr int kRuns = 60;
  for (int i = 0; i < kRuns; ++i) s.put_run(make_run("r" + std::to_string(i), kBase + i));

  // Memory capped a little above what is used now (noeviction, Redis's default): the runs
  // finish, and new ones start, with large values until Redis refuses writes.
  std::string info = server.cli("INFO memory");
  long long used = std::stoll(info.substr(info.find("used_memory:") + 12));
  server.cli("CONFIG SET maxmemory " + std::to_string(used + 256 * 1024));
  int refused = 0;
  for (int i = 0; i < kRuns; ++i) {
    RunInfo done = make_run("r" + std::to_string(i), kBase + i, RunStatus::completed);
    done.output = std::string(16 * 1024, 'x');
    RunInfo fresh = make_run("n" + std::to_string(i), kBase + kRuns + i);
    fresh.input = std::string(16 * 1024, 'y');
    for (const RunInfo& r : {done, fresh}) {
      try {
        s.put_run(r);
      } catch (const flux::Error& e) {
        EXPECT_TRUE(contains_text(e.what(), "OOM")) << e.what();
        ++refused;
      }
    }
  }
  ASSERT_GT(refused, 0) << "the test needs Redis to refuse some writes";
  server.cli("CONFIG SET maxmemory 0");

  // Whatever was refused, every index tells what the records say.
  std::size_t records = 0;
  std::vector<std::string> running_records;
  for (const std::string& id : members(server, p + ":runs")) {
    std::optional<RunInfo> r = s.get_run(id);
    ASSERT_TRUE(r.has_value()) << id << " is indexed but has no record";
    ++records;
    if (r->status == RunStatus::running) running_records.push_back(id);
  }
  EXPECT_EQ(lines(server.cli("--scan --pattern '" + p + ":{*}:run'")).size(), records)
      << "a record is missing from " << p << ":runs";
  for (RunStatus st : {RunStatus::running, RunStatus::completed, RunStatus::failed}) {
    for (const RunInfo& r : s.list_runs(with_status(st))) {
      EXPECT_EQ(r.status, st) << r.id << " listed as " << flux::to_string(st);
    }
    for (const std::string& id : members(server, p + ":runs:" + flux::to_string(st))) {
      EXPECT_EQ(s.get_run(id)->status, st) << id << " indexed as " << flux::to_string(st);
    }
  }
  // Every run stored as running is an orphan (none has a lease), and list_orphans finds it.
  std::vector<std::string> orphans = ids(rt.list_orphans());
  std::sort(orphans.begin(), orphans.end());
  std::sort(running_records.begin(), running_records.end());
  EXPECT_EQ(orphans, running_records);
}

TEST(RedisIndexes, EachRunIsInTheIndexOfItsLastStatusOnlyWhetherItsClaimIsFreshOrResent) {
  const std::string p = unique_prefix();
  flux::Runtime rt(redis_config(p));
  flux::Storage& s = rt.storage();
  const auto claim = [](const std::string& id) {
    Write w{Write::ClaimLease{id, "me", 10s}};
    w.fence = 1;
    return w;
  };
  const auto fenced = [](Write w) {
    w.fence = 1;
    return w;
  };
  // A short run's whole life in one batch: claimed, started, finished.
  s.apply(std::vector<Write>{claim("short"), fenced(put_run(make_run("short", kBase))),
                             fenced(append("short", make_entry(0))),
                             fenced(put_run(make_run("short", kBase, RunStatus::completed)))});
  // A batch applied twice (its reply was lost), then the run's end in a later batch.
  const std::vector<Write> first = {claim("resent"),
                                    fenced(put_run(make_run("resent", kBase + kSecond)))};
  s.apply(first);
  s.apply(first);
  s.apply(std::vector<Write>{fenced(put_run(make_run("resent", kBase + kSecond, RunStatus::failed)))});

  EXPECT_EQ(members(redis(), p + ":runs"), (std::vector<std::string>{"short", "resent"}));  // by score
  EXPECT_EQ(members(redis(), p + ":runs:running"), std::vector<std::string>{});
  EXPECT_EQ(members(redis(), p + ":runs:completed"), std::vector<std::string>{"short"});
  EXPECT_EQ(members(redis(), p + ":runs:failed"), std::vector<std::string>{"resent"});
  EXPECT_EQ(s.history("short", 0).size(), 1u);
}

TEST(RedisIndexes, ReadersDropEntriesWithoutARecordAndReindexAMovedRecord) {
  const std::string p = unique_prefix();
  flux::Runtime rt(redis_config(p));
  flux::Storage& s = rt.storage();
  s.put_run(make_run("gone", kBase + 1 * kSecond, RunStatus::completed));
  s.put_run(make_run("kept", kBase + 2 * kSecond, RunStatus::completed));
  s.put_run(make_run("moved", kBase + 3 * kSecond, RunStatus::failed));
  // As an eviction or a writer of an older version could leave them: a record deleted
  // behind the indexes' back, and a record indexed under another status.
  redis().cli("DEL '" + p + ":{gone}:run'");
  redis().cli("ZREM '" + p + ":runs:failed' moved");
  redis().cli("ZADD '" + p + ":runs:running' " + std::to_string((kBase + 3 * kSecond) / 1000) +
              " moved");

  EXPECT_EQ(ids(s.list_runs({})), (std::vector<std::string>{"moved", "kept"}));
  EXPECT_EQ(ids(s.list_runs(with_status(RunStatus::completed))), std::vector<std::string>{"kept"});
  EXPECT_TRUE(s.list_runs(with_status(RunStatus::running)).empty());
  // Repaired by those reads: the indexes now agree with the records.
  EXPECT_EQ(members(redis(), p + ":runs"), (std::vector<std::string>{"kept", "moved"}));
  EXPECT_EQ(members(redis(), p + ":runs:completed"), std::vector<std::string>{"kept"});
  EXPECT_EQ(members(redis(), p + ":runs:running"), std::vector<std::string>{});
  EXPECT_EQ(members(redis(), p + ":runs:failed"), std::vector<std::string>{"moved"});
  EXPECT_EQ(ids(s.list_runs(with_status(RunStatus::failed))), std::vector<std::string>{"moved"});
}

TEST(RedisRetention, AFinishedRunsKeysExpireTogetherAndItsIndexEntriesGoWithThem) {
  const std::string p = unique_prefix();
  flux::Runtime rt(redis_config(p, flux::Retention{.max_age = 1h}));
  flux::Storage& s = rt.storage();
  auto pttl = [&](const std::string& key) {
    return std::stoll(lines(redis().cli("PTTL '" + key + "'")).at(0));
  };
  const std::vector<std::string> suffixes = {"run", "history", "kv", "shared", "fence"};
  const std::vector<Write> writes = {Write{Write::ClaimLease{"r", "me", 10s}, 0},
                                     put_run(make_run("r", kBase)), append("r", make_entry(0)),
                                     put_key("r", Scope::kv, "k", std::int64_t{1}),
                                     put_key("r", Scope::shared, "s", std::int64_t{2})};
  s.apply(writes);
  for (const auto& suffix : suffixes) {  // running: kept for good
    EXPECT_EQ(pttl(p + ":{r}:" + suffix), -1) << suffix;
  }
  s.apply(std::vector<Write>{put_run(make_run("r", kBase, RunStatus::completed))});
  for (const auto& suffix : suffixes) {  // finished: every key expires within the hour
    EXPECT_GT(pttl(p + ":{r}:" + suffix), 0) << suffix;
    EXPECT_LE(pttl(p + ":{r}:" + suffix), 3'600'000) << suffix;
  }
  // Resumed (running again): kept for good again.
  s.apply(std::vector<Write>{put_run(make_run("r", kBase))});
  for (const auto& suffix : suffixes) EXPECT_EQ(pttl(p + ":{r}:" + suffix), -1) << suffix;

  // A run kept for 1 ms: once Redis has expired it, no index lists it any more.
  flux::Runtime brief(redis_config(p + "-brief", flux::Retention{.max_age = 1ms}));
  brief.storage().put_run(make_run("b", kBase, RunStatus::completed));
  while (lines(redis().cli("EXISTS '" + p + "-brief:{b}:run'")).at(0) != "0") {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_TRUE(brief.list_runs({}).empty());
  EXPECT_TRUE(brief.list_runs(with_status(RunStatus::completed)).empty());
  EXPECT_EQ(keys_under(p + "-brief"), std::vector<std::string>{});
}

}  // namespace
