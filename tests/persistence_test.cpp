// Seed group "Persistence": run ids, the per-run kv store, automatic history,
// persistence in parallel branches, run tracking (list_runs / get_run /
// run_keys), custom storage backends, observers and run handles.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <flux/flux.hpp>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using flux::Value;

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

std::string failure_text(const flux::RunResult& r) { return r.error ? r.error->message : ""; }

/// Polls `pred` until it holds or `timeout` passes; returns its last result.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5000ms) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return pred();
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

flux::Node inc() {
  return flux::node("inc", [](std::int64_t x) { return x + 1; });
}
flux::Node dbl() {
  return flux::node("dbl", [](std::int64_t x) { return x * 2; });
}

// ---------------------------------------------------------------- run ids

TEST(Persistence, EveryRunGetsADistinctUuidRunId) {
  flux::Runtime rt;
  auto p = inc();
  std::vector<flux::RunHandle> handles;
  handles.reserve(1000);
  for (int i = 0; i < 1000; ++i) handles.push_back(rt.start(p, i));
  const std::regex uuid(
      "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$");
  std::set<std::string> ids;
  for (auto& h : handles) {
    auto r = h.wait_for(30s);
    ASSERT_TRUE(r.has_value());
    ASSERT_TRUE(r->ok()) << failure_text(*r);
    EXPECT_EQ(r->run_id, h.run_id());
    EXPECT_EQ(r->run_id.size(), 36u);
    EXPECT_TRUE(std::regex_match(r->run_id, uuid)) << r->run_id;
    ids.insert(r->run_id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(Persistence, ContextRunIdIsTheRunResultsRunIdInEveryNode) {
  auto first = flux::node("first", [](flux::Context& ctx) { return ctx.run_id(); });
  auto second = flux::node("second", [](const std::string& from_first, flux::Context& ctx) {
    return from_first == ctx.run_id() ? ctx.run_id() : std::string("mismatch");
  });
  flux::Runtime rt;
  auto r = rt.run(first | second);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::string>(), r.run_id);
  auto other = rt.run(first | second);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other.value<std::string>(), r.run_id);
}

// ---------------------------------------------------------------- kv store

TEST(Persistence, SaveGetEraseContainsAndKeysWithDefaults) {
  auto kv = flux::node("kv", [](flux::Context& ctx) {
    Value::Map seen;
    seen["default_before_save"] = ctx.get<std::int64_t>("count", 7);
    seen["contains_before_save"] = ctx.contains("count");
    ctx.save("count", 1);
    ctx.save("name", std::string("flux"));
    ctx.save("tags", std::vector<std::string>{"a", "b"});
    seen["count"] = ctx.get<std::int64_t>("count", 0);
    seen["name"] = ctx.get<std::string>("name", "");
    seen["tags"] = Value::from(ctx.get<std::vector<std::string>>("tags", {}));
    seen["raw_count"] = ctx.get("count").value_or(Value("absent"));
    auto keys = ctx.keys();
    std::sort(keys.begin(), keys.end());
    seen["keys"] = Value::from(keys);
    seen["erased"] = ctx.erase("name");
    seen["erased_again"] = ctx.erase("name");
    seen["contains_after_erase"] = ctx.contains("name");
    seen["get_after_erase_is_empty"] = !ctx.get("name").has_value();
    seen["default_after_erase"] = ctx.get<std::string>("name", "fallback");
    ctx.save("count", 2);  // overwrite
    return Value(seen);
  });
  flux::Runtime rt;
  auto r = rt.run(kv);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  const Value& out = r.output;
  EXPECT_EQ(out.at("default_before_save"), Value(7));
  EXPECT_EQ(out.at("contains_before_save"), Value(false));
  EXPECT_EQ(out.at("count"), Value(1));
  EXPECT_EQ(out.at("name"), Value("flux"));
  EXPECT_EQ(out.at("tags"), Value(Value::List{"a", "b"}));
  EXPECT_EQ(out.at("raw_count"), Value(1));
  EXPECT_EQ(out.at("keys"), Value(Value::List{"count", "name", "tags"}));
  EXPECT_EQ(out.at("erased"), Value(true));
  EXPECT_EQ(out.at("erased_again"), Value(false));
  EXPECT_EQ(out.at("contains_after_erase"), Value(false));
  EXPECT_EQ(out.at("get_after_erase_is_empty"), Value(true));
  EXPECT_EQ(out.at("default_after_erase"), Value("fallback"));

  // The store holds the final state: overwritten count, erased name gone.
  auto stored = rt.run_keys(r.run_id, flux::Scope::kv);
  EXPECT_EQ(stored, (Value::Map{{"count", 2}, {"tags", Value::List{"a", "b"}}}));
}

TEST(Persistence, KvWrittenByOneNodeIsReadByALaterNode) {
  auto writer = flux::node("writer", [](std::int64_t x, flux::Context& ctx) {
    ctx.save("seed", x * 3);
    return x;
  });
  auto reader = flux::node("reader", [](std::int64_t x, flux::Context& ctx) {
    return x + ctx.get<std::int64_t>("seed", -1000);
  });
  flux::Runtime rt;
  auto r = rt.run(writer | inc() | reader, 5);  // 6 + 15
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::int64_t>(), 21);
}

