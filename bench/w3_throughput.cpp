// W3 run throughput: --runs (10,000) runs of `a | parallel(b, c) | d` on ints with at
// most --window (64) in flight, memory store. Reports runs/s and node executions/s
// (4 per run: a, b, c, d; each run also writes 5 history records — the parallel has
// its own — reported as records/s in the extra fields).
//
// Memory per in-flight run (bytes), measured separately in each repetition:
// a Runtime whose store discards writes (so records of finished runs are not counted)
// and an Observer counting started and ended runs. After a warm-up, heap in use is
// read with glibc mallinfo2() (uordblks + hblkhd: all arenas, including mmap'd chunks)
// while idle, then sampled every 16 starts while the window is full; each sample gives
// (heap - idle heap) / runs actually in flight (started - ended, per the observer). The
// repetition reports the median sample. RSS from /proc/self/statm is reported alongside
// as rss_delta, but the allocator keeps freed pages, so RSS barely moves.
//
// Baseline, same process, alternating: raw CAF doing the same hops with the same
// window — one driver actor keeps --window runs in flight; each run requests actor a,
// then b and c at once, gathers both, requests d (4 node executions).
//
// Options: --reps N (5) --runs N (10000) --window N (64) --warmup N (500)
//          --mem-runs N (3000) --threads N (cores) --policy sharing|stealing (both sides)
//          --only flux|baseline --no-mem
//          --durability strict|batched (Config::durability; the rows become a variant)

#include <atomic>
#include <flux/flux.hpp>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"
#include "caf_common.hpp"
#include "w3_shape.hpp"

using namespace bench;

