// The `flux` tool, run as a real process against a real redis-server holding runs that a user's
// binary (tests/cli_app_main.cpp, through flux::main) made: tables (within 100 columns), JSON
// documents (parsed with nlohmann-json) and exit codes of every verb.
#include <gtest/gtest.h>

#include <flux/flux.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace {

using flux::test::Background;
using flux::test::run;
using Json = nlohmann::json;

const std::string k_app = FLUX_CLI_APP;
const std::string k_flux = FLUX_TOOL;

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Display columns of a UTF-8 line.
std::size_t columns(const std::string& line) {
  std::size_t n = 0;
  for (char c : line) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

void expect_fits_100_columns(const std::string& text) {
  for (const auto& line : lines(text)) EXPECT_LE(columns(line), 100u) << line;
}

class FluxTool : public ::testing::Test {
 protected:
  flux::test::RedisServer& redis = flux::test::shared_redis();
  std::string prefix = flux::test::unique_prefix("clitool");
  std::vector<std::string> env() const {
    return {"FLUX_STORE=" + redis.url(), "FLUX_KEY_PREFIX=" + prefix};
  }
  flux::test::Exit flux(std::vector<std::string> args) const {
    args.insert(args.begin(), k_flux);
    return run(args, env());
  }
  /// Runs `pipeline` through the user's binary; returns the run id.
  std::string make_run(const std::string& pipeline, const std::string& input,
                       std::vector<std::string> more = {}) const {
    std::vector<std::string> argv{k_app, "run", pipeline, "--input", input};
    argv.insert(argv.end(), more.begin(), more.end());
    auto r = run(argv, env());
    EXPECT_TRUE(r.code == 0 || r.code == 1) << r.err;
    return lines(r.out).at(0);
  }
};

TEST_F(FluxTool, RunsListShowsRunsNewestFirstAsATableAndAsJson) {
  const std::string a = make_run("double-inc", "1");
  const std::string b = make_run("fails", "2");
  const std::string c = make_run("double-inc", "3");
  auto r = flux({"runs", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto out = lines(r.out);
  ASSERT_EQ(out.size(), 4u) << r.out;
  EXPECT_EQ(out[0].rfind("ID", 0), 0u);
  EXPECT_NE(out[0].find("PIPELINE"), std::string::npos);
  EXPECT_NE(out[0].find("STATUS"), std::string::npos);
  EXPECT_EQ(out[1].rfind(c + "  double-inc  completed", 0), 0u) << out[1];
  EXPECT_EQ(out[2].rfind(b + "  fails       failed", 0), 0u) << out[2];
  EXPECT_NE(out[2].find("node 'boom'"), std::string::npos) << out[2];
  EXPECT_EQ(out[3].rfind(a + "  double-inc  completed", 0), 0u) << out[3];
  expect_fits_100_columns(r.out);

  auto j = flux({"runs", "list", "--json"});
  ASSERT_EQ(j.code, 0) << j.err;
  Json doc = Json::parse(j.out);
  ASSERT_EQ(doc.at("runs").size(), 3u);
  EXPECT_EQ(doc["runs"][0].at("id"), c);
  EXPECT_EQ(doc["runs"][0].at("output"), 8);
  EXPECT_EQ(doc["runs"][1].at("status"), "failed");
  EXPECT_EQ(doc["runs"][1].at("error").at("node"), "boom");
  EXPECT_EQ(doc["runs"][2].at("input"), 1);
  EXPECT_TRUE(doc.at("next_cursor").is_null());
  EXPECT_TRUE(doc.at("corrupt").empty());
  for (const char* field :
       {"id", "pipeline", "status", "created", "updated", "finished", "owner", "fingerprint",
        "parent_run_id", "parent_step", "history_values", "input", "output", "error"}) {
    EXPECT_TRUE(doc["runs"][0].contains(field)) << field;
  }

  // Filters.
  auto failed = Json::parse(flux({"runs", "list", "--status", "failed", "--json"}).out);
  ASSERT_EQ(failed.at("runs").size(), 1u);
  EXPECT_EQ(failed["runs"][0].at("id"), b);
  auto by_pipeline = Json::parse(flux({"runs", "list", "--pipeline", "double-inc", "--json"}).out);
  ASSERT_EQ(by_pipeline.at("runs").size(), 2u);
  EXPECT_EQ(by_pipeline["runs"][0].at("id"), c);
  EXPECT_EQ(by_pipeline["runs"][1].at("id"), a);
  auto bad_status = flux({"runs", "list", "--status", "lost"});
  EXPECT_EQ(bad_status.code, 2);
  EXPECT_NE(bad_status.err.find("--status"), std::string::npos) << bad_status.err;

  // Pages: --limit, then --cursor from what the first page printed.
  auto page1 = flux({"runs", "list", "--limit", "2"});
  ASSERT_EQ(page1.code, 0) << page1.err;
  auto p1 = lines(page1.out);
  ASSERT_EQ(p1.size(), 4u) << page1.out;  // header, 2 runs, "more: --cursor C"
  ASSERT_EQ(p1[3].rfind("more: --cursor ", 0), 0u) << p1[3];
  const std::string cursor = p1[3].substr(15);
  auto page2 =
      Json::parse(flux({"runs", "list", "--limit", "2", "--cursor", cursor, "--json"}).out);
  ASSERT_EQ(page2.at("runs").size(), 1u);
  EXPECT_EQ(page2["runs"][0].at("id"), a);
  // --pipeline with --limit pages over the matching runs only.
  auto pp1 =
      Json::parse(flux({"runs", "list", "--pipeline", "double-inc", "--limit", "1", "--json"}).out);
  ASSERT_EQ(pp1.at("runs").size(), 1u);
  EXPECT_EQ(pp1["runs"][0].at("id"), c);
  auto pp2 = Json::parse(flux({"runs", "list", "--pipeline", "double-inc", "--limit", "1",
                               "--cursor", pp1.at("next_cursor"), "--json"})
                             .out);
  ASSERT_EQ(pp2.at("runs").size(), 1u);
  EXPECT_EQ(pp2["runs"][0].at("id"), a);
}

TEST_F(FluxTool, RunsShowPrintsTheRecordThenTheHistoryTable) {
  const std::string id = make_run("special", "3");
  auto r = flux({"runs", "show", id});
  ASSERT_EQ(r.code, 0) << r.err;
  auto out = lines(r.out);
  EXPECT_EQ(out.at(0), "run       " + id);
  EXPECT_EQ(out.at(1).rfind("pipeline  special (fingerprint ", 0), 0u) << out.at(1);
  EXPECT_EQ(out.at(2), "status    completed");
  EXPECT_NE(
      r.out.find("\noutput    [\"NaN\",\"Infinity\",\"-Infinity\",0.5,{\"$bytes\":\"Zmw=\"}]\n"),
      std::string::npos)
      << r.out;
  // The history table: header, then one row per entry in seq order.
  std::size_t header = 0;
  while (header < out.size() && out[header].rfind("SEQ", 0) != 0) ++header;
  ASSERT_LT(header, out.size()) << r.out;
  for (const char* col : {"STEP", "NODE", "ATTEMPT", "WORKER", "DURATION", "STATUS", "ERROR"}) {
    EXPECT_NE(out[header].find(col), std::string::npos) << col;
  }
  std::vector<std::string> nodes;
  for (std::size_t i = header + 1; i < out.size(); ++i) {
    std::istringstream row(out[i]);
    std::string seq, step, node;
    row >> seq >> step >> node;
    EXPECT_EQ(seq, std::to_string(i - header - 1));
    nodes.push_back(step + " " + node);
  }
  EXPECT_EQ(nodes, (std::vector<std::string>{"0 inc", "1.0.0 dbl", "1.1.0 nap", "1 parallel",
                                             "2 special"}));
  expect_fits_100_columns(r.out);

  auto j = flux({"runs", "show", id, "--json"});
  ASSERT_EQ(j.code, 0) << j.err;
  Json doc = Json::parse(j.out);
  EXPECT_EQ(doc.at("run").at("id"), id);
  ASSERT_EQ(doc.at("history").size(), 5u);
  const Json& nap = doc["history"][2];
  EXPECT_EQ(nap.at("node"), "nap");
  EXPECT_EQ(nap.at("step"), "1.1.0");
  EXPECT_EQ(nap.at("attempt"), 1);
  EXPECT_EQ(nap.at("status"), "ok");
  EXPECT_EQ(nap.at("input"), 4);
  EXPECT_EQ(nap.at("output"), 4);
  EXPECT_GE(nap.at("duration_ns").get<std::int64_t>(), 4'000'000);  // it slept 4 ms
  EXPECT_TRUE(nap.at("worker").is_null());
  EXPECT_EQ(doc["history"][3].at("type"), "parallel");

  // A failed run: the error in the record and in its step's row; show itself succeeds.
  const std::string failed = make_run("fails", "1");
  auto f = flux({"runs", "show", failed});
  EXPECT_EQ(f.code, 0) << f.err;
  EXPECT_NE(f.out.find("status    failed"), std::string::npos) << f.out;
  EXPECT_NE(f.out.find("error     node 'boom' (step 1) failed: boom: the input was refused"),
            std::string::npos)
      << f.out;
  EXPECT_NE(f.out.find("failed  node 'boom'"), std::string::npos) << f.out;
  EXPECT_NE(f.out.find("\nsteps     1 of 2 done\n"), std::string::npos) << f.out;
  expect_fits_100_columns(f.out);
}

TEST_F(FluxTool, RunsRetryAndResumeHandTheRunToADriverThroughTheStore) {
  const std::string failed = make_run("mendable", "2");  // `flaky` fails until CLI_TEST_FIXED=1
  const std::string done = make_run("double-inc", "1");
  // Refused by the run's state: exit 2 with the dashboard's 409 text; unknown: 4.
  auto wrong = flux({"runs", "resume", failed});
  EXPECT_EQ(wrong.code, 2);
  EXPECT_NE(wrong.err.find("run " + failed +
                           " is failed: resume is for interrupted or cancelled runs (retry a "
                           "failed one)"),
            std::string::npos)
      << wrong.err;
  auto ended = flux({"runs", "retry", done, "--json"});
  EXPECT_EQ(ended.code, 2);
  EXPECT_EQ(Json::parse(ended.out).at("exit_code"), 2) << ended.out;
  EXPECT_EQ(flux({"runs", "retry", "no-such-run"}).code, 4);

  auto r = flux({"runs", "retry", failed});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "retry of run " + failed +
                       " handed to a driver adopting pipeline 'mendable' (the `driver` verb of "
                       "a binary that registers it); follow it with `flux runs follow " +
                       failed + "`\n");
  auto shown = flux({"runs", "show", failed});
  EXPECT_NE(shown.out.find("\nretry     requested by flux runs retry on "), std::string::npos)
      << shown.out;
  EXPECT_NE(shown.out.find(": pending, for a driver adopting pipeline 'mendable'\n"),
            std::string::npos)
      << shown.out;
  auto j = flux({"runs", "retry", failed, "--json"});  // asked again: the later request counts
  ASSERT_EQ(j.code, 0) << j.err;
  Json answer = Json::parse(j.out);
  EXPECT_EQ(answer.at("run_id"), failed);
  EXPECT_EQ(answer.at("requested"), "retry");
  EXPECT_EQ(answer.at("status"), "failed");
  EXPECT_EQ(answer.at("pipeline"), "mendable");

  // The driver's environment mends the step.
  std::vector<std::string> fixed = env();
  fixed.push_back("CLI_TEST_FIXED=1");
  Background driver({k_app, "driver", "--local"}, fixed);
  Json doc;
  for (int i = 0; i < 600; ++i) {  // until the driver has retried it (up to a minute)
    doc = Json::parse(flux({"runs", "show", failed, "--json"}).out);
    if (doc.at("run").at("status") == "completed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(doc.at("run").at("status"), "completed") << doc << driver.err();
  EXPECT_EQ(doc.at("run").at("output"), 30);  // (2 + 1) * 10
  EXPECT_EQ(doc.at("run").at("steps_done"), 2);
  EXPECT_EQ(flux({"runs", "show", failed}).out.find("requested by"), std::string::npos);
  EXPECT_EQ(driver.terminate(), 0) << driver.err();
}

TEST_F(FluxTool, AnUnknownRunExits4) {
  for (const char* verb : {"show", "follow", "export"}) {
    auto r = flux({"runs", verb, "no-such-run"});
    EXPECT_EQ(r.code, 4) << verb;
    EXPECT_NE(r.err.find("run no-such-run is not in the store"), std::string::npos) << r.err;
  }
  auto j = flux({"runs", "show", "no-such-run", "--json"});
  EXPECT_EQ(j.code, 4);
  EXPECT_EQ(Json::parse(j.out).at("exit_code"), 4);
}

TEST_F(FluxTool, ACorruptRecordIsShownAsCorruptNotACrash) {
  const std::string good = make_run("double-inc", "1");
  redis.cli("SET '" + prefix + ":{bad-run}:run' 'not a flux record'");
  redis.cli("ZADD '" + prefix + ":runs' 1 bad-run");
  auto r = flux({"runs", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(good + "  double-inc  completed"), std::string::npos) << r.out;
  bool corrupt_row = false;
  for (const auto& line : lines(r.out)) {
    if (line.rfind("bad-run ", 0) == 0) {
      corrupt_row = line.find("  corrupt  ") != std::string::npos &&
                    line.find("unreadable") != std::string::npos;
    }
  }
  EXPECT_TRUE(corrupt_row) << r.out;
  EXPECT_EQ(lines(r.out).back(), "corrupt record (cannot be read): " + prefix + ":{bad-run}:run");
  Json doc = Json::parse(flux({"runs", "list", "--json"}).out);
  ASSERT_EQ(doc.at("corrupt").size(), 1u);
  EXPECT_EQ(doc["corrupt"][0].at("run_id"), "bad-run");
  EXPECT_EQ(doc["corrupt"][0].at("key"), prefix + ":{bad-run}:run");
  EXPECT_EQ(doc.at("runs").size(), 1u);

  auto show = flux({"runs", "show", "bad-run"});
  EXPECT_EQ(show.code, 5) << show.err;
  EXPECT_NE(show.err.find("corrupt record at key"), std::string::npos) << show.err;
  EXPECT_NE(show.err.find(prefix + ":{bad-run}:run"), std::string::npos) << show.err;
}

TEST_F(FluxTool, AnUnreachableStoreExits3NamingTheAddressButNotThePassword) {
  const int port = flux::test::free_port();
  const std::string url = "redis://:pw-s3cret@127.0.0.1:" + std::to_string(port);
  for (auto args : std::vector<std::vector<std::string>>{
           {"runs", "list"}, {"runs", "show", "x"}, {"workers"}, {"orphans"}}) {
    args.insert(args.begin(), k_flux);
    args.insert(args.end(), {"--store", url});
    auto r = run(args);
    EXPECT_EQ(r.code, 3) << args[1] << ": " << r.err;
    EXPECT_NE(r.err.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("pw-s3cret"), std::string::npos) << r.err;
  }
  auto none = run({k_flux, "runs", "list"});  // no --store, no FLUX_STORE
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("no store"), std::string::npos) << none.err;
  auto memory = run({k_flux, "runs", "list", "--store", "memory"});
  EXPECT_EQ(memory.code, 2);
}

TEST_F(FluxTool, RunsFollowPrintsStepsUntilTheRunEndsAndExitsWithItsResult) {
  Background slow({k_app, "run", "slow", "--input", "1500"}, env());
  const std::string id = slow.read_line();
  // The run becomes visible with its first batch of records, about a millisecond later.
  flux::test::Exit r;
  for (int i = 0; i < 50; ++i) {
    r = flux({"runs", "follow", id});
    if (r.code != 4) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(r.code, 0) << r.err;
  auto out = lines(r.out);
  ASSERT_GE(out.size(), 4u) << r.out;
  EXPECT_EQ(out[0], "following run " + id + " (pipeline slow)");
  EXPECT_EQ(out[1].rfind("SEQ", 0), 0u);
  EXPECT_EQ(out[2].rfind("0    0     nap", 0), 0u) << out[2];
  EXPECT_EQ(out[3].rfind("1    1     inc", 0), 0u) << out[3];
  EXPECT_EQ(out.back(), "run " + id + " completed: 1501");
  expect_fits_100_columns(r.out);
  EXPECT_EQ(slow.wait(std::chrono::seconds(30)), 0);

  const std::string failed = make_run("fails", "1");
  auto f = flux({"runs", "follow", failed});
  EXPECT_EQ(f.code, 1);
  EXPECT_EQ(lines(f.out).back(),
            "run " + failed + " failed: node 'boom' (step 1) failed: boom: the input was refused");
  auto fj = flux({"runs", "follow", failed, "--json"});
  EXPECT_EQ(fj.code, 1);
  Json doc = Json::parse(fj.out);
  EXPECT_EQ(doc.at("run").at("status"), "failed");
  EXPECT_EQ(doc.at("history").size(), 2u);
}

TEST_F(FluxTool, RunsCancelStopsARunAnotherProcessOwns) {
  // A 20 s step in the app's own process; the tool asks through the store, the owner stops
  // the run at its next lease renewal (lease_ttl / 3: about 3.3 s by default).
  Background slow({k_app, "run", "slow", "--input", "20000", "--wait"}, env());
  const std::string id = slow.read_line();
  flux::test::Exit r;
  for (int i = 0; i < 50; ++i) {  // visible with its first batch of records
    r = flux({"runs", "cancel", id, "--reason", "operator said so"});
    if (r.code != 4) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "run " + id + ": cancel requested; its owner stops it at its next lease renewal\n");
  // Cancelled long before its 20 s step ends (the bound is half of it). The app's process
  // itself lingers until the abandoned step returns (a Runtime waits for its threads).
  Json doc;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    doc = Json::parse(flux({"runs", "show", id, "--json"}).out);
  } while (doc.at("run").at("status") == "running" && std::chrono::steady_clock::now() < until);
  EXPECT_EQ(doc.at("run").at("status"), "cancelled") << doc;
  const std::string error = doc["run"].at("error").dump();
  EXPECT_NE(error.find("was cancelled by"), std::string::npos) << error;
  EXPECT_NE(error.find("operator said so"), std::string::npos) << error;
  bool cancel_entry = false;
  for (const Json& e : doc.at("history")) cancel_entry = cancel_entry || e.at("type") == "cancel";
  EXPECT_TRUE(cancel_entry) << doc["history"];
  auto listed = Json::parse(flux({"runs", "list", "--status", "cancelled", "--json"}).out);
  ASSERT_EQ(listed.at("runs").size(), 1u) << listed;
  EXPECT_EQ(listed["runs"][0].at("id"), id);

  // Again: it has ended; an unknown run is exit 4.
  auto again = flux({"runs", "cancel", id});
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, "run " + id + " had already ended: cancelled\n");
  auto j = Json::parse(flux({"runs", "cancel", id, "--json"}).out);
  EXPECT_EQ(
      j, Json::parse(R"({"run_id": ")" + id + R"(", "cancelled": false, "status": "cancelled"})"));
  EXPECT_EQ(flux({"runs", "cancel", "no-such-run"}).code, 4);
}

TEST_F(FluxTool, CompensatedRunsAreListedByStatusAndShowTheirCompensations) {
  // A saga run by a Runtime on the same store: "reserve" completes, "pay" fails, "reserve" is
  // undone.
  auto reserve = flux::node("reserve", [](std::int64_t x) { return x + 1; })
                     .compensate([](std::int64_t) {});
  auto pay = flux::node("pay", [](std::int64_t) -> std::int64_t {
    throw std::runtime_error("declined");
  });
  std::string id;
  {
    flux::Runtime rt(flux::Config{.store = redis.url(), .key_prefix = prefix});
    flux::RunResult r = rt.run((reserve | pay).named("saga"), 1);
    ASSERT_EQ(r.status, flux::RunStatus::compensated);
    id = r.run_id;
  }
  auto listed = Json::parse(flux({"runs", "list", "--status", "compensated", "--json"}).out);
  ASSERT_EQ(listed.at("runs").size(), 1u) << listed;
  EXPECT_EQ(listed["runs"][0].at("id"), id);
  EXPECT_EQ(listed["runs"][0].at("status"), "compensated");
  auto none = Json::parse(flux({"runs", "list", "--status", "compensation_failed", "--json"}).out);
  EXPECT_TRUE(none.at("runs").empty()) << none;
  auto doc = Json::parse(flux({"runs", "show", id, "--json"}).out);
  std::vector<std::string> types;
  for (const Json& e : doc.at("history")) types.push_back(e.at("type"));
  EXPECT_EQ(types, (std::vector<std::string>{"node", "node", "compensating", "compensate"}));
  auto table = flux({"runs", "show", id});
  EXPECT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("status    compensated"), std::string::npos) << table.out;
  // The compensation's row says its step was undone (a forward step's says ok).
  bool undone_row = false;
  for (const auto& line : lines(table.out)) {
    undone_row = undone_row || (line.find(" reserve ") != std::string::npos &&
                                line.find(" undone") != std::string::npos);
  }
  EXPECT_TRUE(undone_row) << table.out;
  expect_fits_100_columns(table.out);
}

TEST_F(FluxTool, FollowingAnOrphanSaysSoAndStopsAtItsTimeout) {
  auto submitted = run({k_app, "run", "double-inc", "--input", "1", "--submit"}, env());
  ASSERT_EQ(submitted.code, 0) << submitted.err;
  const std::string id = lines(submitted.out).at(0);
  auto r = flux({"runs", "follow", id, "--timeout", "0.5"});
  EXPECT_EQ(r.code, 7) << r.err;
  EXPECT_NE(r.err.find("run " + id + " has no owner now (an orphan)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("has not ended within"), std::string::npos) << r.err;

  auto o = flux({"orphans"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find(id + "  double-inc"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("(none: submitted)"), std::string::npos) << o.out;
  expect_fits_100_columns(o.out);
  Json doc = Json::parse(flux({"orphans", "--json"}).out);
  ASSERT_EQ(doc.at("orphans").size(), 1u);
  EXPECT_EQ(doc["orphans"][0].at("id"), id);
  EXPECT_EQ(doc["orphans"][0].at("status"), "running");

  // Resumed: no orphans any more.
  ASSERT_EQ(run({k_app, "resume", id}, env()).code, 0);
  auto none = flux({"orphans"});
  EXPECT_EQ(none.out, "no orphans\n");
  EXPECT_TRUE(Json::parse(flux({"orphans", "--json"}).out).at("orphans").empty());
}

TEST_F(FluxTool, WorkersListsTheLiveWorkersAndTheirNodes) {
  auto empty = flux({"workers"});
  EXPECT_EQ(empty.code, 0) << empty.err;
  EXPECT_EQ(empty.out, "no workers\n");
  std::vector<std::string> worker_env = env();
  worker_env.insert(worker_env.end(), {"FLUX_ID=tool-worker-1", "FLUX_CAPACITY=3"});
  Background worker({k_app, "worker"}, worker_env);
  const std::string hello = worker.read_line();
  ASSERT_EQ(hello.rfind("worker tool-worker-1 serving", 0), 0u) << hello;
  const std::string port = hello.substr(hello.rfind(':') + 1);

  auto r = flux({"workers"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto out = lines(r.out);
  ASSERT_EQ(out.size(), 2u) << r.out;
  for (const char* col : {"ID", "ADDRESS", "LOAD", "TLS", "UP", "BEAT", "TTL", "NODES"}) {
    EXPECT_NE(out[0].find(col), std::string::npos) << col;
  }
  EXPECT_EQ(out[1].rfind("tool-worker-1  127.0.0.1:" + port + "  0/3   no", 0), 0u) << out[1];
  EXPECT_NE(out[1].find("boom, dbl, flaky, inc, nap, special"), std::string::npos) << out[1];
  expect_fits_100_columns(r.out);

  Json doc = Json::parse(flux({"workers", "--json"}).out);
  ASSERT_EQ(doc.at("workers").size(), 1u);
  const Json& w = doc["workers"][0];
  EXPECT_EQ(w.at("id"), "tool-worker-1");
  EXPECT_EQ(w.at("host"), "127.0.0.1");
  EXPECT_EQ(std::to_string(w.at("port").get<int>()), port);
  EXPECT_EQ(w.at("capacity"), 3);
  EXPECT_EQ(w.at("tls"), false);
  EXPECT_EQ(w.at("pid"), worker.pid());
  EXPECT_EQ(w.at("protocol").get<std::string>().rfind("flux-wire-", 0), 0u) << w;
  EXPECT_GT(w.at("expires_in_ms").get<int>(), 0);
  EXPECT_EQ(w.at("busy"), 0);
  EXPECT_TRUE(w.at("last_heartbeat").is_string()) << w;
  ASSERT_EQ(w.at("nodes").size(), 6u);
  EXPECT_EQ(w["nodes"][3], Json::parse(R"({"name": "inc", "signature": "(int64) -> int64"})"));

  // Busy: a 3 s step on the worker shows in its next heartbeats (every 0.5 s).
  Background slow({k_app, "run", "slow", "--input", "3000", "--cluster", "--wait"}, env());
  int busy = 0;
  std::string last_doc;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (busy == 0 && std::chrono::steady_clock::now() < until) {
    last_doc = flux({"workers", "--json"}).out;
    Json d = Json::parse(last_doc);
    if (d.at("workers").size() == 1) busy = d["workers"][0].at("busy").get<int>();
    if (busy == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(busy, 1) << last_doc;
  EXPECT_NE(flux({"workers"}).out.find("1/3"), std::string::npos);
  EXPECT_EQ(slow.wait(std::chrono::seconds(30)), 0) << slow.err();

  EXPECT_EQ(worker.terminate(), 0) << worker.err();
  EXPECT_EQ(flux({"workers"}).out, "no workers\n");  // a drained worker withdraws its card
}

TEST_F(FluxTool, ExportWritesTheRunAsJsonOrAsAChromeTraceWithALanePerWorker) {
  std::vector<std::string> worker_env = env();
  worker_env.push_back("FLUX_ID=trace-worker");
  Background worker({k_app, "worker"}, worker_env);
  ASSERT_EQ(worker.read_line().rfind("worker trace-worker serving", 0), 0u);
  // inc and dbl on the worker, nap and special kept on the run's owner.
  const std::string id =
      make_run("special", "3", {"--cluster", "--local-nodes", "nap,special", "--wait"});
  EXPECT_EQ(worker.terminate(), 0) << worker.err();

  auto as_json = flux({"runs", "export", id, "--format", "json"});
  ASSERT_EQ(as_json.code, 0) << as_json.err;
  Json doc = Json::parse(as_json.out);
  EXPECT_EQ(doc.at("run").at("id"), id);
  EXPECT_EQ(doc.at("history").size(), 5u);

  const std::string file = ::testing::TempDir() + "/trace-" + prefix + ".json";
  auto t = flux({"runs", "export", id, "--format", "trace", "--output", file});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_EQ(t.out, "run " + id + " exported as trace to " + file + "\n");
  std::ifstream in(file);
  Json trace = Json::parse(in);      // throws (fails the test) if it is not valid JSON
  std::map<int, std::string> lanes;  // tid -> thread name
  std::vector<Json> slices;
  for (const Json& e : trace.at("traceEvents")) {
    if (e.at("ph") == "M" && e.at("name") == "thread_name") {
      lanes[e.at("tid")] = e.at("args").at("name");
    }
    if (e.at("ph") == "X") slices.push_back(e);
  }
  ASSERT_EQ(slices.size(), 5u) << trace;       // one per step
  std::map<std::string, std::string> lane_of;  // node -> lane name
  for (const Json& s : slices) {
    EXPECT_EQ(s.at("pid"), 1);
    EXPECT_GE(s.at("ts").get<double>(), 0.0);
    EXPECT_GE(s.at("dur").get<double>(), 0.0);
    std::string name = s.at("name");
    lane_of[name.substr(0, name.find(' '))] = lanes.at(s.at("tid"));
  }
  EXPECT_EQ(lane_of.at("inc"), "worker trace-worker");
  EXPECT_EQ(lane_of.at("dbl"), "worker trace-worker");
  EXPECT_EQ(lane_of.at("nap").rfind("owner ", 0), 0u) << lane_of.at("nap");
  EXPECT_EQ(lane_of.at("special").rfind("owner ", 0), 0u);
  EXPECT_EQ(lane_of.at("parallel").rfind("owner ", 0), 0u);
  std::set<std::string> names;
  for (const auto& [tid, name] : lanes) names.insert(name);
  EXPECT_EQ(names.size(), 2u) << trace;  // one lane per worker (the owner counts as one)
  EXPECT_EQ(trace.at("otherData").at("run_id"), id);
  std::remove(file.c_str());

  auto bad = flux({"runs", "export", id, "--format", "csv"});
  EXPECT_EQ(bad.code, 2);
}

TEST_F(FluxTool, HelpIsThereAtEveryLevel) {
  auto top = run({k_flux, "--help"});
  EXPECT_EQ(top.code, 0);
  for (const char* s : {"runs", "workers", "orphans", "--store", "FLUX_STORE", "--json"}) {
    EXPECT_NE(top.out.find(s), std::string::npos) << s;
  }
  auto runs = run({k_flux, "runs", "--help"});
  EXPECT_EQ(runs.code, 0);
  for (const char* s : {"list", "show", "follow", "export", "cancel", "resume", "retry"}) {
    EXPECT_NE(runs.out.find(s), std::string::npos) << s;
  }
  auto list = run({k_flux, "runs", "list", "--help"});
  EXPECT_EQ(list.code, 0);
  for (const char* s : {"--status", "--pipeline", "--limit", "--cursor"}) {
    EXPECT_NE(list.out.find(s), std::string::npos) << s;
  }
  for (auto args : std::vector<std::vector<std::string>>{{"runs", "show", "--help"},
                                                         {"runs", "follow", "--help"},
                                                         {"runs", "export", "--help"},
                                                         {"runs", "resume", "--help"},
                                                         {"runs", "retry", "--help"},
                                                         {"workers", "--help"},
                                                         {"orphans", "--help"}}) {
    args.insert(args.begin(), k_flux);
    EXPECT_EQ(run(args).code, 0) << args[1];
  }
  EXPECT_EQ(run({k_flux}).code, 2);
  EXPECT_EQ(run({k_flux, "runs"}).code, 2);
  EXPECT_EQ(run({k_flux, "runs", "show"}).code, 2);  // the run id is required
}

}  // namespace