TEST(Persistence, KvStoresAreIsolatedBetweenRuns) {
  auto once = flux::node("once", [](std::int64_t x, flux::Context& ctx) {
    bool had = ctx.contains("mine");
    ctx.save("mine", x);
    return had;
  });
  flux::Runtime rt;
  auto r1 = rt.run(once, 1);
  auto r2 = rt.run(once, 2);
  ASSERT_TRUE(r1.ok());
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r1.output, Value(false));
  EXPECT_EQ(r2.output, Value(false));
  EXPECT_EQ(rt.run_keys(r1.run_id).at("mine"), Value(1));
  EXPECT_EQ(rt.run_keys(r2.run_id).at("mine"), Value(2));
}

TEST(Persistence, GetWithTheWrongTypeThrowsTypeErrorNamingTheKey) {
  auto probe = flux::node("probe", [](flux::Context& ctx) {
    ctx.save("n", std::string("abc"));
    try {
      (void)ctx.get<std::int64_t>("n", 0);
      return std::string("no error");
    } catch (const flux::TypeError& e) {
      return std::string(e.what());
    }
  });
  flux::Runtime rt;
  auto r = rt.run(probe);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  auto text = r.value<std::string>();
  EXPECT_TRUE(Contains(text, "kv key \"n\""));
  EXPECT_TRUE(Contains(text, "expected int64"));
  EXPECT_TRUE(Contains(text, "string"));
}

// ---------------------------------------------------------------- history

TEST(Persistence, HistoryRecordsEveryNodeExecutionInOrder) {
  auto to_text = flux::node("to_text", [](std::int64_t x) { return "v" + std::to_string(x); });
  flux::Runtime rt;
  auto r = rt.run(inc() | dbl() | to_text, 4);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::string>(), "v10");

  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  const auto& h = info->history;
  ASSERT_EQ(h.size(), 3u);
  const std::vector<std::string> names{"inc", "dbl", "to_text"};
  const std::vector<Value> inputs{Value(4), Value(5), Value(10)};
  const std::vector<Value> outputs{Value(5), Value(10), Value("v10")};
  for (std::size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE("entry " + std::to_string(i));
    EXPECT_EQ(h[i].seq, i);
    EXPECT_EQ(h[i].type, flux::HistoryEntry::Type::node);
    EXPECT_EQ(h[i].node, names[i]);
    EXPECT_EQ(h[i].step, std::to_string(i));
    EXPECT_EQ(h[i].attempt, 1u);
    EXPECT_EQ(h[i].input, inputs[i]);
    EXPECT_EQ(h[i].output, outputs[i]);
    EXPECT_TRUE(h[i].ok());
    EXPECT_FALSE(h[i].error.has_value());
    EXPECT_GE(h[i].duration.count(), 0);
    EXPECT_GE(h[i].end, h[i].start);
    EXPECT_GT(h[i].start.time_since_epoch().count(), 0);
    if (i > 0) {
      EXPECT_GE(h[i].start, h[i - 1].end);
    }
  }
}

