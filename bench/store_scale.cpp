// Store scale: what listing runs costs when a store holds many of them, what a
// retained run costs in memory, and whether listing holds up running runs.
//
//  - memory store with 10 k, 100 k and 1 M finished runs (retention off, so that all are
//    kept): latency of the newest page (`list_runs` with limit 10) and of a page deep in the
//    list (by cursor), RSS per retained run, and the latency of `run()` of a one-node
//    pipeline while another thread lists pages without pause;
//  - Redis (with --port) with 100 k finished runs and 20 k running runs without a lease
//    (orphans): the newest page, a deep page, `list_orphans()` and Redis memory per run.
//
// Every run stored is a tiny one as the engine writes it: its record and one history entry.
// Plain text on stdout, one figure per line.
// Options: --port P (Redis part only if given) --max N (1000000: the largest memory size)
//          --redis-runs N (100000) --orphans N (20000)

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <flux/flux.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"

using namespace bench;

namespace {

flux::RunInfo tiny_run(std::size_t i, flux::RunStatus status) {
  flux::RunInfo r;
  r.id = "run-" + std::to_string(i);
  r.pipeline = "tiny";
  r.fingerprint = "0123456789abcdef";
  r.status = status;
  r.created = flux::Timestamp(
      std::chrono::nanoseconds(1'700'000'000'000'000'000 + static_cast<std::int64_t>(i) * 1000));
  r.updated = r.created;
  if (status != flux::RunStatus::running) r.finished = r.created;
  r.input = std::int64_t{1};
  if (status == flux::RunStatus::completed) r.output = std::int64_t{2};
  r.owner = "bench:1:0";
  return r;
}

flux::HistoryEntry tiny_entry() {
  flux::HistoryEntry e;
  e.node = "inc";
  e.step = "0";
  e.input = std::int64_t{1};
  e.output = std::int64_t{2};
  return e;
}

/// Writes runs [from, to) with `status`, in batches as the persistence actor does.
void fill(flux::Storage& store, std::size_t from, std::size_t to, flux::RunStatus status) {
  std::vector<flux::Write> batch;
  // One immutable entry, shared by every run's write (as a run's live state shares its own).
  const auto entry = std::make_shared<const flux::HistoryEntry>(tiny_entry());
  for (std::size_t i = from; i < to; ++i) {
    flux::RunInfo r = tiny_run(i, status);
    batch.push_back(flux::Write{flux::Write::AppendHistory{r.id, entry}});
    batch.push_back(
        flux::Write{flux::Write::PutRun{std::make_shared<const flux::RunInfo>(std::move(r))}});
    if (batch.size() >= 2000 || i + 1 == to) {
      store.apply(batch);
      batch.clear();
    }
  }
}

/// Median latency (ms) of `f` over `reps` calls.
template <class F>
double median_ms(int reps, F&& f) {
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    f();
    ms.push_back(micros_between(t0, Clock::now()) / 1000);
  }
  return median(ms);
}

flux::RunFilter newest(std::size_t limit, std::string cursor = {}) {
  flux::RunFilter f;
  f.limit = limit;
  f.cursor = std::move(cursor);
  return f;
}

/// The cursor of the page that starts `depth` runs from the newest.
std::string cursor_at(const flux::Storage& store, std::size_t depth) {
  return store.list_runs_page(newest(depth)).next_cursor;
}

