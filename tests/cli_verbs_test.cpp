// The verbs flux::main gives a user's binary (worker, run, resume, driver), run as real
// processes (tests/cli_app_main.cpp) against a real redis-server: their text and JSON output
// and their exit codes.
#include <gtest/gtest.h>

#include <flux/flux.hpp>
#include <nlohmann/json.hpp>
#include <regex>
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

bool is_run_id(const std::string& s) {
  static const std::regex uuid(
      "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  return std::regex_match(s, uuid);
}

class CliVerbs : public ::testing::Test {
 protected:
  flux::test::RedisServer& redis = flux::test::shared_redis();
  std::string prefix = flux::test::unique_prefix("cliverbs");
  std::vector<std::string> store() const { return {"--store", redis.url(), "--prefix", prefix}; }
  std::vector<std::string> app(std::vector<std::string> args, bool with_store = true) const {
    std::vector<std::string> argv{k_app};
    argv.insert(argv.end(), args.begin(), args.end());
    if (with_store) {
      auto s = store();
      argv.insert(argv.end(), s.begin(), s.end());
    }
    return argv;
  }
  std::optional<flux::RunInfo> stored(const std::string& id) const {
    flux::Runtime rt(flux::Config{.store = redis.url(), .key_prefix = prefix});
    return rt.get_run(id);
  }
};

TEST_F(CliVerbs, RunWaitPrintsTheRunIdThenTheOutputAndExits0) {
  auto r = run(app({"run", "double-inc", "--input", "3", "--wait"}));
  ASSERT_EQ(r.code, 0) << r.err;
  auto out = lines(r.out);
  ASSERT_EQ(out.size(), 2u) << r.out;
  EXPECT_TRUE(is_run_id(out[0])) << out[0];
  EXPECT_EQ(out[1], "8");
  auto info = stored(out[0]);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, flux::RunStatus::completed);
  EXPECT_EQ(info->pipeline, "double-inc");
  EXPECT_EQ(info->output, flux::Value(8));
}

TEST_F(CliVerbs, RunWithoutWaitPrintsOnlyTheRunId) {
  auto r = run(app({"run", "double-inc", "--input", "5"}));
  ASSERT_EQ(r.code, 0) << r.err;
  auto out = lines(r.out);
  ASSERT_EQ(out.size(), 1u) << r.out;
  EXPECT_TRUE(is_run_id(out[0]));
  EXPECT_EQ(stored(out[0])->output, flux::Value(12));
}

TEST_F(CliVerbs, RunJsonIsOneDocumentWithStableFields) {
  auto r = run(app({"run", "double-inc", "--input", "3", "--wait", "--json"}));
  ASSERT_EQ(r.code, 0) << r.err;
  Json j = Json::parse(r.out);
  EXPECT_TRUE(is_run_id(j.at("run_id").get<std::string>()));
  EXPECT_EQ(j.at("status"), "completed");
  EXPECT_EQ(j.at("output"), 8);
  EXPECT_TRUE(j.at("error").is_null());
}

TEST_F(CliVerbs, NanInfinityAndBytesAreRenderedAsJsonStrings) {
  auto r = run(app({"run", "special", "--input", "3", "--wait", "--json"}));
  ASSERT_EQ(r.code, 0) << r.err;
  Json out = Json::parse(r.out).at("output");
  EXPECT_EQ(out, Json::parse(R"(["NaN", "Infinity", "-Infinity", 0.5, {"$bytes": "Zmw="}])"));
  auto text = run(app({"run", "special", "--input", "3", "--wait"}));
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_EQ(lines(text.out).at(1), R"(["NaN","Infinity","-Infinity",0.5,{"$bytes":"Zmw="}])");
}

