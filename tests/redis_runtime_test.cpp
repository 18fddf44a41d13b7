// Runs on a real redis-server: runs recorded in Redis, read back by another Runtime and
// another process; the store's faults — unreachable, wrong password, restarted mid-run,
// down past the deadline, corrupt records — each give a clear error and lose nothing
// acknowledged.

#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <flux/flux.hpp>
#include <sstream>
#include <thread>

#include "support/redis_server.hpp"

namespace {

using namespace std::chrono_literals;
using flux::test::RedisServer;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string unique_prefix(const char* name) {
  static std::atomic<int> n{0};
  return std::string("t") + name + std::to_string(n++);
}

flux::Pipeline demo_pipeline() {
  auto inc = flux::node("inc", [](std::int64_t x) { return x + 1; });
  auto dbl = flux::node("dbl", [](std::int64_t x) { return x * 2; });
  auto sq = flux::node("sq", [](std::int64_t x) { return x * x; });
  auto add = flux::node("add", [](std::int64_t a, std::int64_t b, flux::Context& ctx) {
    ctx.save("last_sum", a + b);
    ctx.shared().add("adds", 1);
    return a + b;
  });
  return (inc | flux::parallel(dbl, sq) | add).named("demo");
}

flux::Pipeline chain(int n, std::function<void(int)> at_step = {}) {
  std::vector<flux::Pipeline> steps;
  for (int i = 0; i < n; ++i) {
    steps.push_back(flux::node("step" + std::to_string(i), [i, at_step](std::int64_t x) {
                      if (at_step) at_step(i);
                      return x + 1;
                    }).blocking());
  }
  return flux::sequence(steps).named("chain");
}

TEST(RedisRuntime, ARunIsReadBackCompletelyByAnotherRuntime) {
  RedisServer server;
  std::string prefix = unique_prefix("readback");
  std::string id;
  {
    flux::Runtime writer(flux::Config{.store = server.url(), .key_prefix = prefix});
    auto r = writer.run(demo_pipeline(), 3);
    ASSERT_TRUE(r.ok()) << r.error->message;
    EXPECT_EQ(r.value<std::int64_t>(), 24);
    id = r.run_id;
  }
  flux::Runtime reader(flux::Config{.store = server.url(), .key_prefix = prefix});
  auto info = reader.get_run(id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->status, flux::RunStatus::completed);
  EXPECT_EQ(info->pipeline, "demo");
  EXPECT_EQ(info->fingerprint, demo_pipeline().fingerprint());
  EXPECT_EQ(info->input, flux::Value(3));
  EXPECT_EQ(info->output, flux::Value(24));
  ASSERT_TRUE(info->finished.has_value());
  ASSERT_EQ(info->history.size(), 5u);
  std::vector<std::string> steps;
  for (std::size_t i = 0; i < info->history.size(); ++i) {
    EXPECT_EQ(info->history[i].seq, i);
    steps.push_back(info->history[i].step);
  }
  EXPECT_EQ(steps.front(), "0");
  EXPECT_EQ(steps[3], "1");  // the parallel, after both branches
  EXPECT_EQ(steps.back(), "2");
  EXPECT_EQ(info->history.back().input, flux::Value(flux::Value::List{8, 16}));
  EXPECT_EQ(reader.run_keys(id), (flux::Value::Map{{"last_sum", 24}}));
  EXPECT_EQ(reader.run_keys(id, flux::Scope::shared), (flux::Value::Map{{"adds", 1}}));
  auto listed = reader.list_runs();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, id);
}

