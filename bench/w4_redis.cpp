// W4 persisted throughput: W3 (`a | parallel(b, c) | d`, --runs 10,000, at most 64 in
// flight) with every node execution recorded in Redis on loopback:
// Config{.store = "redis://127.0.0.1:PORT"}. Reports runs/s and history records/s
// (5 records per run: a, b, c, d and the parallel). A run counts only once Flux
// reports it ended, which it does after all its records are in the store.
//
// Baselines against the same private redis-server, alternating with Flux in every
// repetition (the server is emptied with FLUSHALL before each Flux measurement):
//  - raw hiredis: one connection pipelining RPUSH of 200-byte values at depth 256
//    (--rpush-values values per repetition), values/s;
//  - `redis-benchmark -h 127.0.0.1 -p PORT -P 16 -t set -d 200 -n 200000 -q`, SET/s
//    (parsed from its last "SET: N requests per second" line).
//
// Redis's CPU time per run (INFO cpu) is reported against its CPU time for RPUSHing 5 values.
//
// The runner (bench/run.sh) starts the server and passes --port.
// Options: --port P (required) --reps N (5) --runs N (10000) --window N (64)
//          --warmup N (500) --rpush-values N (200000) --rpush-depth N (256)
//          --value-bytes N (200) --bench-n N (200000) --redis-benchmark CMD
//          --threads N (cores) --only flux|baseline
//          --aof everysec|always: the server's append-only file on (CONFIG SET), both sides;
//          --durability strict|batched: Flux's Config::durability. Either makes every row a
//          variant (" (AOF everysec)", " (strict durability)") without the targets.

#include <hiredis/hiredis.h>

#include <cstdio>
#include <flux/flux.hpp>
#include <memory>
#include <regex>
#include <string>
#include <thread>

#include "bench_common.hpp"
#include "w3_shape.hpp"

using namespace bench;

namespace {

const Result k_flux_rec{"W4",        "W4 history records/s (vs hiredis RPUSH)",
                        "flux",      "Flux: W3 shape, redis store on loopback",
                        "records/s", "higher",
                        "ratio>=0.5"};
const Result k_rpush{"W4",       "W4 history records/s (vs hiredis RPUSH)",
                     "baseline", "raw hiredis RPUSH 200 B values, pipeline depth 256",
                     "values/s", "higher",
                     ""};
const Result k_flux_rec2{"W4",        "W4 history records/s (vs redis-benchmark SET)",
                         "flux",      "Flux: W3 shape, redis store on loopback",
                         "records/s", "higher",
                         ""};
const Result k_setbench{"W4",       "W4 history records/s (vs redis-benchmark SET)",
                        "baseline", "redis-benchmark -P 16 -t set -d 200",
                        "SET/s",    "higher",
                        ""};
const Result k_flux_runs{"W4",     "W4 runs/s", "flux", "Flux: W3 shape, redis store on loopback",
                         "runs/s", "higher",    ""};
// Redis's own CPU time (INFO cpu: used_cpu_user + used_cpu_sys) per run, against what it
// spends on RPUSHing as many values as a run writes records.
const Result k_flux_cpu{"W4",       "W4 Redis CPU per run (us)",
                        "flux",     "Flux: Redis CPU (INFO cpu) per run of 5 records",
                        "us/run",   "lower",
                        ""};
const Result k_rpush_cpu{"W4",       "W4 Redis CPU per run (us)",
                         "baseline", "raw hiredis RPUSH: Redis CPU per 5 values",
                         "us/run",   "lower",
                         ""};

struct Redis {
  explicit Redis(int port) {
    c = redisConnectWithTimeout("127.0.0.1", port, timeval{2, 0});
    if (!c || c->err) {
      std::string why = c ? c->errstr : "out of memory";
      if (c) redisFree(c);
      throw std::runtime_error("cannot connect to redis at 127.0.0.1:" + std::to_string(port) +
                               ": " + why);
    }
    redisSetTimeout(c, timeval{30, 0});
  }
  ~Redis() { redisFree(c); }
  Redis(const Redis&) = delete;
  Redis& operator=(const Redis&) = delete;

  /// Seconds of CPU the server has used so far (user + system).
  double cpu_seconds() { return info_stat("used_cpu_user", "cpu") + info_stat("used_cpu_sys", "cpu"); }

  /// Runs one command given as a format string; throws on an I/O or error reply.
  long long command(const char* what) {
    auto* r = static_cast<redisReply*>(redisCommand(c, what));
    if (!r) throw std::runtime_error(std::string("redis ") + what + ": " + c->errstr);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    bool err = r->type == REDIS_REPLY_ERROR;
    std::string msg = err ? r->str : "";
    freeReplyObject(r);
    if (err) throw std::runtime_error(std::string("redis ") + what + ": " + msg);
    return v;
  }