TEST(Persistence, HistoryRecordsTheDurationOfASlowNode) {
  auto slow = flux::node("slow", [](std::int64_t x) {
                std::this_thread::sleep_for(50ms);
                return x;
              }).blocking();
  flux::Runtime rt;
  auto r = rt.run(slow, 1);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->history.size(), 1u);
  EXPECT_GE(info->history[0].duration, std::chrono::nanoseconds(45ms));
  EXPECT_LT(info->history[0].duration, std::chrono::nanoseconds(5s));
  EXPECT_GE(info->history[0].end - info->history[0].start, std::chrono::nanoseconds(45ms));
}

TEST(Persistence, ALaterNodeSeesEarlierHistoryThroughItsContext) {
  auto look = flux::node("look", [](std::int64_t, flux::Context& ctx) {
    std::vector<std::string> seen;
    for (const auto& e : ctx.history())
      seen.push_back(e.node + "@" + e.step + "=" + e.output.to_string());
    return seen;
  });
  flux::Runtime rt;
  auto r = rt.run(inc() | dbl() | look, 1);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::vector<std::string>>(), (std::vector<std::string>{"inc@0=2", "dbl@1=4"}));
}

TEST(Persistence, KvWrittenInParallelBranchesIsVisibleAfterwards) {
  std::vector<flux::Pipeline> branches;
  for (std::int64_t i = 0; i < 4; ++i) {
    branches.push_back(
        flux::node("save_" + std::to_string(i), [i](std::int64_t x, flux::Context& ctx) {
          ctx.save("branch_" + std::to_string(i), x + i);
          return i;
        }));
  }
  auto gather = flux::node("gather", [](flux::Context& ctx) {
    std::int64_t sum = 0;
    for (int i = 0; i < 4; ++i) sum += ctx.get<std::int64_t>("branch_" + std::to_string(i), -100);
    return sum;
  });
  flux::Runtime rt;
  auto r = rt.run(flux::parallel(branches) | gather, 10);  // 10+11+12+13
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::int64_t>(), 46);
  auto kv = rt.run_keys(r.run_id, flux::Scope::kv);
  EXPECT_EQ(kv,
            (Value::Map{{"branch_0", 10}, {"branch_1", 11}, {"branch_2", 12}, {"branch_3", 13}}));
}

// ---------------------------------------------------------------- run tracking

TEST(Persistence, GetRunReturnsMetadataAndHistoryOfACompletedRun) {
  auto p = (inc() | dbl()).named("calc");
  flux::Runtime rt;
  auto r = rt.run(p, 3);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->id, r.run_id);
  EXPECT_EQ(info->pipeline, "calc");
  EXPECT_EQ(info->fingerprint, p.fingerprint());
  EXPECT_EQ(info->status, flux::RunStatus::completed);
  EXPECT_EQ(info->input, Value(3));
  EXPECT_EQ(info->output, Value(8));
  EXPECT_FALSE(info->error.has_value());
  ASSERT_TRUE(info->finished.has_value());
  EXPECT_GE(*info->finished, info->created);
  EXPECT_GE(info->updated, info->created);
  EXPECT_EQ(info->history.size(), 2u);

  EXPECT_FALSE(rt.get_run("00000000-0000-0000-0000-000000000000").has_value());
}