TEST(RedisRuntime, AnotherProcessListsAndReadsTheRunsOfThisOne) {
  RedisServer server;
  std::string prefix = unique_prefix("xproc");
  std::string out = flux::test::shell(std::string(FLUX_REDIS_WRITER) + " '" + server.url() + "' " +
                                      prefix + " 3");
  std::vector<std::string> ids;
  std::istringstream lines(out);
  std::string word, id, status;
  while (lines >> word >> id >> status) {
    EXPECT_EQ(word, "run");
    EXPECT_EQ(status, "completed");
    ids.push_back(id);
  }
  ASSERT_EQ(ids.size(), 3u) << out;

  flux::Runtime rt(flux::Config{.store = server.url(), .key_prefix = prefix});
  auto runs = rt.list_runs();
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].id, ids[2]);  // newest first
  EXPECT_EQ(runs[2].id, ids[0]);
  for (int i = 0; i < 3; ++i) {
    auto info = rt.get_run(ids[i]);
    ASSERT_TRUE(info.has_value());
    std::int64_t x = i + 1;
    EXPECT_EQ(info->output, flux::Value(2 * x + x * x));
    ASSERT_EQ(info->history.size(), 5u);
    EXPECT_EQ(info->history[0].node, "inc");
    EXPECT_EQ(info->history[0].input, flux::Value(i));
    auto kv = rt.run_keys(ids[i]);
    EXPECT_EQ(kv.at("sum"), flux::Value(2 * x + x * x));
    EXPECT_TRUE(contains(kv.at("note").as_string(), "written by pid"));
    EXPECT_EQ(rt.run_keys(ids[i], flux::Scope::shared).at("adds"), flux::Value(1));
  }
  EXPECT_EQ(rt.list_runs({.status = flux::RunStatus::completed}).size(), 3u);
  EXPECT_TRUE(rt.list_runs({.status = flux::RunStatus::failed}).empty());
}

