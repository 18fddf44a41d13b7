// Crash and resume with real processes on a real Redis: a worker runs a 1,010-node
// pipeline (a chain with a parallel in the middle) and SIGKILLs itself right after the
// side effect of a chosen step; a new process resumes the run from the store.
//
// Asserted: the output equals an uninterrupted run's; every step recorded before the kill
// executed exactly once, every other step at least once and at most twice; no history
// entry written before the kill is missing; and of several processes racing for an
// orphaned run's lease, exactly one gets it.

#include <gtest/gtest.h>

#include <chrono>
#include <flux/flux.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "support/redis_server.hpp"

namespace {

using namespace std::chrono_literals;
using flux::test::RedisServer;
using flux::test::shell;

constexpr std::int64_t k_uninterrupted_output = 1509;  // 500 + 10 + (510 + 510) + 489

std::string worker(const std::string& args) {
  return shell(std::string(FLUX_CRASH_WORKER) + " " + args + " 2>&1");
}

std::string field(const std::string& out, const std::string& word) {
  std::istringstream in(out);
  std::string w, value;
  while (in >> w) {
    if (w == word && in >> value) return value;
  }
  return "";
}

// All step ids of the worker's pipeline.
std::vector<std::string> all_steps() {
  std::vector<std::string> ids;
  for (int i = 0; i < 500; ++i) ids.push_back(std::to_string(i));
  for (int b = 0; b < 2; ++b) {
    for (int i = 0; i < 10; ++i)
      ids.push_back("500." + std::to_string(b) + "." + std::to_string(i));
  }
  for (int i = 501; i < 991; ++i) ids.push_back(std::to_string(i));
  return ids;
}

void wait_until_orphaned(flux::Runtime& rt, const std::string& run_id) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const auto& info : rt.list_orphans()) {
      if (info.id == run_id) return;
    }
    std::this_thread::sleep_for(50ms);
  }
  FAIL() << "run " << run_id << " never became an orphan";
}

void crash_and_resume(RedisServer& server, const std::string& prefix, const std::string& kill_at) {
  SCOPED_TRACE("kill after the side effect of step " + kill_at);
  std::string out = worker("run '" + server.url() + "' " + prefix + " " + kill_at);
  std::string run_id = field(out, "run");
  ASSERT_FALSE(run_id.empty()) << out;
  ASSERT_EQ(field(out, "finished"), "") << "the worker was meant to die: " << out;

  flux::Runtime rt(flux::Config{.store = server.url(), .key_prefix = prefix});
  auto before = rt.get_run(run_id);
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(before->status, flux::RunStatus::running);
  std::set<std::string> recorded;
  for (const auto& e : before->history) {
    if (e.ok()) recorded.insert(e.step);
  }
  EXPECT_EQ(recorded.count(kill_at), 0u) << "the step in flight cannot have been recorded";

  wait_until_orphaned(rt, run_id);
  auto t0 = std::chrono::steady_clock::now();
  std::string resumed = worker("resume '" + server.url() + "' " + prefix + " " + run_id);
  auto resume_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_EQ(field(resumed, "output"), std::to_string(k_uninterrupted_output)) << resumed;

  auto after = rt.get_run(run_id);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->status, flux::RunStatus::completed);
  EXPECT_EQ(after->output, flux::Value(k_uninterrupted_output));
  // Nothing written before the kill is missing: the old history is a prefix of the new.
  ASSERT_GE(after->history.size(), before->history.size());
  for (std::size_t i = 0; i < before->history.size(); ++i) {
    EXPECT_EQ(after->history[i], before->history[i]) << "entry " << i;
  }
  EXPECT_EQ(after->history[before->history.size()].type, flux::HistoryEntry::Type::resume);

  // Side effects: recorded steps exactly once, the rest at least once and at most twice.
  std::string counts = server.cli("--raw MGET " + [&] {
    std::string keys;
    for (const auto& s : all_steps()) keys += " " + prefix + ":effects:" + s;
    keys += " " + prefix + ":effects:501";  // the join
    return keys;
  }());
  std::istringstream in(counts);
  auto steps = all_steps();
  steps.push_back("501");
  int twice = 0;
  for (const auto& s : steps) {
    std::string n;
    ASSERT_TRUE(std::getline(in, n)) << "no count for step " << s;
    int executions = std::atoi(n.c_str());
    if (recorded.count(s)) {
      EXPECT_EQ(executions, 1) << "step " << s << " was recorded before the kill";
    } else {
      EXPECT_GE(executions, 1) << "step " << s;
      EXPECT_LE(executions, 2) << "step " << s;
    }
    twice += executions == 2;
  }
  EXPECT_GE(twice, 1) << "the step in flight ran again";
  std::printf(
      "killed at step %s: %zu steps recorded before the kill, %d executed twice, "
      "resumed by a new process in %lld ms (process start included)\n",
      kill_at.c_str(), recorded.size(), twice, static_cast<long long>(resume_ms));
  EXPECT_EQ(server.cli("--raw GET " + prefix + ":effects:" + kill_at), "2\n")
      << "the step killed in flight ran again on resume";
  EXPECT_EQ(rt.run_keys(run_id).at("joined"), flux::Value(1020));
}

