// A separate process for the crash and lease-race tests.
//
//   crash_worker run    <redis-url> <prefix> <kill-at-step-id|none>
//       starts the test pipeline, prints "run <id>", and SIGKILLs itself right after the
//       side effect of the step whose id is <kill-at-step-id> (so that step is in flight:
//       done, but not recorded)
//   crash_worker resume <redis-url> <prefix> <run-id> [<start-at-epoch-ms>]
//       resumes the run (at the given time, if any); prints "output <value>" or
//       "refused <code> <message>"
//   crash_worker chain <redis-url> <prefix> <slow_steps|strict|batched> <blocking|sync> <n>
//       runs a chain of n steps with that Config::durability, each step a side effect
//       (HINCRBY of field <step> in "<prefix>:effects");
//       prints "run <id>" and runs until the test SIGKILLs it at a random moment
//   crash_worker acquire <redis-url> <prefix> <run-id> <start-at-epoch-ms>
//       waits until the given time, then tries to take the run's lease; prints
//       "granted <token>" or "owned <holder>"
//   crash_worker saga <redis-url> <prefix> <kill-at|none>
//       runs the saga pipeline (s0 | s1 | s2 | s3, s3 failing; s0-s2 blocking, each undone by a
//       compensation whose side effect is "undo:<step>"), prints "run <id>" and SIGKILLs itself
//       right after the side effect named <kill-at> (e.g. "undo:1": in the middle of undoing)
//   crash_worker saga-resume <redis-url> <prefix> <run-id>
//       resumes it; prints "status <status>" or "refused <code> <message>"
//
// The pipeline: 500 steps, a parallel of two 10-step branches, a step joining them, then
// 489 steps — 1,010 nodes. Every step's side effect is an INCR of "<prefix>:effects:<step>"
// in Redis, so a test can count how often each step really executed.

#include <hiredis/hiredis.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <flux/flux.hpp>
#include <mutex>
#include <string>
#include <thread>