TEST(RedisRuntime, UnreachableStoreAtStartNamesTheAddressAndTheCause) {
  int port = flux::test::free_port();  // nothing listens there
  auto t0 = std::chrono::steady_clock::now();
  try {
    flux::Runtime rt(flux::Config{.store = "redis://127.0.0.1:" + std::to_string(port)});
    ADD_FAILURE() << "a Runtime on an unreachable store must not start";
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::storage);
    EXPECT_EQ(std::string(e.what()),
              "cannot reach redis at 127.0.0.1:" + std::to_string(port) + ": Connection refused");
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST(RedisRuntime, WrongPasswordIsAnAuthenticationErrorThatNeverShowsThePassword) {
  RedisServer server("right-horse-battery");
  std::string url = "redis://:wrong-staple-guess@127.0.0.1:" + std::to_string(server.port());
  try {
    flux::Runtime rt(flux::Config{.store = url});
    ADD_FAILURE() << "a wrong password must be refused";
  } catch (const flux::Error& e) {
    std::string what = e.what();
    EXPECT_EQ(e.code(), flux::Errc::storage);
    EXPECT_TRUE(contains(what, "authentication failed")) << what;
    EXPECT_TRUE(contains(what, "WRONGPASS")) << what;
    EXPECT_TRUE(contains(what, "127.0.0.1:" + std::to_string(server.port()))) << what;
    EXPECT_FALSE(contains(what, "wrong-staple-guess")) << what;
    EXPECT_FALSE(contains(what, "right-horse-battery")) << what;
  }
  // The right password, from the URL and from the environment, works.
  flux::Runtime with_url(flux::Config{.store = server.url()});
  EXPECT_TRUE(with_url.run(demo_pipeline(), 1).ok());
  ::setenv("FLUX_REDIS_PASSWORD", "right-horse-battery", 1);
  flux::Runtime with_env(
      flux::Config{.store = "redis://127.0.0.1:" + std::to_string(server.port())});
  ::unsetenv("FLUX_REDIS_PASSWORD");
  EXPECT_TRUE(with_env.run(demo_pipeline(), 1).ok());
}

TEST(RedisRuntime, TheStoreComesFromFluxStoreWhenConfigNamesNone) {
  RedisServer server;
  std::string prefix = unique_prefix("env");
  ::setenv("FLUX_STORE", server.url().c_str(), 1);
  std::string id;
  {
    flux::Runtime rt(flux::Config{.key_prefix = prefix});
    id = rt.run(demo_pipeline(), 2).run_id;
  }
  ::unsetenv("FLUX_STORE");
  flux::Runtime reader(flux::Config{.store = server.url(), .key_prefix = prefix});
  ASSERT_TRUE(reader.get_run(id).has_value());
  EXPECT_EQ(reader.get_run(id)->output, flux::Value(3 * 2 + 9));
}

TEST(RedisRuntime, BadStoreUrlsAreRefusedWithoutEchoingThePassword) {
  for (std::string url : {"redis://:pw-secret@127.0.0.1:notaport", "redis://:pw-secret@:6379",
                          "postgres://user:pw-secret@host/db"}) {
    try {
      flux::Runtime rt(flux::Config{.store = url});
      ADD_FAILURE() << "accepted " << url;
    } catch (const flux::Error& e) {
      EXPECT_EQ(e.code(), flux::Errc::invalid_argument) << e.what();
      EXPECT_FALSE(contains(e.what(), "pw-secret")) << e.what();
    }
  }
}

TEST(RedisRuntime, NoMalformedStoreUrlEverShowsThePassword) {
  // A real server with a password, so that URLs which parse reach it and fail there.
  RedisServer server("pw-secret");
  const std::string port = std::to_string(server.port());
  const std::vector<std::string> urls = {
      "default:pw-secret@127.0.0.1:" + port,           // no scheme
      ":pw-secret@127.0.0.1:" + port,                  // no scheme, no user
      "pw-secret@127.0.0.1:" + port,                   // no scheme, password only
      "redis:/default:pw-secret@127.0.0.1:" + port,    // one slash missing
      "redis//default:pw-secret@127.0.0.1:" + port,    // colon missing
      "redis:default:pw-secret@127.0.0.1:" + port,     // both slashes missing
      "rediss://default:pw-secret@127.0.0.1:" + port,  // an unsupported scheme
      "Redis://default:pw-secret@127.0.0.1:" + port,   // wrong case
      " redis://default:pw-secret@127.0.0.1:" + port,  // a leading space
      "redis://default:pw-secret@127.0.0.1:notaport",  // a bad port
      "redis://default:pw-secret@127.0.0.1:" + port + "/notadb",
      "redis://default:pw-secret@127.0.0.1:" + port + "/99999999999",
      "redis://default:pw-secret@",                         // no host
      "redis://default:pw-secret",                          // '@' forgotten: "pw-secret" as port
      "redis://default:pw-secret:127.0.0.1:" + port,        // ':' typed for '@'
      "redis://pw-secret:127.0.0.1:" + port,                // ':' typed for '@', no user
      "redis://default:pw-secret@[::1:" + port,             // unclosed IPv6 bracket
      "redis://default:pw-secret@127.0.0.1 " + port,        // a space for ':'
      "redis://default:wrong-pw-secret@127.0.0.1:" + port,  // parses; wrong password
      "redis://default:pw-secret@127.0.0.1:1",              // parses; nothing listens there
  };
  for (const std::string& url : urls) {
    try {
      flux::Runtime rt(flux::Config{.store = url});
      ADD_FAILURE() << "accepted a malformed store URL";
    } catch (const flux::Error& e) {
      EXPECT_FALSE(contains(e.what(), "pw-secret")) << e.what();
      EXPECT_FALSE(std::string(e.what()).empty());
    }
  }
  // A well-formed URL still works.
  flux::Runtime rt(flux::Config{.store = "redis://default:pw-secret@127.0.0.1:" + port});
  EXPECT_TRUE(rt.run(demo_pipeline(), 1).ok());
}

TEST(RedisRuntime, CorruptRecordHidesNoOtherRun) {
  RedisServer server;
  std::string prefix = unique_prefix("corrupt-one");
  flux::Runtime rt(flux::Config{.store = server.url(), .key_prefix = prefix});
  auto first = rt.run(demo_pipeline(), 1);
  auto bad = rt.run(demo_pipeline(), 2);
  auto last = rt.run(demo_pipeline(), 3);
  ASSERT_TRUE(first.ok() && bad.ok() && last.ok());
  // Three orphans: running runs whose owner is gone (no lease), one of them corrupt.
  flux::Storage& store = rt.storage();
  for (const char* id : {"orphan-1", "orphan-bad", "orphan-3"}) {
    flux::RunInfo r;
    r.id = id;
    r.pipeline = "demo";
    r.created = r.updated = flux::Timestamp(std::chrono::nanoseconds(1'700'000'000'000'000'000));
    store.put_run(r);
  }
  const std::string bad_key = prefix + ":{" + bad.run_id + "}:run";
  const std::string bad_orphan_key = prefix + ":{orphan-bad}:run";
  server.cli("SET '" + bad_key + "' 'garbage'");
  server.cli("SET '" + bad_orphan_key + "' $'\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff'");

  std::vector<std::string> listed;
  for (const auto& run : rt.list_runs({.status = flux::RunStatus::completed})) {
    listed.push_back(run.id);
  }
  EXPECT_EQ(listed, (std::vector<std::string>{last.run_id, first.run_id}));
  flux::RunPage page = rt.list_runs_page({.status = flux::RunStatus::completed});
  EXPECT_EQ(page.runs.size(), 2u);
  EXPECT_EQ(page.corrupt_keys, std::vector<std::string>{bad_key});

  std::vector<std::string> orphans;
  for (const auto& run : rt.list_orphans()) orphans.push_back(run.id);
  std::sort(orphans.begin(), orphans.end());
  EXPECT_EQ(orphans, (std::vector<std::string>{"orphan-1", "orphan-3"}));
  flux::RunPage orphan_page = rt.list_orphans_page();
  EXPECT_EQ(orphan_page.runs.size(), 2u);
  EXPECT_EQ(orphan_page.corrupt_keys, std::vector<std::string>{bad_orphan_key});
  // The healthy orphans can be resumed.
  EXPECT_EQ(rt.list_runs().size(), 4u);  // 2 completed + 2 running; the corrupt two left out
}

TEST(RedisRuntime, AChildProcessOfANodeInheritsNoDescriptorOfFlux) {
  RedisServer server;
  // What this process has open before the Runtime exists (gtest's, the test's own).
  auto open_fds = [] {
    std::vector<int> fds;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
      fds.push_back(std::stoi(e.path().filename().string()));
    }
    // Without the listing's own descriptor, closed by now (and free for reuse).
    std::erase_if(fds, [](int fd) { return ::fcntl(fd, F_GETFD) < 0; });
    return fds;
  };
  const std::vector<int> before = open_fds();
  flux::Runtime rt(flux::Config{.store = server.url(), .key_prefix = unique_prefix("fds")});
  // A node that starts a child process, as a node calling a tool would, and reports the
  // sockets the child holds.
  auto spawn = flux::node("spawn", [](std::int64_t) {
    std::string out = flux::test::shell("ls -l /proc/self/fd");
    std::int64_t sockets = 0;
    for (std::size_t at = out.find("socket:"); at != std::string::npos;
         at = out.find("socket:", at + 1)) {
      ++sockets;
    }
    return sockets;
  });
  auto r = rt.run(flux::Pipeline(spawn).named("spawn"), 0);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.value<std::int64_t>(), 0) << "a child process inherited a socket";
  // And every descriptor the Runtime opened is close-on-exec.
  int opened = 0;
  for (int fd : open_fds()) {
    if (std::find(before.begin(), before.end(), fd) != before.end()) continue;
    int flags = ::fcntl(fd, F_GETFD);
    ++opened;
    EXPECT_TRUE(flags & FD_CLOEXEC) << "fd " << fd << " is not close-on-exec";
  }
  EXPECT_GE(opened, 2);  // at least the reader and the writer connection
}