  /// A field of an INFO section, e.g. info_stat("total_commands_processed") or
  /// info_stat("used_cpu_user", "cpu").
  double info_stat(const std::string& field, const char* section = "stats") {
    auto* r = static_cast<redisReply*>(redisCommand(c, "INFO %s", section));
    if (!r) throw std::runtime_error(std::string("redis INFO: ") + c->errstr);
    std::string text = r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len) : "";
    freeReplyObject(r);
    auto at = text.find(field + ":");
    return at == std::string::npos ? 0 : std::stod(text.substr(at + field.size() + 1));
  }

  redisContext* c = nullptr;
};

/// What the server saw during a measured pass, per run.
struct ServerLoad {
  double commands_per_run = 0;
  double bytes_in_per_run = 0;
  double cpu_us_per_run = 0;
};

WindowStats flux_rep(int port, std::size_t threads, int runs, int window, int warmup, Redis& redis,
                     ServerLoad& load) {
  redis.command("FLUSHALL");
  flux::Config config;
  set_flux_durability(config);
  config.store = "redis://127.0.0.1:" + std::to_string(port);
  config.threads = threads;
  flux::Runtime rt(config);
  flux::Pipeline p = make_w3_pipeline();
  run_window(rt, p, warmup, window);
  double cmds0 = redis.info_stat("total_commands_processed");
  double bytes0 = redis.info_stat("total_net_input_bytes");
  double cpu0 = redis.cpu_seconds();
  WindowStats w = run_window(rt, p, runs, window);
  load.cpu_us_per_run = (redis.cpu_seconds() - cpu0) / runs * 1e6;
  load.commands_per_run = (redis.info_stat("total_commands_processed") - cmds0 - 2) / runs;
  load.bytes_in_per_run = (redis.info_stat("total_net_input_bytes") - bytes0) / runs;
  // Spot check: the newest run is stored with its 5 records.
  flux::RunFilter newest;
  newest.limit = 1;
  auto listed = rt.list_runs(newest);
  if (listed.empty()) throw std::runtime_error("W4 flux: no run in the store");
  auto info = rt.get_run(listed[0].id);
  if (!info || info->history.size() != k_w3_records_per_run) {
    throw std::runtime_error("W4 flux: the stored run does not have 5 history records");
  }
  return w;
}

/// RPUSHes `total` values pipelined `depth` deep; returns values/s, and in `cpu_us_per_value`
/// the server's CPU time per value.
double rpush_rate(Redis& redis, long total, long depth, std::size_t bytes,
                  double& cpu_us_per_value) {
  const std::string key = "bench:rpush";
  const std::string value(bytes, 'v');
  redis.command("DEL bench:rpush");
  const double cpu0 = redis.cpu_seconds();
  auto t0 = Clock::now();
  for (long sent = 0; sent < total;) {
    long n = std::min(depth, total - sent);
    for (long i = 0; i < n; ++i) {
      redisAppendCommand(redis.c, "RPUSH %b %b", key.data(), key.size(), value.data(),
                         value.size());
    }
    for (long i = 0; i < n; ++i) {
      void* rep = nullptr;
      if (redisGetReply(redis.c, &rep) != REDIS_OK) {
        throw std::runtime_error(std::string("RPUSH: ") + redis.c->errstr);
      }
      auto* r = static_cast<redisReply*>(rep);
      bool ok = r->type == REDIS_REPLY_INTEGER;
      freeReplyObject(r);
      if (!ok) throw std::runtime_error("RPUSH: unexpected reply");
    }
    sent += n;
  }
  double secs = seconds_since(t0);
  cpu_us_per_value = (redis.cpu_seconds() - cpu0) / static_cast<double>(total) * 1e6;
  redis.command("DEL bench:rpush");
  return static_cast<double>(total) / secs;
}