TEST(Crash, AKilledRunIsResumedByAnotherProcessAtSeveralRandomSteps) {
  RedisServer server;  // Redis itself is not killed here: no need for fsync
  auto steps = all_steps();
  std::mt19937 rng(20261126);
  for (int seed = 0; seed < 3; ++seed) {
    std::string kill_at =
        steps[std::uniform_int_distribution<std::size_t>(0, steps.size() - 1)(rng)];
    crash_and_resume(server, "crash" + std::to_string(seed), kill_at);
  }
}

TEST(Crash, AKilledRunIsResumedWhenTheKillHitsInsideAParallel) {
  RedisServer server;
  // Branch 1 dies at its 6th step; branch 0 may or may not have finished by then.
  crash_and_resume(server, "crashpar", "500.1.5");
}

// Compensation survives a crash: the worker dies in the middle of undoing a failed saga (right
// after the side effect of step 1's compensation, which is therefore not recorded); a new
// process resumes the run. Asserted: no forward step runs again, a compensation recorded done
// before the kill is not run again, the one in flight is run again (at least once, as a step
// in flight is), the last one runs once, and the run ends compensated with exactly one
// successful `compensate` entry per step.
TEST(Crash, AKillDuringCompensationIsFinishedByResumeWithoutRedoingWhatWasUndone) {
  RedisServer server;
  const std::string prefix = "sagacrash";
  std::string out = worker("saga '" + server.url() + "' " + prefix + " undo:1");
  std::string run_id = field(out, "run");
  ASSERT_FALSE(run_id.empty()) << out;
  ASSERT_EQ(field(out, "finished"), "") << "the worker was meant to die: " << out;

  flux::Runtime rt(flux::Config{.store = server.url(), .key_prefix = prefix});
  auto before = rt.get_run(run_id);
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(before->status, flux::RunStatus::running);
  std::vector<std::string> undone_before;
  bool marked = false;
  for (const auto& e : before->history) {
    marked = marked || e.type == flux::HistoryEntry::Type::compensating;
    if (e.type == flux::HistoryEntry::Type::compensate && e.ok()) undone_before.push_back(e.step);
  }
  EXPECT_TRUE(marked) << "the compensating entry is stored before anything is undone";
  EXPECT_EQ(undone_before, std::vector<std::string>{"2"});

  wait_until_orphaned(rt, run_id);
  std::string resumed = worker("saga-resume '" + server.url() + "' " + prefix + " " + run_id);
  EXPECT_EQ(field(resumed, "status"), "compensated") << resumed;

  auto after = rt.get_run(run_id);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->status, flux::RunStatus::compensated);
  ASSERT_TRUE(after->error);
  EXPECT_EQ(after->error->message, "node 's3' (step 3) failed: declined");
  for (std::size_t i = 0; i < before->history.size(); ++i) {
    EXPECT_EQ(after->history[i], before->history[i]) << "entry " << i;
  }
  std::vector<std::string> undone;
  std::size_t forward = 0;
  for (const auto& e : after->history) {
    forward += e.type == flux::HistoryEntry::Type::node;
    if (e.type == flux::HistoryEntry::Type::compensate) {
      EXPECT_TRUE(e.ok()) << e.error.value_or("");
      EXPECT_EQ(e.attempt, 1u) << "step " << e.step;
      undone.push_back(e.step);
    }
  }
  EXPECT_EQ(undone, (std::vector<std::string>{"2", "1", "0"}));
  EXPECT_EQ(forward, 4u) << "no forward step was recorded again";
  auto count = [&](const std::string& what) {
    return std::atoi(server.cli("--raw GET " + prefix + ":effects:" + what).c_str());
  };
  for (const char* s : {"0", "1", "2", "3"}) EXPECT_EQ(count(s), 1) << "forward step " << s;
  EXPECT_EQ(count("undo:2"), 1) << "recorded done before the kill: not run again";
  EXPECT_EQ(count("undo:1"), 2) << "in flight at the kill: run again";
  EXPECT_EQ(count("undo:0"), 1);
  auto listed = rt.list_runs({.status = flux::RunStatus::compensated});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, run_id);

  // Resuming it again does nothing: it is compensated.
  std::string again = worker("saga-resume '" + server.url() + "' " + prefix + " " + run_id);
  EXPECT_EQ(field(again, "status"), "compensated") << again;
  EXPECT_EQ(rt.get_run(run_id)->history.size(), after->history.size());
  EXPECT_EQ(count("undo:0"), 1);
}