TEST(RedisRuntime, RedisRestartedMidRunLosesNothingAndDuplicatesNothing) {
  RedisServer server({}, /*durable=*/true);
  std::string prefix = unique_prefix("restart");
  std::thread restarter;
  auto pipeline = chain(20, [&](int step) {
    if (step == 10) {  // kill the server under the run, bring it back 300 ms later
      server.stop();
      restarter = std::thread([&] {
        std::this_thread::sleep_for(300ms);
        server.start();
      });
    }
  });
  flux::Runtime rt(flux::Config{.store = server.url(), .key_prefix = prefix});
  auto r = rt.run(pipeline, 0);
  restarter.join();
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.value<std::int64_t>(), 20);
  auto info = rt.get_run(r.run_id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->status, flux::RunStatus::completed);
  ASSERT_EQ(info->history.size(), 20u);
  for (std::size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(info->history[i].seq, i);
    EXPECT_EQ(info->history[i].step, std::to_string(i));
    EXPECT_EQ(info->history[i].output, flux::Value(static_cast<std::int64_t>(i + 1)));
  }
}

TEST(RedisRuntime, StoreDownPastTheDeadlineFailsTheRunClearlyInsteadOfHanging) {
  RedisServer server;
  std::string prefix = unique_prefix("deadline");
  auto pipeline = chain(3, [&](int step) {
    if (step == 1) server.stop();
  });
  flux::Runtime rt(
      flux::Config{.store = server.url(), .key_prefix = prefix, .store_retry_deadline = 500ms});
  auto t0 = std::chrono::steady_clock::now();
  auto r = rt.run(pipeline, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_EQ(r.status, flux::RunStatus::failed);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_TRUE(contains(r.error->message, "redis at 127.0.0.1:" + std::to_string(server.port()) +
                                             " unavailable for 500 ms"))
      << r.error->message;
  EXPECT_TRUE(r.output.is_null());
}

TEST(RedisRuntime, CorruptRecordsAreClearErrorsNamingTheKey) {
  RedisServer server;
  std::string prefix = unique_prefix("corrupt");
  flux::Runtime rt(flux::Config{.store = server.url(), .key_prefix = prefix});
  auto r = rt.run(demo_pipeline(), 1);
  ASSERT_TRUE(r.ok());
  std::string run_key = prefix + ":{" + r.run_id + "}:run";
  std::string history_key = prefix + ":{" + r.run_id + "}:history";

  // Bytes that Cap'n Proto alone would decode as an all-default record.
  server.cli("SET '" + run_key + "' $'\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff'");
  try {
    (void)rt.get_run(r.run_id);
    ADD_FAILURE() << "a corrupt run record must not decode";
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::storage);
    EXPECT_TRUE(contains(e.what(), "corrupt record at key \"" + run_key + "\"")) << e.what();
  }
  // Listing leaves the corrupt record out and names it (see CorruptRecordHidesNoOtherRun).
  EXPECT_TRUE(rt.list_runs().empty());
  EXPECT_EQ(rt.list_runs_page({}).corrupt_keys, std::vector<std::string>{run_key});

  auto second = rt.run(demo_pipeline(), 2);
  server.cli("LSET '" + prefix + ":{" + second.run_id + "}:history' 2 'not a record'");
  try {
    (void)rt.get_run(second.run_id);
    ADD_FAILURE() << "a corrupt history entry must not decode";
  } catch (const flux::Error& e) {
    EXPECT_TRUE(contains(e.what(), prefix + ":{" + second.run_id + "}:history[2]")) << e.what();
  }
  // Resuming a run whose history cannot be decoded is refused, and changes nothing.
  auto third = rt.run(demo_pipeline() | flux::node("boom",
                                                   [](std::int64_t) -> std::int64_t {
                                                     throw std::runtime_error("boom");
                                                   }),
                      3);
  ASSERT_EQ(third.status, flux::RunStatus::failed);
  std::string third_history = prefix + ":{" + third.run_id + "}:history";
  server.cli("LSET '" + third_history + "' 0 'garbage'");
  std::string before = server.cli("--raw LRANGE '" + third_history + "' 0 -1") +
                       server.cli("--raw GET '" + prefix + ":{" + third.run_id + "}:run'");
  try {
    (void)rt.resume(third.run_id,
                    demo_pipeline() | flux::node("boom", [](std::int64_t x) { return x; }));
    ADD_FAILURE() << "resumed a run whose history cannot be read";
  } catch (const flux::Error& e) {
    EXPECT_EQ(e.code(), flux::Errc::storage) << e.what();
    EXPECT_TRUE(contains(e.what(), third_history + "[0]")) << e.what();
  }
  EXPECT_EQ(server.cli("--raw LRANGE '" + third_history + "' 0 -1") +
                server.cli("--raw GET '" + prefix + ":{" + third.run_id + "}:run'"),
            before);
  EXPECT_EQ(server.cli("--raw EXISTS '" + prefix + ":{" + third.run_id + "}:lease'"), "0\n");
  (void)history_key;
}