namespace {

std::string g_kill_at;
std::string g_prefix;
redisContext* g_redis = nullptr;
std::mutex g_redis_mu;

bool g_effects_hash = false;  // chain mode: HINCRBY <prefix>:effects <step>, one key for all

void side_effect(const std::string& step) {
  std::lock_guard lock(g_redis_mu);
  std::string key = g_prefix + ":effects:" + step;
  auto* r =
      g_effects_hash
          ? static_cast<redisReply*>(redisCommand(g_redis, "HINCRBY %s:effects %b 1",
                                                  g_prefix.c_str(), step.data(), step.size()))
          : static_cast<redisReply*>(redisCommand(g_redis, "INCR %b", key.data(), key.size()));
  if (!r) {
    std::fprintf(stderr, "INCR failed: %s\n", g_redis->errstr);
    std::_Exit(3);
  }
  freeReplyObject(r);
  if (step == g_kill_at) ::raise(SIGKILL);
}

flux::Node step_node(int i) {
  return flux::node("s" + std::to_string(i), [](std::int64_t x, flux::Context& ctx) {
    side_effect(ctx.step_id());
    ctx.shared().add("executions", 1);
    return x + 1;
  });
}

flux::Pipeline saga_pipeline() {
  std::vector<flux::Pipeline> steps;
  for (int i = 0; i < 3; ++i) {
    steps.push_back(flux::node("s" + std::to_string(i),
                               [](std::int64_t x, flux::Context& ctx) {
                                 side_effect(ctx.step_id());
                                 return x + 1;
                               })
                        .blocking()  // slow steps: each stored before the next starts
                        .compensate([](std::int64_t, flux::Context& ctx) {
                          side_effect("undo:" + ctx.step_id());
                        }));
  }
  steps.push_back(flux::node("s3", [](std::int64_t, flux::Context& ctx) -> std::int64_t {
    side_effect(ctx.step_id());
    throw std::runtime_error("declined");
  }));
  return flux::sequence(steps).named("saga-crash");
}

flux::Pipeline chain_pipeline(bool blocking, int n) {
  std::vector<flux::Pipeline> steps;
  for (int i = 0; i < n; ++i) {
    flux::Node step = step_node(i);
    steps.push_back(blocking ? step.blocking() : step);
  }
  return flux::sequence(steps).named("durability-chain");
}

flux::Pipeline test_pipeline() {
  std::vector<flux::Pipeline> steps;
  for (int i = 0; i < 500; ++i) steps.push_back(step_node(i));
  std::vector<flux::Pipeline> a, b;
  for (int i = 0; i < 10; ++i) {
    a.push_back(step_node(1000 + i));
    b.push_back(step_node(2000 + i));
  }
  steps.push_back(flux::parallel(flux::sequence(a), flux::sequence(b)));
  steps.push_back(flux::node("join", [](std::int64_t x, std::int64_t y, flux::Context& ctx) {
    side_effect(ctx.step_id());
    ctx.save("joined", x + y);
    return x + y;
  }));
  for (int i = 0; i < 489; ++i) steps.push_back(step_node(3000 + i));
  return flux::sequence(steps).named("crash-test");
}

void connect_redis(const std::string& url) {
  auto port_at = url.rfind(':');
  int port = std::atoi(url.c_str() + port_at + 1);
  g_redis = redisConnect("127.0.0.1", port);
  if (!g_redis || g_redis->err) {
    std::fprintf(stderr, "cannot connect to redis port %d\n", port);
    std::_Exit(3);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: see the comment at the top of crash_worker_main.cpp\n");
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  std::string mode = argv[1], url = argv[2];
  g_prefix = argv[3];
  connect_redis(url);
  flux::Config config{
      .store = url, .key_prefix = g_prefix, .lease_ttl = std::chrono::milliseconds(300)};
  if (mode == "chain" && argc == 7) {
    g_effects_hash = true;
    const std::string durability = argv[4];
    config.durability = durability == "strict"    ? flux::Config::Durability::strict
                        : durability == "batched" ? flux::Config::Durability::batched
                                                  : flux::Config::Durability::slow_steps;
    flux::Runtime rt(config);
    auto handle = rt.start(chain_pipeline(std::string(argv[5]) == "blocking", std::atoi(argv[6])),
                           std::int64_t{0});
    std::printf("run %s\n", handle.run_id().c_str());
    auto r = handle.wait();
    std::printf("finished %s\n", flux::to_string(r.status));
    return 0;
  }
  flux::Runtime rt(config);
  if (mode == "run") {
    g_kill_at = argv[4];
    auto handle = rt.start(test_pipeline(), std::int64_t{0});
    std::printf("run %s\n", handle.run_id().c_str());
    auto r = handle.wait();
    std::printf("finished %s\n", flux::to_string(r.status));
    return 0;
  }
  if (mode == "resume") {
    if (argc == 6) {
      std::this_thread::sleep_until(
          std::chrono::system_clock::time_point(std::chrono::milliseconds(std::atoll(argv[5]))));
    }
    try {
      auto r = rt.resume(argv[4], test_pipeline());
      if (!r.ok()) {
        std::printf("failed %s\n", r.error->message.c_str());
        return 1;
      }
      std::printf("output %lld\n", static_cast<long long>(r.value<std::int64_t>()));
    } catch (const flux::Error& e) {
      std::printf("refused %s %s\n", flux::to_string(e.code()), e.what());
    }
    return 0;
  }
  if (mode == "saga") {
    g_kill_at = argv[4];
    auto handle = rt.start(saga_pipeline(), std::int64_t{0});
    std::printf("run %s\n", handle.run_id().c_str());
    auto r = handle.wait();
    std::printf("finished %s\n", flux::to_string(r.status));
    return 0;
  }
  if (mode == "saga-resume") {
    try {
      auto r = rt.resume(argv[4], saga_pipeline());
      std::printf("status %s\n", flux::to_string(r.status));
    } catch (const flux::Error& e) {
      std::printf("refused %s %s\n", flux::to_string(e.code()), e.what());
    }
    return 0;
  }
  if (mode == "acquire" && argc == 6) {
    auto at = std::chrono::system_clock::time_point(std::chrono::milliseconds(std::atoll(argv[5])));
    std::this_thread::sleep_until(at);
    auto got = rt.storage().acquire_lease(argv[4], rt.owner_id(), std::chrono::seconds(30));
    if (got.lease) {
      std::printf("granted %llu\n", static_cast<unsigned long long>(got.lease->token));
    } else {
      std::printf("owned %s\n", got.holder.c_str());
    }
    return 0;
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
