// Store faults against a real redis-server: one run's bad record never harms the other
// runs of its batch, whatever a caller is told is what the store says afterwards (server
// frozen past the retry deadline, out of memory), and a store that lost its data says so.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <flux/flux.hpp>
#include <map>
#include <thread>

#include "support/redis_server.hpp"

namespace {

using namespace std::chrono_literals;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string next_prefix() {
  static std::atomic<int> n{0};
  return "faults" + std::to_string(n++);
}

flux::Config config_for(const flux::test::RedisServer& server) {
  flux::Config config;
  config.store = server.url();
  config.key_prefix = next_prefix();
  return config;
}

/// Polls the store until `run_id` has status `until` (bounded: 15 s), and returns its
/// record as last read.
std::optional<flux::RunInfo> settled(flux::Runtime& rt, const std::string& run_id,
                                     flux::RunStatus until) {
  auto deadline = std::chrono::steady_clock::now() + 15s;
  std::optional<flux::RunInfo> info;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      info = rt.get_run(run_id);
      if (info && info->status == until) return info;
    } catch (const flux::Error&) {
      // the store is still away
    }
    std::this_thread::sleep_for(50ms);
  }
  return info;
}

// A 2 MiB output against a server whose proto-max-bulk-len is 1 MB used to make the
// server drop the connection, failing the ~200 runs of the same batch. Now the record is
// checked before it is sent: its run alone fails, naming itself, the key and the limit.
TEST(StoreFaults, ARecordTooLargeForTheServerFailsItsOwnRunOnly) {
  flux::test::RedisServer server;
  server.cli("CONFIG SET proto-max-bulk-len 1mb");
  flux::Runtime rt(config_for(server));
  auto big = flux::node("big", [](std::int64_t n) { return std::string(std::size_t(n), 'x'); });
  auto small = flux::node("small", [](std::int64_t x) { return x + 1; });

  std::vector<flux::RunHandle> others;
  flux::RunHandle bad = rt.start(big, std::int64_t{2} << 20);
  for (int i = 0; i < 200; ++i) others.push_back(rt.start(small, std::int64_t{i}));

  flux::RunResult r = bad.wait();
  ASSERT_FALSE(r.ok());
  const std::string& why = r.error->message;
  EXPECT_TRUE(contains(why, "run " + r.run_id)) << why;
  EXPECT_TRUE(contains(why, ":{" + r.run_id + "}:")) << "names the key: " << why;
  EXPECT_TRUE(contains(why, "1048576 bytes")) << "names the limit: " << why;
  for (int i = 0; i < 200; ++i) {
    flux::RunResult o = others[i].wait();
    ASSERT_TRUE(o.ok()) << o.error->message;
    EXPECT_EQ(o.value<std::int64_t>(), i + 1);
    auto stored = rt.get_run(o.run_id);
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->status, flux::RunStatus::completed);
    EXPECT_EQ(stored->history.size(), 1u);
  }
  // The store says what the caller was told.
  auto stored = settled(rt, r.run_id, flux::RunStatus::failed);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, flux::RunStatus::failed);
  ASSERT_TRUE(stored->error);
  EXPECT_EQ(stored->error->message, why);
}