TEST(RedisRuntime, HistoryCanBeFollowedFromAPosition) {
  RedisServer server;
  flux::Runtime rt(flux::Config{.store = server.url(), .key_prefix = unique_prefix("tail")});
  auto r = rt.run(demo_pipeline(), 1);
  auto all = rt.history(r.run_id);
  ASSERT_EQ(all.size(), 5u);
  auto tail = rt.history(r.run_id, 3);
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0], all[3]);
  EXPECT_EQ(tail[1], all[4]);
  EXPECT_TRUE(rt.history(r.run_id, 5).empty());
}

TEST(RedisRuntime, HistoryValuesCanBeDroppedOrTruncated) {
  RedisServer server;
  auto big = flux::node(
      "big", [](std::int64_t n) { return std::string(static_cast<std::size_t>(n), 'x'); });
  auto len =
      flux::node("len", [](const std::string& s) { return static_cast<std::int64_t>(s.size()); });
  {
    flux::Runtime rt(flux::Config{.store = server.url(),
                                  .key_prefix = unique_prefix("none"),
                                  .history_values = flux::HistoryValues::none});
    auto r = rt.run(big | len, 5000);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value<std::int64_t>(), 5000);  // the run's own output is never cut
    auto info = rt.get_run(r.run_id);
    ASSERT_EQ(info->history.size(), 2u);
    EXPECT_TRUE(info->history[0].input.is_null());
    EXPECT_TRUE(info->history[0].output.is_null());
    EXPECT_EQ(info->history[0].node, "big");
  }
  {
    flux::Runtime rt(flux::Config{.store = server.url(),
                                  .key_prefix = unique_prefix("trunc"),
                                  .history_values = flux::HistoryValues::truncated,
                                  .history_value_limit = 100});
    auto r = rt.run(big | len, 5000);
    ASSERT_TRUE(r.ok());
    auto info = rt.get_run(r.run_id);
    ASSERT_EQ(info->history.size(), 2u);
    EXPECT_EQ(info->history[0].input, flux::Value(5000));  // small values are kept
    const auto& out = info->history[0].output;
    ASSERT_TRUE(out.is_map()) << out.to_string(200);
    EXPECT_EQ(out.at("truncated"), flux::Value(true));
    EXPECT_EQ(out.at("preview").as_string().size(), 100u);
    EXPECT_EQ(info->history[1].output, flux::Value(5000));
  }
}

}  // namespace