namespace {

const Result k_flux_exec{"W3",
                         "W3 node executions/s",
                         "flux",
                         "Flux: a | parallel(b, c) | d, 64 in flight, memory store",
                         "exec/s",
                         "higher",
                         "ratio>=0.5"};
const Result k_caf_exec{"W3",       "W3 node executions/s",
                        "baseline", "raw CAF: same hops (a, b+c gathered, d), 64 in flight",
                        "exec/s",   "higher",
                        ""};
const Result k_flux_runs{
    "W3",     "W3 runs/s", "flux", "Flux: a | parallel(b, c) | d, 64 in flight, memory store",
    "runs/s", "higher",    ""};
const Result k_caf_runs{
    "W3",     "W3 runs/s", "baseline", "raw CAF: same hops (a, b+c gathered, d), 64 in flight",
    "runs/s", "higher",    ""};
const Result k_flux_mem{
    "W3",    "W3 memory per in-flight run (bytes)",
    "flux",  "Flux: heap in use (mallinfo2) per run in flight, store discarding",
    "bytes", "lower",
    "value<=2048"};

WindowStats flux_rep(std::size_t threads, int runs, int window, int warmup) {
  flux::Config config;
  set_flux_policy(config);
  set_flux_durability(config);
  config.store = "memory";
  config.threads = threads;
  flux::Runtime rt(config);
  flux::Pipeline p = make_w3_pipeline();
  run_window(rt, p, warmup, window);
  return run_window(rt, p, runs, window);
}

/// A store that keeps nothing: in-flight memory without the records of finished runs.
class NullStorage final : public flux::Storage {
 public:
  void put_run(const flux::RunInfo&) override {}
  std::optional<flux::RunInfo> get_run(std::string_view) const override { return std::nullopt; }
  std::vector<flux::RunInfo> list_runs(const flux::RunFilter&) const override { return {}; }
  void append_history(std::string_view, const flux::HistoryEntry&) override {}
  std::vector<flux::HistoryEntry> history(std::string_view, std::size_t) const override {
    return {};
  }
  void put_key(std::string_view, flux::Scope, std::string_view, const flux::Value&) override {}
  std::optional<flux::Value> get_key(std::string_view, flux::Scope,
                                     std::string_view) const override {
    return std::nullopt;
  }
  void erase_key(std::string_view, flux::Scope, std::string_view) override {}
  flux::Value::Map keys(std::string_view, flux::Scope) const override { return {}; }
};

class RunCounter final : public flux::Observer {
 public:
  void on_run_start(const flux::RunInfo&) override { started.fetch_add(1); }
  void on_run_end(const flux::RunInfo&) override { ended.fetch_add(1); }
  long in_flight() const { return started.load() - ended.load(); }
  std::atomic<long> started{0}, ended{0};
};

struct MemSample {
  double bytes_per_run;
  double in_flight;
  double rss_delta;
};

/// Nullopt when no sample found the window at least half full (runs ended faster than
/// the loop started them, e.g. on a busy machine): no figure rather than a wrong one.
std::optional<MemSample> flux_mem_rep(std::size_t threads, int runs, int window, int warmup) {
  auto counter = std::make_shared<RunCounter>();
  flux::Config config;
  set_flux_policy(config);
  set_flux_durability(config);
  config.storage = std::make_shared<NullStorage>();
  config.threads = threads;
  config.observers.push_back(counter);
  flux::Runtime rt(config);
  flux::Pipeline p = make_w3_pipeline();
  run_window(rt, p, warmup, window);
  // Let finished runs' actors and messages be released before reading the idle heap.
  for (int i = 0; i < 100 && counter->in_flight() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const double idle = static_cast<double>(heap_in_use());
  const double idle_rss = static_cast<double>(rss_bytes());
  std::vector<double> per_run, flight, rss;
  run_window(rt, p, runs, window, [&](int i) {
    if (i < 4 * window || i % 16 != 0) return;
    long f0 = counter->in_flight();
    double heap = static_cast<double>(heap_in_use());
    long f1 = counter->in_flight();
    double f = (static_cast<double>(f0) + static_cast<double>(f1)) / 2;
    if (f < window / 2.0) return;  // window not full enough to be representative
    per_run.push_back((heap - idle) / f);
    flight.push_back(f);
    rss.push_back(static_cast<double>(rss_bytes()) - idle_rss);
  });
  if (per_run.empty()) return std::nullopt;
  return MemSample{median(per_run), median(flight), median(rss)};
}

// ---- raw CAF: the same hops -------------------------------------------------------------

using go_atom = caf::atom_constant<caf::atom("go")>;

struct Shape {
  caf::actor a, b, c, d;
};

struct DriverState {
  std::int64_t next = 0, done = 0, total = 0, wrong = 0;
  caf::response_promise rp;
};
using Driver = caf::stateful_actor<DriverState>;

void start_run(Driver* self, const std::shared_ptr<const Shape>& s);

void finish_run(Driver* self, const std::shared_ptr<const Shape>& s, std::int64_t x,
                std::int64_t z) {
  auto& st = self->state;
  if (z != w3_expected(x)) ++st.wrong;
  ++st.done;
  if (st.next < st.total) start_run(self, s);
  if (st.done == st.total) st.rp.deliver(st.done, st.wrong);
}

void start_run(Driver* self, const std::shared_ptr<const Shape>& s) {
  std::int64_t x = self->state.next++;
  auto fail = [self](caf::error& e) { self->state.rp.deliver(std::move(e)); };
  self->request(s->a, caf::infinite, x)
      .then(
          [=](std::int64_t y) {
            struct Gather {
              std::int64_t b = 0, c = 0;
              int pending = 2;
            };
            auto g = std::make_shared<Gather>();
            auto join = [=] {
              if (--g->pending != 0) return;
              self->request(s->d, caf::infinite, g->b, g->c)
                  .then([=](std::int64_t z) { finish_run(self, s, x, z); }, fail);
            };
            self->request(s->b, caf::infinite, y)
                .then(
                    [=](std::int64_t v) {
                      g->b = v;
                      join();
                    },
                    fail);
            self->request(s->c, caf::infinite, y)
                .then(
                    [=](std::int64_t v) {
                      g->c = v;
                      join();
                    },
                    fail);
          },
          fail);
}

caf::behavior driver(Driver* self, std::shared_ptr<const Shape> s) {
  return {[=](go_atom, std::int64_t total, std::int64_t window) -> caf::result<caf::message> {
    auto& st = self->state;
    st.next = st.done = st.wrong = 0;
    st.total = total;
    st.rp = self->make_response_promise();
    for (std::int64_t i = 0; i < window && i < total; ++i) start_run(self, s);
    if (total == 0) st.rp.deliver(std::int64_t{0}, std::int64_t{0});
    return st.rp;
  }};
}

double caf_rep(std::size_t threads, const std::string& policy, int runs, int window, int warmup) {
  CafSystem cs(threads, policy);
  auto& sys = cs.sys();
  auto s = std::make_shared<Shape>();
  s->a = sys.spawn([]() -> caf::behavior { return {[](std::int64_t x) { return x + 1; }}; });
  s->b = sys.spawn([]() -> caf::behavior { return {[](std::int64_t x) { return x * 2; }}; });
  s->c = sys.spawn([]() -> caf::behavior { return {[](std::int64_t x) { return x * 3; }}; });
  s->d = sys.spawn(
      []() -> caf::behavior { return {[](std::int64_t x, std::int64_t y) { return x + y; }}; });
  auto drv = sys.spawn(driver, std::shared_ptr<const Shape>(s));
  double secs = 0;
  {
    caf::scoped_actor self{sys};
    auto go = [&](int total) {
      auto t0 = Clock::now();
      self->request(drv, caf::infinite, go_atom::value, std::int64_t{total}, std::int64_t{window})
          .receive(
              [&](std::int64_t done, std::int64_t wrong) {
                if (done != total || wrong != 0) throw std::runtime_error("W3 caf: wrong result");
              },
              [&](caf::error& e) { throw std::runtime_error(sys.render(e)); });
      return seconds_since(t0);
    };
    go(warmup);
    secs = go(runs);
  }
  for (auto& a : {drv, s->a, s->b, s->c, s->d})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  return secs;
}

}  // namespace

int main(int argc, char** argv) try {
  Args args(argc, argv);
  parse_durability(args);
  const int reps = static_cast<int>(args.num("reps", 5));
  const int runs = static_cast<int>(args.num("runs", 10000));
  const int window = static_cast<int>(args.num("window", 64));
  const int warmup = static_cast<int>(args.num("warmup", 500));
  const int mem_runs = static_cast<int>(args.num("mem-runs", 3000));
  const std::size_t threads = scheduler_threads(args);
  const std::string policy = caf_policy(args);
  emit_meta("bench_w3_throughput");
  for (int rep = 1; rep <= reps; ++rep) {
    if (args.side_enabled("flux")) {
      WindowStats w = flux_rep(threads, runs, window, warmup);
      double secs = w.seconds;
      double rps = runs / secs;
      result_line(k_flux_exec, rep, rps * k_w3_nodes_per_run)
          .num("runs", runs)
          .num("window", window)
          .num("seconds", secs)
          .num("records_per_s", rps * k_w3_records_per_run)
          .num("start_us_mean", w.start_seconds / runs * 1e6)
          .num("caller_waiting_share", w.wait_seconds / secs)
          .emit();
      result_line(k_flux_runs, rep, rps).num("runs", runs).num("window", window).emit();
      if (!args.has("no-mem")) {
        std::optional<MemSample> m;
        for (int attempt = 1; attempt <= 3 && !m; ++attempt) {
          m = flux_mem_rep(threads, mem_runs, window, warmup);
          if (!m) note("W3 memory: no sample with the window half full (attempt %d of 3)", attempt);
        }
        if (m) {
          result_line(k_flux_mem, rep, m->bytes_per_run)
              .num("in_flight", m->in_flight)
              .num("rss_delta", m->rss_delta)
              .emit();
        }
      }
    }
    if (args.side_enabled("baseline")) {
      double secs = caf_rep(threads, policy, runs, window, warmup);
      double rps = runs / secs;
      result_line(k_caf_exec, rep, rps * k_w3_nodes_per_run)
          .num("runs", runs)
          .num("window", window)
          .num("seconds", secs)
          .emit();
      result_line(k_caf_runs, rep, rps).num("runs", runs).num("window", window).emit();
    }
    note("W3 repetition %d/%d done", rep, reps);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_w3_throughput: %s\n", e.what());
  return 1;
}