TEST(Persistence, AFailedRunIsMarkedFailedWithItsError) {
  auto boom = flux::node(
      "boom", [](std::int64_t) -> std::int64_t { throw std::runtime_error("cannot go on"); });
  flux::Runtime rt;
  auto r = rt.run(inc() | boom, 1);
  EXPECT_EQ(r.status, flux::RunStatus::failed);
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->status, flux::RunStatus::failed);
  ASSERT_TRUE(info->error.has_value());
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(*info->error, *r.error);
  EXPECT_EQ(info->error->node, "boom");
  EXPECT_EQ(info->error->step, "1");
  EXPECT_TRUE(Contains(info->error->message, "cannot go on"));
  EXPECT_TRUE(info->output.is_null());
  EXPECT_TRUE(info->finished.has_value());
}

TEST(Persistence, ListRunsIsNewestFirstAndFiltersByStatusAndLimit) {
  auto maybe_fail = flux::node("maybe_fail", [](std::int64_t x) {
    if (x == 2) throw std::runtime_error("two is not allowed");
    return x;
  });
  flux::Config cfg;
  cfg.storage = std::make_shared<flux::MemoryStorage>();  // a store of this test's runs only
  flux::Runtime rt(cfg);
  std::vector<std::string> ids;
  for (std::int64_t i = 1; i <= 3; ++i) {
    ids.push_back(rt.run(maybe_fail, i).run_id);
    std::this_thread::sleep_for(2ms);  // distinct creation times
  }

  auto all = rt.list_runs();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, ids[2]);
  EXPECT_EQ(all[1].id, ids[1]);
  EXPECT_EQ(all[2].id, ids[0]);
  for (const auto& info : all) EXPECT_TRUE(info.history.empty()) << "list_runs leaves history out";
  EXPECT_EQ(all[1].status, flux::RunStatus::failed);
  EXPECT_EQ(all[0].status, flux::RunStatus::completed);

  auto failed = rt.list_runs(flux::RunFilter{flux::RunStatus::failed, 0});
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].id, ids[1]);
  ASSERT_TRUE(failed[0].error.has_value());
  EXPECT_TRUE(Contains(failed[0].error->message, "two is not allowed"));

  auto completed = rt.list_runs(flux::RunFilter{flux::RunStatus::completed, 0});
  ASSERT_EQ(completed.size(), 2u);
  EXPECT_EQ(completed[0].id, ids[2]);
  EXPECT_EQ(completed[1].id, ids[0]);

  auto newest_two = rt.list_runs(flux::RunFilter{std::nullopt, 2});
  ASSERT_EQ(newest_two.size(), 2u);
  EXPECT_EQ(newest_two[0].id, ids[2]);
  EXPECT_EQ(newest_two[1].id, ids[1]);

  auto newest_completed = rt.list_runs(flux::RunFilter{flux::RunStatus::completed, 1});
  ASSERT_EQ(newest_completed.size(), 1u);
  EXPECT_EQ(newest_completed[0].id, ids[2]);

  EXPECT_TRUE(rt.list_runs(flux::RunFilter{flux::RunStatus::running, 0}).empty());
}

TEST(Persistence, RunKeysReturnKvAndSharedStateAfterTheRun) {
  auto both = flux::node("both", [](std::int64_t x, flux::Context& ctx) {
    ctx.save("input", x);
    ctx.shared().set("mode", std::string("fast"));
    ctx.shared().add("hits", 5);
    return x;
  });
  flux::Runtime rt;
  auto r = rt.run(both, 9);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(rt.run_keys(r.run_id, flux::Scope::kv), (Value::Map{{"input", 9}}));
  EXPECT_EQ(rt.run_keys(r.run_id, flux::Scope::shared),
            (Value::Map{{"hits", 5}, {"mode", "fast"}}));
  EXPECT_EQ(rt.run_keys(r.run_id), (Value::Map{{"input", 9}}));
}

// ---------------------------------------------------------------- custom storage