// One write that cannot be encoded, applied in a batch with writes of other runs: only its
// run is refused (with an error naming it); the others are stored.
TEST(StoreFaults, AnUnencodableWriteIsRefusedForItsRunAloneInABatch) {
  flux::test::RedisServer server;
  flux::Runtime rt(config_for(server));
  flux::Value deep = std::int64_t{1};
  for (int i = 0; i < 2000; ++i) deep = flux::Value::List{std::move(deep)};
  std::vector<flux::Write> batch;
  for (int i = 0; i < 50; ++i) {
    flux::RunInfo run;
    run.id = "run-" + std::to_string(i);
    run.pipeline = "p";
    run.fingerprint = "f";
    run.created = run.updated = flux::Timestamp(std::chrono::seconds(1000 + i));
    run.input = i == 25 ? deep : flux::Value(std::int64_t{i});
    batch.push_back(flux::Write{flux::Write::PutRun{std::make_shared<const flux::RunInfo>(run)}});
    batch.push_back(flux::Write{flux::Write::PutKey{run.id, flux::Scope::kv, "k", i}});
  }
  std::vector<flux::RunRefusal> refused = rt.storage().apply(batch);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].run_id, "run-25");
  EXPECT_TRUE(contains(refused[0].error.what(), "run-25")) << refused[0].error.what();
  for (int i = 0; i < 50; ++i) {
    const std::string id = "run-" + std::to_string(i);
    if (i == 25) {
      EXPECT_FALSE(rt.storage().get_run(id)) << "nothing of the refused run is written";
      EXPECT_TRUE(rt.run_keys(id).empty());
    } else {
      auto stored = rt.storage().get_run(id);
      ASSERT_TRUE(stored) << id;
      EXPECT_EQ(stored->input, flux::Value(std::int64_t{i}));
      EXPECT_EQ(rt.run_keys(id), (flux::Value::Map{{"k", std::int64_t{i}}}));
    }
  }
}

// Redis frozen (SIGSTOP) longer than the retry deadline: the run's last batch may be
// applied when the server wakes up. The caller was told the run failed; the store must say
// so too, not `completed`.
TEST(StoreFaults, AServerFrozenPastTheDeadlineEndsWithTheStoreSayingWhatTheCallerWasTold) {
  flux::test::RedisServer server;
  flux::Config config = config_for(server);
  config.store_retry_deadline = 1s;
  flux::Runtime rt(std::move(config));
  std::atomic<bool> frozen{false};
  auto work = flux::node("work", [&](std::int64_t x) {
    server.freeze();  // the run's records so far are still queued: they will hang
    frozen = true;
    return x * 2;
  });
  flux::RunHandle h = rt.start(work, 21);
  flux::RunResult r = h.wait();  // the store is frozen: bounded by the I/O timeout + deadline
  server.thaw();
  ASSERT_TRUE(frozen.load());
  ASSERT_FALSE(r.ok()) << "the caller cannot be told completed: the store did not answer";
  EXPECT_TRUE(contains(r.error->message, "run " + r.run_id + ": the store failed"))
      << r.error->message;
  // The frozen batch is applied when the server wakes up (it was in the server's socket
  // buffer); the correction, sent on a new connection, overrides it, or — if it lands
  // first — fences it off. Either way the store converges on the caller's answer at once.
  auto stored = settled(rt, r.run_id, flux::RunStatus::failed);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, flux::RunStatus::failed);
  ASSERT_TRUE(stored->error);
  EXPECT_EQ(stored->error->message, r.error->message);
  // And it stays so.
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(rt.get_run(r.run_id)->status, flux::RunStatus::failed);
  auto listed = rt.list_runs(flux::RunFilter{flux::RunStatus::failed, 0});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, r.run_id);
  EXPECT_TRUE(rt.list_runs(flux::RunFilter{flux::RunStatus::completed, 0}).empty());
}