// An orphan cancelled with compensation: the canceller has no pipeline, so the request stays
// in the store; the process that resumes the run undoes its completed steps instead of going
// on. The worker dies in forward step 2 (done, not recorded).
TEST(Crash, AnOrphanCancelledWithCompensationIsUndoneByWhoeverResumesIt) {
  RedisServer server;
  const std::string prefix = "sagaorphan";
  std::string out = worker("saga '" + server.url() + "' " + prefix + " 2");
  std::string run_id = field(out, "run");
  ASSERT_FALSE(run_id.empty()) << out;
  ASSERT_EQ(field(out, "finished"), "") << "the worker was meant to die: " << out;

  flux::Runtime rt(flux::Config{.store = server.url(), .key_prefix = prefix});
  wait_until_orphaned(rt, run_id);
  EXPECT_TRUE(rt.cancel(run_id, "abandoned order", {.compensate = true}));
  EXPECT_EQ(rt.get_run(run_id)->status, flux::RunStatus::running);  // left to the resumer

  std::string resumed = worker("saga-resume '" + server.url() + "' " + prefix + " " + run_id);
  EXPECT_EQ(field(resumed, "status"), "compensated") << resumed;
  auto after = rt.get_run(run_id);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->status, flux::RunStatus::compensated);
  ASSERT_TRUE(after->error);
  EXPECT_EQ(after->error->message,
            "run " + run_id + " was cancelled by " + rt.owner_id() + ": abandoned order");
  std::vector<flux::HistoryEntry::Type> types;
  std::vector<std::string> undone;
  for (const auto& e : after->history) {
    types.push_back(e.type);
    if (e.type == flux::HistoryEntry::Type::compensate) undone.push_back(e.step);
  }
  using T = flux::HistoryEntry::Type;
  EXPECT_EQ(types, (std::vector<T>{T::node, T::node, T::resume, T::cancel, T::compensating,
                                   T::compensate, T::compensate}));
  EXPECT_EQ(undone, (std::vector<std::string>{"1", "0"}));
  auto count = [&](const std::string& what) {
    return std::atoi(server.cli("--raw GET " + prefix + ":effects:" + what).c_str());
  };
  EXPECT_EQ(count("2"), 1) << "the step in flight at the kill is not run again: it is undone";
  EXPECT_EQ(count("3"), 0);
  EXPECT_EQ(count("undo:1"), 1);
  EXPECT_EQ(count("undo:0"), 1);
  EXPECT_EQ(count("undo:2"), 0) << "step 2 never completed";
}

TEST(Crash, OfTwoProcessesResumingOneOrphanExactlyOneProceeds) {
  RedisServer server;
  const std::string prefix = "resumerace";
  std::string out = worker("run '" + server.url() + "' " + prefix + " 300");
  std::string run_id = field(out, "run");
  ASSERT_FALSE(run_id.empty()) << out;
  {
    flux::Runtime rt(flux::Config{.store = server.url(), .key_prefix = prefix});
    wait_until_orphaned(rt, run_id);
  }
  // Both start resuming at the same moment (their runtimes are up by then); a resume of
  // the remaining ~700 steps takes far longer than the skew between the two.
  auto start_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch() + 1500ms)
                      .count();
  std::string outs[2];
  std::thread racers[2];
  for (int i = 0; i < 2; ++i) {
    racers[i] = std::thread([&, i] {
      outs[i] = worker("resume '" + server.url() + "' " + prefix + " " + run_id + " " +
                       std::to_string(start_at));
    });
  }
  for (auto& t : racers) t.join();
  int proceeded = 0, refused = 0;
  for (const auto& o : outs) {
    if (field(o, "output") == std::to_string(k_uninterrupted_output)) ++proceeded;
    if (field(o, "refused") == "run_owned") ++refused;
  }
  EXPECT_EQ(proceeded, 1) << outs[0] << "\n" << outs[1];
  EXPECT_EQ(refused, 1) << outs[0] << "\n" << outs[1];
  flux::Runtime rt(flux::Config{.store = server.url(), .key_prefix = prefix});
  auto info = rt.get_run(run_id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->status, flux::RunStatus::completed);
  int resumes = 0;
  for (const auto& e : info->history) resumes += e.type == flux::HistoryEntry::Type::resume;
  EXPECT_EQ(resumes, 1);
}