TEST_F(CliVerbs, AFailedRunExits1AndSaysWhy) {
  auto r = run(app({"run", "fails", "--input", "1", "--wait"}));
  EXPECT_EQ(r.code, 1);
  auto out = lines(r.out);
  ASSERT_EQ(out.size(), 1u) << r.out;
  EXPECT_NE(r.err.find("run " + out[0] + " failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("boom: the input was refused"), std::string::npos) << r.err;
  auto j = run(app({"run", "fails", "--input", "1", "--wait", "--json"}));
  EXPECT_EQ(j.code, 1);
  Json doc = Json::parse(j.out);
  EXPECT_EQ(doc.at("status"), "failed");
  EXPECT_EQ(doc.at("error").at("node"), "boom");
  EXPECT_EQ(doc.at("error").at("step"), "1");
}

TEST_F(CliVerbs, AnUnknownPipelineExits2ListingTheRegisteredOnes) {
  auto r = run(app({"run", "nope", "--input", "1"}));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown pipeline 'nope'; registered pipelines: double-inc, fails, "
                       "mendable, slow, special"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(CliVerbs, MalformedInputJsonExits2WithThePosition) {
  auto r = run(app({"run", "double-inc", "--input", "{\"a\": [1, 2,}"}));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--input is not valid JSON (byte 13)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line 1, column 13"), std::string::npos) << r.err;
  auto big = run(app({"run", "double-inc", "--input", "18446744073709551615"}));
  EXPECT_EQ(big.code, 2);
  EXPECT_NE(big.err.find("larger than int64"), std::string::npos) << big.err;
  auto deep =
      run(app({"run", "double-inc", "--input", std::string(61, '[') + std::string(61, ']')}));
  EXPECT_EQ(deep.code, 2);
  EXPECT_NE(deep.err.find("deeper than 60 levels"), std::string::npos) << deep.err;
}

TEST_F(CliVerbs, AnInputOfTheWrongTypeFailsTheRunNamingTheNode) {
  auto r = run(app({"run", "double-inc", "--input", "\"three\"", "--wait"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("inc"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("int64"), std::string::npos) << r.err;
}

TEST_F(CliVerbs, AnUnreachableStoreExits3NamingTheAddressButNotThePassword) {
  const int port = flux::test::free_port();
  const std::string url = "redis://:s3cret-pw@127.0.0.1:" + std::to_string(port);
  for (auto args :
       std::vector<std::vector<std::string>>{{"run", "double-inc", "--input", "1", "--wait"},
                                             {"resume", "some-run"},
                                             {"worker"},
                                             {"driver"}}) {
    args.insert(args.end(), {"--store", url});
    auto r = run(app(args, false));
    EXPECT_EQ(r.code, 3) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("s3cret"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("s3cret"), std::string::npos) << r.out;
  }
}

TEST_F(CliVerbs, OptionsComeFromEnvironmentVariables) {
  auto r = run({k_app, "run", "double-inc", "--input", "10", "--wait"},
               {"FLUX_STORE=" + redis.url(), "FLUX_KEY_PREFIX=" + prefix});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines(r.out).at(1), "22");
  EXPECT_TRUE(stored(lines(r.out).at(0)));  // in the store and under the prefix given
}

TEST_F(CliVerbs, HelpIsThereAtEveryLevelAndNamesTheEnvironmentVariables) {
  auto top = run({k_app, "--help"});
  EXPECT_EQ(top.code, 0);
  for (const char* verb : {"worker", "run", "resume", "driver", "Exit codes"}) {
    EXPECT_NE(top.out.find(verb), std::string::npos) << verb << "\n" << top.out;
  }
  auto worker = run({k_app, "worker", "--help"});
  EXPECT_EQ(worker.code, 0);
  for (const char* opt : {"--store", "FLUX_STORE", "--listen", "FLUX_LISTEN", "--capacity",
                          "FLUX_CAPACITY", "--id", "FLUX_ID", "--advertise", "FLUX_ADVERTISE",
                          "--tls-cert", "FLUX_TLS_CERT", "--port", "FLUX_PORT"}) {
    EXPECT_NE(worker.out.find(opt), std::string::npos) << opt << "\n" << worker.out;
  }
  for (const char* verb : {"run", "resume", "driver"}) {
    auto h = run({k_app, verb, "--help"});
    EXPECT_EQ(h.code, 0) << verb;
    EXPECT_NE(h.out.find("--store"), std::string::npos) << h.out;
  }
  auto none = run({k_app});
  EXPECT_EQ(none.code, 2);
  auto unknown = run({k_app, "frobnicate"});
  EXPECT_EQ(unknown.code, 2);
  auto bad_option = run({k_app, "run", "double-inc", "--frob"});
  EXPECT_EQ(bad_option.code, 2);
  EXPECT_NE(bad_option.err.find("--frob"), std::string::npos) << bad_option.err;
}

TEST_F(CliVerbs, ResumeOfAnUnknownRunExits4) {
  auto r = run(app({"resume", "no-such-run"}));
  EXPECT_EQ(r.code, 4);
  EXPECT_NE(r.err.find("run no-such-run is not in the store"), std::string::npos) << r.err;
  auto neither = run(app({"resume"}));
  EXPECT_EQ(neither.code, 2);
}

TEST_F(CliVerbs, ResumeOfARunALiveProcessOwnsExits6NamingTheOwner) {
  Background slow(app({"run", "slow", "--input", "3000"}));
  const std::string id = slow.read_line();
  flux::test::Exit r;
  for (int i = 0; i < 50; ++i) {  // the run is stored with its first batch, ~1 ms after start
    r = run(app({"resume", id}));
    if (r.code != 4) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_NE(r.err.find("run " + id + " is owned by "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("resume refused"), std::string::npos) << r.err;
  EXPECT_EQ(slow.wait(std::chrono::seconds(30)), 0) << slow.err();
}

TEST_F(CliVerbs, ResumeOfACorruptRecordExits5NamingItsKey) {
  redis.cli("SET '" + prefix + ":{bad-run}:run' 'not a flux record'");
  auto r = run(app({"resume", "bad-run"}));
  EXPECT_EQ(r.code, 5) << r.err;
  EXPECT_NE(r.err.find("corrupt record at key \"" + prefix + ":{bad-run}:run\""), std::string::npos)
      << r.err;
  auto j = run(app({"resume", "bad-run", "--json"}));
  EXPECT_EQ(j.code, 5);
  Json doc = Json::parse(j.out);  // one document, also for an error
  EXPECT_EQ(doc.at("exit_code"), 5);
  EXPECT_NE(doc.at("error").get<std::string>().find("corrupt record"), std::string::npos);
}

TEST_F(CliVerbs, ResumeFinishesAFailedRunFromItsFailedStep) {
  auto failed = run(app({"run", "mendable", "--input", "4", "--wait"}));
  ASSERT_EQ(failed.code, 1) << failed.err;
  const std::string id = lines(failed.out).at(0);
  auto again = run(app({"resume", id}), {"CLI_TEST_FIXED=1"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(lines(again.out), (std::vector<std::string>{id, "50"}));
  auto info = stored(id);
  EXPECT_EQ(info->status, flux::RunStatus::completed);
  int flaky_attempts = 0;
  for (const auto& e : info->history) {
    if (e.node == "flaky") ++flaky_attempts;
    if (e.node == "inc") {
      EXPECT_EQ(e.attempt, 1u);  // never executed again
    }
  }
  EXPECT_EQ(flaky_attempts, 2);
}

TEST_F(CliVerbs, SubmittedRunsAreOrphansThatResumeOrphansFinishes) {
  auto a = run(app({"run", "double-inc", "--input", "1", "--submit"}));
  auto b = run(app({"run", "double-inc", "--input", "2", "--submit", "--json"}));
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  const std::string id_a = lines(a.out).at(0);
  const std::string id_b = Json::parse(b.out).at("run_id");
  EXPECT_EQ(Json::parse(b.out).at("status"), "submitted");
  EXPECT_EQ(stored(id_a)->status, flux::RunStatus::running);
  auto r = run(app({"resume", "--orphans", "--json"}));
  ASSERT_EQ(r.code, 0) << r.err;
  Json doc = Json::parse(r.out);
  std::map<std::string, Json> outputs;
  for (const Json& run : doc.at("resumed")) outputs[run.at("run_id")] = run.at("output");
  EXPECT_EQ(outputs.size(), 2u) << doc;
  EXPECT_EQ(outputs[id_a], 4);
  EXPECT_EQ(outputs[id_b], 6);
  EXPECT_TRUE(doc.at("skipped").empty()) << doc;
  auto none = run(app({"resume", "--orphans"}));
  EXPECT_EQ(none.code, 0);
  EXPECT_EQ(none.out, "no orphans\n");
}

TEST_F(CliVerbs, ADriverRunsSubmittedRunsAndStopsOnSigterm) {
  Background driver(app({"driver", "--local"}));
  const std::string hello = driver.read_line();
  EXPECT_NE(hello.find("adopting double-inc, fails, mendable, slow, special (node steps here)"),
            std::string::npos)
      << hello;
  auto r =
      run(app({"run", "double-inc", "--input", "20", "--submit", "--wait", "--timeout", "30"}));
  ASSERT_EQ(r.code, 0) << r.err << driver.err();
  auto out = lines(r.out);
  ASSERT_EQ(out.size(), 2u) << r.out;
  EXPECT_EQ(out[1], "42");
  auto failed = run(app({"run", "fails", "--input", "1", "--submit", "--wait", "--json"}));
  EXPECT_EQ(failed.code, 1) << failed.err;
  EXPECT_EQ(Json::parse(failed.out).at("status"), "failed");
  EXPECT_EQ(driver.terminate(), 0) << driver.err();
  EXPECT_NE(driver.err().find("SIGTERM"), std::string::npos) << driver.err();
}

TEST_F(CliVerbs, SubmitWaitGivesUpAfterTheTimeoutWithExit7) {
  auto r =
      run(app({"run", "double-inc", "--input", "1", "--submit", "--wait", "--timeout", "0.3"}));
  EXPECT_EQ(r.code, 7) << r.err;
  EXPECT_NE(r.err.find("has not ended within 0.3 s"), std::string::npos) << r.err;
}

TEST_F(CliVerbs, AWorkerServesClusterRunsAndDrainsOnSigterm) {
  Background worker({k_app, "worker"},
                    {"FLUX_STORE=" + redis.url(), "FLUX_KEY_PREFIX=" + prefix,
                     "FLUX_ID=cli-worker-1", "FLUX_CAPACITY=2", "FLUX_LISTEN=127.0.0.1"});
  const std::string hello = worker.read_line();
  EXPECT_EQ(
      hello.rfind("worker cli-worker-1 serving boom dbl flaky inc nap special on 127.0.0.1:", 0),
      0u)
      << hello;
  auto r = run(app({"run", "double-inc", "--input", "3", "--wait", "--cluster"}));
  ASSERT_EQ(r.code, 0) << r.err << worker.err();
  EXPECT_EQ(lines(r.out).at(1), "8");
  auto info = stored(lines(r.out).at(0));
  ASSERT_TRUE(info);
  std::vector<std::string> workers;
  for (const auto& e : info->history) workers.push_back(e.node + "@" + e.worker);
  EXPECT_EQ(workers, (std::vector<std::string>{"inc@cli-worker-1", "dbl@cli-worker-1"}));
  // --local-nodes keeps a node on the process that drives the run.
  auto local = run(
      app({"run", "double-inc", "--input", "3", "--wait", "--cluster", "--local-nodes", "dbl"}));
  ASSERT_EQ(local.code, 0) << local.err;
  workers.clear();
  const auto local_info = stored(lines(local.out).at(0));
  ASSERT_TRUE(local_info);
  for (const auto& e : local_info->history) workers.push_back(e.node + "@" + e.worker);
  EXPECT_EQ(workers, (std::vector<std::string>{"inc@cli-worker-1", "dbl@"}));
  EXPECT_EQ(worker.terminate(), 0) << worker.err();
  EXPECT_NE(worker.err().find("worker cli-worker-1 drained"), std::string::npos) << worker.err();
}

TEST_F(CliVerbs, AWorkerWithABadConfigurationExits2) {
  auto r = run(app({"worker", "--listen", "0.0.0.0"}));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("plaintext"), std::string::npos) << r.err;
  auto tls = run(
      app({"worker", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/x", "--tls-ca", "/y"}));
  EXPECT_EQ(tls.code, 2) << tls.err;
  EXPECT_NE(tls.err.find("/nonexistent/cert.pem"), std::string::npos) << tls.err;
}

}  // namespace