/// A Storage that delegates to a MemoryStorage and counts what it is asked to do.
class CountingStorage : public flux::Storage {
 public:
  std::atomic<int> put_run_calls{0};
  mutable std::atomic<int> get_run_calls{0};
  mutable std::atomic<int> list_runs_calls{0};
  std::atomic<int> append_history_calls{0};
  mutable std::atomic<int> history_calls{0};
  std::atomic<int> put_key_calls{0};
  std::atomic<int> erase_key_calls{0};
  std::atomic<int> apply_calls{0};

  std::optional<flux::RunStatus> last_put_status(const std::string& id) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = last_status_.find(id);
    if (it == last_status_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::string> appended_nodes(const std::string& id) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = appended_.find(id);
    return it == appended_.end() ? std::vector<std::string>{} : it->second;
  }

  void put_run(const flux::RunInfo& run) override {
    ++put_run_calls;
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_status_[run.id] = run.status;
    }
    inner_.put_run(run);
  }
  std::optional<flux::RunInfo> get_run(std::string_view run_id) const override {
    ++get_run_calls;
    return inner_.get_run(run_id);
  }
  std::vector<flux::RunInfo> list_runs(const flux::RunFilter& filter) const override {
    ++list_runs_calls;
    return inner_.list_runs(filter);
  }
  void append_history(std::string_view run_id, const flux::HistoryEntry& entry) override {
    ++append_history_calls;
    {
      std::lock_guard<std::mutex> lock(mu_);
      appended_[std::string(run_id)].push_back(entry.node);
    }
    inner_.append_history(run_id, entry);
  }
  std::vector<flux::HistoryEntry> history(std::string_view run_id,
                                          std::size_t from) const override {
    ++history_calls;
    return inner_.history(run_id, from);
  }
  void put_key(std::string_view run_id, flux::Scope scope, std::string_view key,
               const Value& value) override {
    ++put_key_calls;
    inner_.put_key(run_id, scope, key, value);
  }
  std::optional<Value> get_key(std::string_view run_id, flux::Scope scope,
                               std::string_view key) const override {
    return inner_.get_key(run_id, scope, key);
  }
  void erase_key(std::string_view run_id, flux::Scope scope, std::string_view key) override {
    ++erase_key_calls;
    inner_.erase_key(run_id, scope, key);
  }
  Value::Map keys(std::string_view run_id, flux::Scope scope) const override {
    return inner_.keys(run_id, scope);
  }
  std::vector<flux::RunRefusal> apply(std::span<const flux::Write> batch) override {
    ++apply_calls;
    return Storage::apply(batch);  // the default: one call per write, through the overrides
  }

 private:
  flux::MemoryStorage inner_;
  mutable std::mutex mu_;
  std::map<std::string, flux::RunStatus> last_status_;
  std::map<std::string, std::vector<std::string>> appended_;
};

TEST(Persistence, CustomStorageBackendReceivesAllRecordsAndServesReads) {
  auto backend = std::make_shared<CountingStorage>();
  flux::Config cfg;
  cfg.storage = backend;
  flux::Runtime rt(cfg);
  EXPECT_EQ(&rt.storage(), backend.get());

  auto note = flux::node("note", [](std::int64_t x, flux::Context& ctx) {
    ctx.save("note", std::string("seen ") + std::to_string(x));
    ctx.save("tmp", 1);
    ctx.erase("tmp");
    return x;
  });
  auto r = rt.run(inc() | note | dbl(), 1);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::int64_t>(), 4);

  // Everything is in the backend once the run is reported ended.
  EXPECT_EQ(backend->appended_nodes(r.run_id), (std::vector<std::string>{"inc", "note", "dbl"}));
  EXPECT_EQ(backend->append_history_calls.load(), 3);
  EXPECT_GE(backend->put_run_calls.load(), 1);
  EXPECT_EQ(backend->last_put_status(r.run_id), flux::RunStatus::completed);
  EXPECT_GE(backend->put_key_calls.load(), 2);
  EXPECT_GE(backend->erase_key_calls.load(), 1);
  EXPECT_EQ(backend->keys(r.run_id, flux::Scope::kv), (Value::Map{{"note", "seen 2"}}));

  // Reads through the Runtime go to the backend.
  int get_runs_before = backend->get_run_calls.load();
  auto info = rt.get_run(r.run_id);
  EXPECT_GT(backend->get_run_calls.load(), get_runs_before);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->status, flux::RunStatus::completed);
  ASSERT_EQ(info->history.size(), 3u);
  EXPECT_EQ(info->history[1].node, "note");

  int lists_before = backend->list_runs_calls.load();
  auto runs = rt.list_runs();
  EXPECT_GT(backend->list_runs_calls.load(), lists_before);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].id, r.run_id);

  EXPECT_EQ(rt.run_keys(r.run_id, flux::Scope::kv), (Value::Map{{"note", "seen 2"}}));
}