/// Starts `argv` with its standard output on a pipe; returns the pid and the read end.
std::pair<pid_t, FILE*> spawn(const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::_Exit(127);
  }
  ::close(fds[1]);
  return {pid, ::fdopen(fds[0], "r")};
}

/// Busy loops on every core while alive: the kills happen under CPU load, when the
/// persistence thread is slowest to get its turn.
struct CpuLoad {
  std::vector<pid_t> burners;
  CpuLoad() {
    for (unsigned i = 0; i < std::max(2u, std::thread::hardware_concurrency()); ++i) {
      pid_t pid = ::fork();
      if (pid == 0) {
        ::execlp("sh", "sh", "-c", "while :; do :; done", static_cast<char*>(nullptr));
        std::_Exit(127);
      }
      burners.push_back(pid);
    }
  }
  ~CpuLoad() {
    for (pid_t pid : burners) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

/// Kills a chain's process at random moments, `kills` times, and returns the largest
/// number of steps that had executed (their side effect done) without their record in the
/// store: what a resume would run again.
int worst_unrecorded_steps(RedisServer& server, const std::string& durability,
                           const std::string& kind, int kills, int chain) {
  std::mt19937 rng(std::random_device{}());
  int worst = 0, total = 0;
  CpuLoad load;
  for (int k = 0; k < kills; ++k) {
    const std::string prefix = "dur-" + durability + "-" + kind + "-" + std::to_string(k);
    auto [pid, out] = spawn({FLUX_CRASH_WORKER, "chain", server.url(), prefix, durability, kind,
                             std::to_string(chain)});
    char line[256] = {};
    if (!std::fgets(line, sizeof line, out)) {
      ADD_FAILURE() << "the worker printed nothing";
      return -1;
    }
    const std::string run_id = field(line, "run");
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(5, 150)(rng)));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    std::fclose(out);

    flux::Runtime rt(flux::Config{.store = server.url(), .key_prefix = prefix});
    std::set<std::string> recorded;
    for (const auto& e : rt.history(run_id)) recorded.insert(e.step);
    int executed_unrecorded = 0;
    std::istringstream executed(server.cli("--raw HKEYS " + prefix + ":effects"));
    for (std::string step; std::getline(executed, step);) {
      executed_unrecorded += !recorded.count(step);
    }
    worst = std::max(worst, executed_unrecorded);
    total += executed_unrecorded;
  }
  std::printf(
      "durability %s, %s steps: %d kills, executed but unrecorded steps: worst %d, "
      "mean %.2f\n",
      durability.c_str(), kind.c_str(), kills, worst, double(total) / kills);
  return worst;
}

// The durability window, as documented for Config::durability: with the default settings a
// step that did slow work has its record acknowledged before the next step starts, so a
// kill at any moment leaves at most the step that was executing unrecorded (it used to be
// up to 31 under load).
TEST(Durability, SlowStepsAreRecordedBeforeTheNextStartsByDefault) {
  RedisServer server;
  EXPECT_LE(worst_unrecorded_steps(server, "slow_steps", "blocking", 50, 2000), 1);
}

TEST(Durability, StrictModeRecordsEveryStepBeforeTheNextStarts) {
  RedisServer server;
  EXPECT_LE(worst_unrecorded_steps(server, "strict", "sync", 50, 2000), 1);
}

TEST(Durability, BatchedModeLeavesAtMostTheJournalsBoundUnrecorded) {
  RedisServer server;
  EXPECT_LE(worst_unrecorded_steps(server, "batched", "sync", 50, 20000), 2048);
}

TEST(Crash, OfProcessesRacingForAnOrphansLeaseExactlyOneGetsIt) {
  RedisServer server;
  auto start_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch() + 1500ms)
                      .count();
  std::vector<std::thread> racers;
  std::vector<std::string> outs(4);
  for (int i = 0; i < 4; ++i) {
    racers.emplace_back([&, i] {
      outs[i] =
          worker("acquire '" + server.url() + "' race orphan-run " + std::to_string(start_at));
    });
  }
  for (auto& t : racers) t.join();
  int granted = 0, owned = 0;
  for (const auto& out : outs) {
    granted += !field(out, "granted").empty();
    owned += !field(out, "owned").empty();
  }
  EXPECT_EQ(granted, 1) << outs[0] << outs[1] << outs[2] << outs[3];
  EXPECT_EQ(owned, 3);
}

}  // namespace