void memory_size(std::size_t n) {
  const std::size_t rss0 = rss_bytes();
  auto store = std::make_shared<flux::MemoryStorage>(flux::Retention{});  // keep every run
  fill(*store, 0, n, flux::RunStatus::completed);
  const std::size_t rss1 = rss_bytes();

  double first_ms = median_ms(21, [&] { (void)store->list_runs(newest(10)); });
  std::string deep = cursor_at(*store, n / 2);
  double middle_ms = median_ms(21, [&] { (void)store->list_runs_page(newest(10, deep)); });
  std::printf(
      "memory %8zu runs: list newest 10: %9.3f ms   10 from the middle: %9.3f ms   "
      "RSS %.0f B/run\n",
      n, first_ms, middle_ms, static_cast<double>(rss1 - rss0) / static_cast<double>(n));

  // run() while another thread lists pages as fast as it can.
  flux::Runtime rt(flux::Config{.storage = store, .threads = 2});
  const flux::Pipeline one =
      flux::Pipeline(flux::node("inc", [](std::int64_t x) { return x + 1; })).named("one");
  (void)rt.run(one, std::int64_t{1});
  std::atomic<bool> stop{false};
  std::atomic<long> lists{0};
  std::thread lister([&] {
    while (!stop) {
      (void)store->list_runs(newest(10));
      ++lists;
    }
  });
  std::vector<double> run_ms;
  auto t_end = Clock::now() + std::chrono::seconds(2);
  while (Clock::now() < t_end) {
    auto t0 = Clock::now();
    (void)rt.run(one, std::int64_t{1});
    run_ms.push_back(micros_between(t0, Clock::now()) / 1000);
  }
  stop = true;
  lister.join();
  std::printf(
      "memory %8zu runs: run() while listing: median %.3f ms, max %.3f ms "
      "(%zu runs, %ld lists)\n",
      n, median(run_ms), quantile(run_ms, 1.0), run_ms.size(), lists.load());
}

long long redis_used_memory(int port) {
  std::string out = std::string();
  FILE* p = ::popen(("redis-cli -p " + std::to_string(port) + " INFO memory").c_str(), "r");
  char buf[512];
  while (p && std::fgets(buf, sizeof buf, p)) out += buf;
  if (p) ::pclose(p);
  auto at = out.find("used_memory:");
  return at == std::string::npos ? 0 : std::stoll(out.substr(at + 12));
}

void redis_part(int port, std::size_t runs, std::size_t orphans) {
  const std::string prefix = "w6p" + std::to_string(::getpid());
  flux::Runtime rt(
      flux::Config{.store = "redis://127.0.0.1:" + std::to_string(port), .key_prefix = prefix});
  flux::Storage& store = rt.storage();
  const long long mem0 = redis_used_memory(port);
  fill(store, 0, runs, flux::RunStatus::completed);
  const long long mem1 = redis_used_memory(port);
  fill(store, runs, runs + orphans, flux::RunStatus::running);

  double first_ms = median_ms(21, [&] { (void)rt.list_runs(newest(10)); });
  std::string deep = cursor_at(store, runs / 2);
  double middle_ms = median_ms(21, [&] { (void)store.list_runs_page(newest(10, deep)); });
  std::size_t found = 0;
  double orphan_ms = median_ms(5, [&] { found = rt.list_orphans().size(); });
  std::printf(
      "redis  %8zu runs: list newest 10: %9.3f ms   10 from the middle: %9.3f ms   "
      "memory %.0f B/run\n",
      runs + orphans, first_ms, middle_ms,
      static_cast<double>(mem1 - mem0) / static_cast<double>(runs));
  std::printf("redis  %8zu orphans: list_orphans: %.1f ms (found %zu)\n", orphans, orphan_ms,
              found);
}

}  // namespace

int main(int argc, char** argv) try {
  Args args(argc, argv);
  const auto max = static_cast<std::size_t>(args.num("max", 1'000'000));
  std::printf("build type: %s\n", FLUX_BENCH_BUILD_TYPE);
  for (std::size_t n = 10'000; n <= max; n *= 10) memory_size(n);
  if (const int port = static_cast<int>(args.num("port", 0)); port > 0) {
    redis_part(port, static_cast<std::size_t>(args.num("redis-runs", 100'000)),
               static_cast<std::size_t>(args.num("orphans", 20'000)));
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_store_scale: %s\n", e.what());
  return 1;
}