TEST(Persistence, CustomStorageRecordsAFailedRun) {
  auto backend = std::make_shared<CountingStorage>();
  flux::Config cfg;
  cfg.storage = backend;
  flux::Runtime rt(cfg);
  auto boom =
      flux::node("boom", [](std::int64_t) -> std::int64_t { throw std::runtime_error("nope"); });
  auto r = rt.run(inc() | boom, 1);
  EXPECT_EQ(r.status, flux::RunStatus::failed);
  EXPECT_EQ(backend->last_put_status(r.run_id), flux::RunStatus::failed);
  EXPECT_EQ(backend->appended_nodes(r.run_id), (std::vector<std::string>{"inc", "boom"}));
  auto stored = backend->get_run(r.run_id);
  ASSERT_TRUE(stored.has_value());
  ASSERT_TRUE(stored->error.has_value());
  EXPECT_EQ(stored->error->node, "boom");
}

// ---------------------------------------------------------------- observers

class RecordingObserver : public flux::Observer {
 public:
  void on_run_start(const flux::RunInfo& run) override {
    add("run_start:" + std::string(flux::to_string(run.status)));
    std::lock_guard<std::mutex> lock(mu_);
    started_id_ = run.id;
  }
  void on_run_end(const flux::RunInfo& run) override {
    add("run_end:" + std::string(flux::to_string(run.status)));
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = run;
  }
  void on_node_start(const flux::NodeEvent& e) override {
    add("node_start:" + e.node + "@" + e.step + "#" + std::to_string(e.attempt));
  }
  void on_node_end(const flux::NodeEvent& e, const flux::HistoryEntry& entry) override {
    add("node_end:" + e.node + "@" + e.step + "=" + entry.output.to_string());
  }
  void on_node_error(const flux::NodeEvent& e, const flux::HistoryEntry& entry) override {
    add("node_error:" + e.node + "@" + e.step);
    std::lock_guard<std::mutex> lock(mu_);
    error_text_ = entry.error.value_or("");
  }

  std::vector<std::string> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  std::optional<flux::RunInfo> ended() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ended_;
  }
  std::string started_id() const {
    std::lock_guard<std::mutex> lock(mu_);
    return started_id_;
  }
  std::string error_text() const {
    std::lock_guard<std::mutex> lock(mu_);
    return error_text_;
  }

 private:
  void add(std::string e) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  mutable std::mutex mu_;
  std::vector<std::string> events_;
  std::optional<flux::RunInfo> ended_;
  std::string started_id_;
  std::string error_text_;
};

class ThrowingObserver : public flux::Observer {
 public:
  std::atomic<int> calls{0};
  void on_run_start(const flux::RunInfo&) override {
    ++calls, throw std::runtime_error("observer bug");
  }
  void on_run_end(const flux::RunInfo&) override {
    ++calls, throw std::runtime_error("observer bug");
  }
  void on_node_start(const flux::NodeEvent&) override {
    ++calls, throw std::runtime_error("observer bug");
  }
  void on_node_end(const flux::NodeEvent&, const flux::HistoryEntry&) override {
    ++calls, throw std::runtime_error("observer bug");
  }
};