/// Turns the server's append-only file on with `fsync` (everysec or always), and waits until
/// the rewrite that turning it on starts has finished, so that the measured passes write to it.
void use_aof(Redis& redis, const std::string& fsync) {
  redis.command(("CONFIG SET appendfsync " + fsync).c_str());
  redis.command("CONFIG SET appendonly yes");
  for (int i = 0; i < 600; ++i) {
    if (redis.info_stat("aof_enabled", "persistence") == 1 &&
        redis.info_stat("aof_rewrite_in_progress", "persistence") == 0 &&
        redis.info_stat("aof_rewrite_scheduled", "persistence") == 0) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("redis: the append-only file was not ready within 30 s");
}

/// Runs redis-benchmark; returns SET/s, or a negative number if it could not be parsed.
double set_benchmark(const std::string& cmd, int port, long n, std::size_t bytes) {
  std::string full = cmd + " -h 127.0.0.1 -p " + std::to_string(port) + " -P 16 -t set -d " +
                     std::to_string(bytes) + " -n " + std::to_string(n) + " -q 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return -1;
  std::string out;
  char buf[4096];
  std::size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, got);
  ::pclose(p);
  static const std::regex re(R"(SET: ([0-9.]+) requests per second)");
  double rate = -1;
  for (auto it = std::sregex_iterator(out.begin(), out.end(), re); it != std::sregex_iterator();
       ++it) {
    rate = std::stod((*it)[1].str());
  }
  if (rate < 0) note("redis-benchmark output not understood: %s", out.c_str());
  return rate;
}

}  // namespace

int main(int argc, char** argv) try {
  Args args(argc, argv);
  parse_durability(args);
  const int port = static_cast<int>(args.num("port", 0));
  if (port <= 0) throw std::invalid_argument("--port PORT of a running redis-server is required");
  const int reps = static_cast<int>(args.num("reps", 5));
  const int runs = static_cast<int>(args.num("runs", 10000));
  const int window = static_cast<int>(args.num("window", 64));
  const int warmup = static_cast<int>(args.num("warmup", 500));
  const long rpush_values = args.num("rpush-values", 200000);
  const long rpush_depth = args.num("rpush-depth", 256);
  const auto value_bytes = static_cast<std::size_t>(args.num("value-bytes", 200));
  const long bench_n = args.num("bench-n", 200000);
  const std::string bench_cmd = args.str("redis-benchmark", "redis-benchmark");
  const std::size_t threads = scheduler_threads(args);
  const std::string aof = args.str("aof", "no");
  if (aof != "no" && aof != "everysec" && aof != "always") {
    throw std::invalid_argument("--aof is no, everysec or always, not '" + aof + "'");
  }
  if (aof != "no") row_variant() += " (AOF " + aof + ")";
  emit_meta("bench_w4_redis");
  Redis redis(port);
  if (aof != "no") use_aof(redis, aof);
  for (int rep = 1; rep <= reps; ++rep) {
    if (args.side_enabled("flux")) {
      ServerLoad load;
      WindowStats w = flux_rep(port, threads, runs, window, warmup, redis, load);
      double secs = w.seconds;
      double rps = runs / secs;
      double recs = rps * k_w3_records_per_run;
      for (const Result* r : {&k_flux_rec, &k_flux_rec2}) {
        result_line(*r, rep, recs)
            .num("runs", runs)
            .num("window", window)
            .num("seconds", secs)
            .num("start_us_mean", w.start_seconds / runs * 1e6)
            .num("caller_waiting_share", w.wait_seconds / secs)
            .num("redis_commands_per_run", load.commands_per_run)
            .num("redis_bytes_in_per_run", load.bytes_in_per_run)
            .emit();
      }
      result_line(k_flux_cpu, rep, load.cpu_us_per_run).num("runs", runs).emit();
      result_line(k_flux_runs, rep, rps)
          .num("runs", runs)
          .num("window", window)
          .num("node_exec_per_s", rps * k_w3_nodes_per_run)
          .emit();
    }
    if (args.side_enabled("baseline")) {
      redis.command("FLUSHALL");
      double cpu_per_value = 0;
      result_line(k_rpush, rep,
                  rpush_rate(redis, rpush_values, rpush_depth, value_bytes, cpu_per_value))
          .num("values", static_cast<double>(rpush_values))
          .num("depth", static_cast<double>(rpush_depth))
          .num("value_bytes", static_cast<double>(value_bytes))
          .emit();
      result_line(k_rpush_cpu, rep, cpu_per_value * k_w3_records_per_run)
          .num("values", static_cast<double>(rpush_values))
          .emit();
      double sets = set_benchmark(bench_cmd, port, bench_n, value_bytes);
      if (sets > 0) {
        result_line(k_setbench, rep, sets)
            .num("requests", static_cast<double>(bench_n))
            .num("pipeline", 16)
            .num("value_bytes", static_cast<double>(value_bytes))
            .emit();
      }
    }
    note("W4 repetition %d/%d done", rep, reps);
  }
  redis.command("FLUSHALL");
  if (aof != "no") redis.command("CONFIG SET appendonly no");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_w4_redis: %s\n", e.what());
  return 1;
}