// Redis at maxmemory with noeviction: the runs whose writes are refused fail, each with an
// error that names its own keys, and every run's stored status is what its caller was told.
TEST(StoreFaults, OutOfMemoryFailsTheRefusedRunsWithTheirOwnKeysAndTheStoreAgrees) {
  flux::test::RedisServer server;
  flux::Runtime rt(config_for(server));
  auto fat =
      flux::node("fat", [](std::int64_t i) { return std::string(20000, char('a' + i % 26)); });
  ASSERT_TRUE(rt.run(fat, 0).ok());  // warm: scripts loaded, connections made
  const std::string used = server.cli("INFO memory | grep '^used_memory:' | cut -d: -f2");
  const long long limit = std::stoll(used) + 300000;
  server.cli("CONFIG SET maxmemory-policy noeviction");
  server.cli("CONFIG SET maxmemory " + std::to_string(limit));

  std::vector<flux::RunHandle> handles;
  for (int i = 0; i < 60; ++i) handles.push_back(rt.start(fat, std::int64_t{i}));
  int failed = 0, completed = 0;
  std::map<std::string, flux::RunResult> results;
  for (auto& h : handles) {
    flux::RunResult r = h.wait();
    results.emplace(r.run_id, r);
    if (r.ok()) {
      ++completed;
      continue;
    }
    ++failed;
    const std::string& why = r.error->message;
    EXPECT_TRUE(contains(why, "OOM")) << why;
    // Every key named in the error is one of this run's own.
    for (std::size_t at = why.find(":{"); at != std::string::npos; at = why.find(":{", at + 2)) {
      EXPECT_EQ(why.substr(at + 2, r.run_id.size()), r.run_id) << why;
    }
  }
  EXPECT_GT(failed, 0) << "the test must reach the memory limit";
  EXPECT_GT(completed, 0) << "the runs written before the limit complete";
  for (const auto& [id, r] : results) {
    auto stored = settled(rt, id, r.status);
    ASSERT_TRUE(stored) << id << ": " << (r.error ? r.error->message : "");
    EXPECT_EQ(stored->status, r.status) << id;
    if (!r.ok()) {
      EXPECT_EQ(stored->error->message, r.error->message);
    }
  }
  server.cli("CONFIG SET maxmemory 0");
}

// A store that restarted empty (no persistence): a run in flight used to fail with
// "fencing token 1 is stale, the newest is 0". It now says the store lost its data.
TEST(StoreFaults, AStoreThatRestartedEmptyIsReportedAsHavingLostItsData) {
  flux::test::RedisServer server;
  flux::Runtime rt(config_for(server));
  auto first = flux::node("first", [](std::int64_t x) { return x + 1; }).blocking();
  auto restart = flux::node("restart", [&](std::int64_t x, flux::Context& ctx) {
                   // Once the run's first records are stored (so that there is something
                   // to lose), the server restarts without its data.
                   while (rt.history(ctx.run_id()).empty()) std::this_thread::sleep_for(5ms);
                   server.stop();  // not durable: everything is gone
                   server.start();
                   return x + 1;
                 }).blocking();
  auto last = flux::node("last", [](std::int64_t x) { return x + 1; });
  flux::RunResult r = rt.run(first | restart | last, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error->message, "lost its data")) << r.error->message;
  EXPECT_TRUE(contains(r.error->message, "127.0.0.1:" + std::to_string(server.port())))
      << r.error->message;
  EXPECT_FALSE(contains(r.error->message, "stale")) << r.error->message;
  // A run started after the restart is recorded as usual.
  flux::RunResult again = rt.run(first | last, 1);
  ASSERT_TRUE(again.ok()) << again.error->message;
  EXPECT_EQ(again.value<std::int64_t>(), 3);
}

// A run recorded as failed by the store's correction expires like any finished run.
TEST(StoreFaults, ARunFailedByTheStoreIsKeptOnlyAsLongAsRetentionSays) {
  flux::test::RedisServer server;
  server.cli("CONFIG SET proto-max-bulk-len 1mb");
  flux::Config config = config_for(server);
  config.retention = flux::Retention{.max_age = std::chrono::hours(1)};
  const std::string prefix = config.key_prefix;
  flux::Runtime rt(std::move(config));
  auto big = flux::node("big", [](std::int64_t n) { return std::string(std::size_t(n), 'x'); });
  flux::RunResult r = rt.run(big, std::int64_t{2} << 20);
  ASSERT_FALSE(r.ok());
  ASSERT_TRUE(settled(rt, r.run_id, flux::RunStatus::failed));
  const long long ttl_ms = std::stoll(server.cli("PTTL '" + prefix + ":{" + r.run_id + "}:run'"));
  EXPECT_GT(ttl_ms, 3'000'000) << "about an hour";
  EXPECT_LE(ttl_ms, 3'600'000);
}

}  // namespace