TEST(Persistence, ObserverSeesRunAndNodeEventsInOrder) {
  auto obs = std::make_shared<RecordingObserver>();
  flux::Config cfg;
  cfg.observers = {obs};
  flux::Runtime rt(cfg);
  auto r = rt.run(inc() | dbl(), 3);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  ASSERT_TRUE(eventually([&] { return obs->ended().has_value(); }));
  auto ev = obs->events();
  ASSERT_EQ(ev.size(), 6u);
  EXPECT_EQ(ev.front(), "run_start:running");
  EXPECT_EQ(ev.back(), "run_end:completed");
  auto sorted = ev;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<std::string>{"node_end:dbl@1=8", "node_end:inc@0=4",
                                              "node_start:dbl@1#1", "node_start:inc@0#1",
                                              "run_end:completed", "run_start:running"}));
  auto pos = [&](const std::string& e) { return std::find(ev.begin(), ev.end(), e) - ev.begin(); };
  EXPECT_LT(pos("node_start:inc@0#1"), pos("node_end:inc@0=4"));
  EXPECT_LT(pos("node_start:dbl@1#1"), pos("node_end:dbl@1=8"));
  EXPECT_LT(pos("node_start:inc@0#1"), pos("node_start:dbl@1#1"));
  EXPECT_EQ(obs->started_id(), r.run_id);
  EXPECT_EQ(obs->ended()->id, r.run_id);
  EXPECT_EQ(obs->ended()->output, Value(8));
}

TEST(Persistence, ObserverIsToldOfANodeErrorAndTheFailedRun) {
  auto obs = std::make_shared<RecordingObserver>();
  flux::Config cfg;
  cfg.observers = {obs};
  flux::Runtime rt(cfg);
  auto boom =
      flux::node("boom", [](std::int64_t) -> std::int64_t { throw std::runtime_error("kaboom"); });
  auto r = rt.run(inc() | boom | dbl(), 3);
  EXPECT_EQ(r.status, flux::RunStatus::failed);
  ASSERT_TRUE(eventually([&] { return obs->ended().has_value(); }));
  auto ev = obs->events();
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.front(), "run_start:running");
  EXPECT_EQ(ev.back(), "run_end:failed");
  EXPECT_NE(std::find(ev.begin(), ev.end(), "node_end:inc@0=4"), ev.end());
  EXPECT_NE(std::find(ev.begin(), ev.end(), "node_start:boom@1#1"), ev.end());
  EXPECT_NE(std::find(ev.begin(), ev.end(), "node_error:boom@1"), ev.end());
  for (const auto& e : ev) {
    EXPECT_NE(e.rfind("node_end:boom", 0), 0u) << "a failing node does not end successfully";
    EXPECT_EQ(e.find("dbl"), std::string::npos) << "nothing runs after the failure";
  }
  EXPECT_TRUE(Contains(obs->error_text(), "kaboom"));
  ASSERT_TRUE(obs->ended()->error.has_value());
  EXPECT_EQ(obs->ended()->error->node, "boom");
}

TEST(Persistence, TwoObserversAreBothNotified) {
  auto a = std::make_shared<RecordingObserver>();
  auto b = std::make_shared<RecordingObserver>();
  flux::Config cfg;
  cfg.observers = {a, b};
  flux::Runtime rt(cfg);
  auto r = rt.run(inc() | flux::parallel(dbl(), inc()), 1);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  ASSERT_TRUE(eventually([&] { return a->ended().has_value() && b->ended().has_value(); }));
  auto ea = a->events();
  auto eb = b->events();
  EXPECT_EQ(ea.size(), eb.size());
  std::sort(ea.begin(), ea.end());
  std::sort(eb.begin(), eb.end());
  EXPECT_EQ(ea, eb);
  EXPECT_NE(std::find(ea.begin(), ea.end(), "node_end:dbl@1.0.0=4"), ea.end());
  EXPECT_NE(std::find(ea.begin(), ea.end(), "node_end:inc@1.1.0=3"), ea.end());
  EXPECT_NE(std::find(ea.begin(), ea.end(), "node_end:parallel@1=[4, 3]"), ea.end());
}