// Two adopting drivers and one retry request: the request is honoured once. The step fails
// every time, so a second driver that retried too would leave a third attempt and a second
// resume entry.
TEST(RedisRuntime, TwoAdoptingDriversHonourOneResumeRequestOnce) {
  RedisServer server;
  const std::string prefix = unique_prefix("two-drivers");
  auto inc = flux::node("inc", [](std::int64_t x) { return x + 1; });
  auto never = flux::node("never", [](std::int64_t, flux::Context& ctx) -> std::int64_t {
    throw std::runtime_error("never: attempt " + std::to_string(ctx.attempt()));
  });
  const flux::Pipeline pipeline = (inc | never).named("never-works");
  flux::Config config{.store = server.url(), .key_prefix = prefix};
  std::string id;
  {
    flux::Runtime rt(config);
    id = rt.run(pipeline, std::int64_t{1}).run_id;
  }
  flux::Registry registry;
  registry.add(pipeline);
  flux::Config driver = config;
  driver.cluster.adopt = registry;
  driver.cluster.adopt_interval = 20ms;
  flux::Runtime reader(config);
  const std::string ids[] = {id};
  {
    flux::Runtime a(driver), b(driver);
    reader.storage().request_resume(
        id, flux::ResumeRequest{flux::ResumeRequest::Verb::retry, "the test", {}, std::nullopt});
    // Until the request is cleared and the retried run has failed again.
    for (int i = 0; i < 3000; ++i) {
      auto run = reader.get_run(id);
      if (!reader.storage().resume_requests(ids).at(0) && run &&
          run->status == flux::RunStatus::failed && run->history.size() == 4) {
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
  }  // both drivers stop: every pass they began has ended
  auto run = reader.get_run(id);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, flux::RunStatus::failed);
  ASSERT_TRUE(run->error);
  EXPECT_NE(run->error->message.find("never: attempt 2"), std::string::npos) << run->error->message;
  std::vector<std::string> entries;
  for (const auto& e : run->history) entries.push_back(e.node + "#" + std::to_string(e.attempt));
  EXPECT_EQ(entries, (std::vector<std::string>{"inc#1", "never#1", "resume#1", "never#2"}));
  EXPECT_FALSE(reader.storage().resume_requests(ids).at(0));
  EXPECT_EQ(run->steps_done, std::optional<std::uint32_t>(1));
  EXPECT_EQ(run->steps_total, std::optional<std::uint32_t>(2));
}