TEST(Persistence, AnObserverThatThrowsDoesNotBreakTheRunOrOtherObservers) {
  auto thrower = std::make_shared<ThrowingObserver>();
  auto recorder = std::make_shared<RecordingObserver>();
  flux::Config cfg;
  cfg.observers = {thrower, recorder};
  flux::Runtime rt(cfg);
  auto r = rt.run(inc() | dbl(), 3);
  ASSERT_TRUE(r.ok()) << failure_text(r);
  EXPECT_EQ(r.value<std::int64_t>(), 8);
  ASSERT_TRUE(eventually([&] { return recorder->ended().has_value(); }));
  EXPECT_GT(thrower->calls.load(), 0);
  EXPECT_EQ(recorder->events().size(), 6u);
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->status, flux::RunStatus::completed);
}

// ---------------------------------------------------------------- run handles

TEST(Persistence, RunHandleKnowsItsIdBeforeTheRunEnds) {
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  auto held = flux::node("held", [gate](std::int64_t x) {
                gate.wait_for(std::chrono::seconds(10));
                return x * 3;
              }).blocking();
  flux::Runtime rt;
  flux::RunHandle h = rt.start(held, 5);
  EXPECT_EQ(h.run_id().size(), 36u);
  EXPECT_FALSE(h.done());
  EXPECT_FALSE(h.wait_for(50ms).has_value());
  EXPECT_FALSE(h.done());

  // While in flight, the store already knows the run as running.
  ASSERT_TRUE(eventually([&] { return rt.get_run(h.run_id()).has_value(); }));
  EXPECT_EQ(rt.get_run(h.run_id())->status, flux::RunStatus::running);

  flux::RunHandle copy = h;
  release.set_value();
  auto r = copy.wait_for(10s);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(h.done());
  EXPECT_TRUE(copy.done());
  EXPECT_EQ(r->run_id, h.run_id());
  EXPECT_EQ(r->value<std::int64_t>(), 15);
  auto again = h.wait();
  EXPECT_EQ(again.run_id, h.run_id());
  EXPECT_EQ(again.output, Value(15));
  EXPECT_EQ(rt.get_run(h.run_id())->status, flux::RunStatus::completed);
}

TEST(Persistence, RunStatusNamesAreLowerCase) {
  EXPECT_STREQ(flux::to_string(flux::RunStatus::running), "running");
  EXPECT_STREQ(flux::to_string(flux::RunStatus::completed), "completed");
  EXPECT_STREQ(flux::to_string(flux::RunStatus::failed), "failed");
}

TEST(Persistence, AForkedChildDoesNotRepeatItsParentsRunIds) {
  auto one = flux::node("one", [](std::int64_t x) { return x; });
  {
    flux::Runtime rt;  // seeds this thread's generator
    ASSERT_TRUE(rt.run(one, 1).ok());
  }
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    flux::Runtime rt;
    std::string id = rt.run(one, 2).run_id + "\n";
    ssize_t written = ::write(fds[1], id.data(), id.size());
    std::_Exit(written == static_cast<ssize_t>(id.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string child_id;
  char c;
  while (::read(fds[0], &c, 1) == 1 && c != '\n') child_id += c;
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  flux::Runtime rt;
  std::string parent_id = rt.run(one, 3).run_id;
  EXPECT_EQ(child_id.size(), 36u);
  EXPECT_NE(parent_id, child_id);
}

}  // namespace
