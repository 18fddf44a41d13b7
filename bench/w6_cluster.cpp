// W6 distributed: W2's shape — `inc | parallel(b1..b10) | sum`, branch i: x -> x * i, sum
// adds the 10 results — with the 10 branches executed by 2 worker processes on loopback,
// alternating (b1, b3, b5, b7, b9 on the first worker; b2, b4, ..., b10 on the second), while
// `inc` and `sum` stay in the driver. Per repetition and side:
//   latency:    one run at a time, --runs (1000) runs after --warmup (200): median and p99
//               wall time per run (µs), one row each;
//   throughput: --tp-runs (5000) runs after --tp-warmup (500), at most --window (64) in
//               flight: runs/s.
//
// Baseline (side "baseline", this file, complete): raw CAF remote actors. Each worker is this
// program run as `--serve-raw PORTFILE`: it publishes on 127.0.0.1 (port 0: any free port) one
// actor answering (mul atom, std::string input bytes, int64 multiplier) with the int64
// product, where the input bytes are the int64 x in 8 little-endian bytes (standing in for a
// serialized value), writes the port to PORTFILE and serves until SIGTERM. Only CAF built-in
// types cross the wire, so nothing is registered. The driver forks/execs two such workers
// (/proc/self/exe), waits for their port files, and per repetition builds a fresh actor
// system that connects to both with `remote_actor`; a coordinator actor does W2's hops —
// request the local `inc` actor, request the 10 branches on the workers at once and gather
// in branch order, request the local `sum` actor, reply. Latency: a scoped_actor
// requests the coordinator per run (as W2). Throughput: one event-based pump actor keeps
// --window runs outstanding at the coordinator (as W3).
//
// Every process (driver and workers) runs CAF with Flux's cluster network settings
// (flux/cluster.hpp, NetworkConfig): caf::io::middleman, heartbeats every 200 ms and a
// 1000 ms connection timeout on both sides, `middleman.app-identifiers` = {"flux-bench-w6"},
// and the scheduler of the other programs (--policy, default sharing; --threads, default one
// per core). Workers are stopped with SIGTERM, then SIGKILL after --stop-timeout-ms (2000),
// whether the program ends normally or by an error; they also get SIGTERM if the driver dies
// (PR_SET_PDEATHSIG). Their stdout goes to stderr, so that stdout keeps only result lines.
//
// Flux side (side "flux"): the same pipeline as a Flux cluster — a driver (cluster-enabled
// flux::Runtime, inc and sum in ClusterConfig::local_nodes) and two worker processes (this
// program as `--serve-flux PORTFILE --store URL --prefix P`, a flux::Worker serving b1..b10),
// discovered through Redis (--port: bench/run.sh's private redis-server), every step recorded
// there. Latency: Runtime::run one at a time; throughput: --window RunHandles in flight.
//
// --capacity N: each Flux worker's WorkerConfig::capacity (0: one per core).
// --prefetch N: the driver's ClusterConfig::prefetch (default: the library's).
// Options: --reps N (5) --runs N (1000) --warmup N (200) --tp-runs N (5000)
//          --tp-warmup N (500) --window N (64) --timeout-ms N (10000, per remote request)
//          --start-timeout-ms N (10000, for the workers' port files) --stop-timeout-ms N
//          --threads N (cores) --policy sharing|stealing (every process) --only flux|baseline
// Worker mode (started by the driver): --serve-raw PORTFILE [--threads N --policy P]

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <flux/flux.hpp>
#include <fstream>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"
#include "caf_common.hpp"

using namespace bench;

namespace {

constexpr int k_branches = 10;
constexpr int k_workers = 2;
constexpr const char* k_app_id = "flux-bench-w6";

// The table rows. A Flux figure is paired with its baseline by `row`, so the Flux half
// emits its figures under these same rows with side "flux" (and its targets).
const std::string k_row_latency = "W6 distributed latency (us per run)";
const std::string k_row_p99 = "W6 distributed latency p99 (us per run)";
const std::string k_row_runs = "W6 distributed runs/s (64 in flight)";

/// The three figures of one side.
struct Sides {
  Result latency, p99, runs;
};
const Sides k_raw{
    {"W6", k_row_latency, "baseline",
     "raw CAF remote: inc, 10 branches on 2 worker processes (remote_actor), gather, sum", "us/run",
     "lower", ""},
    {"W6", k_row_p99, "baseline", "raw CAF remote, p99 of the per-run latencies", "us/run", "lower",
     ""},
    {"W6", k_row_runs, "baseline", "raw CAF remote, one pump actor keeping 64 runs in flight",
     "runs/s", "higher", ""},
};
const Sides k_flux{
    {"W6", k_row_latency, "flux",
     "Flux cluster driver: inc and sum local (ClusterConfig::local_nodes), 10 branches placed "
     "on 2 flux::Worker processes, every step recorded in Redis",
     "us/run", "lower", "ratio<=2"},
    {"W6", k_row_p99, "flux", "Flux cluster, p99 of the per-run latencies", "us/run", "lower", ""},
    {"W6", k_row_runs, "flux", "Flux cluster, 64 runs in flight (RunHandles)", "runs/s", "higher",
     "value>=2000"},
};

std::int64_t expected(std::int64_t x) { return (x + 1) * (k_branches * (k_branches + 1) / 2); }

// ---- settings shared by every process ----------------------------------------------------

/// Configures CAF's network layer like a Flux cluster process (flux/cluster.hpp).
void configure_network(caf::actor_system_config& cfg) {
  cfg.load<caf::io::middleman>();
  // Must be a caf::timespan (an int or a string is refused) and set on both sides: a side
  // without heartbeats gets its healthy idle connections dropped by the other.
  cfg.set("middleman.heartbeat-interval", caf::timespan{std::chrono::milliseconds(200)});
  cfg.set("middleman.connection-timeout", caf::timespan{std::chrono::milliseconds(1000)});
  cfg.set("middleman.app-identifiers", std::vector<std::string>{k_app_id});
}

/// Sends an exit to its actors when it goes out of scope. An actor system's destructor waits
/// for every actor, so without this an error thrown while they are alive hangs the program.
struct ExitOnScopeEnd {
  std::vector<caf::actor> actors;
  ~ExitOnScopeEnd() {
    for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
};

// ---- the raw worker process: --serve-raw PORTFILE -------------------------------------------

using mul_atom = caf::atom_constant<caf::atom("mul")>;

std::string encode_input(std::int64_t x) {
  auto u = static_cast<std::uint64_t>(x);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((u >> (8 * i)) & 0xff);
  return out;
}
std::optional<std::int64_t> decode_input(const std::string& s) {
  if (s.size() != 8) return std::nullopt;
  std::uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u |= std::uint64_t{static_cast<unsigned char>(s[i])} << (8 * i);
  return static_cast<std::int64_t>(u);
}

caf::behavior raw_branch_server(caf::event_based_actor* self) {
  // A request of another signature is answered with unexpected_message (nothing printed).
  self->set_default_handler(caf::drop);
  return {
      [](mul_atom, const std::string& input, std::int64_t multiplier) -> caf::result<std::int64_t> {
        auto x = decode_input(input);
        if (!x) return caf::make_error(caf::sec::invalid_argument);
        return *x * multiplier;
      }};
}

/// Writes `port` to `path` atomically (a temporary file renamed), so a reader never sees a
/// partial number.
void write_port_file(const std::string& path, std::uint16_t port) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << port << '\n';
    if (!f.flush()) throw std::runtime_error("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot rename " + tmp + ": " + std::strerror(errno));
}

int serve_raw(const Args& args) {
  const std::string port_file = args.str("serve-raw", "");
  if (port_file.empty() || port_file == "1") throw std::invalid_argument("--serve-raw PORTFILE");
  // Block the stop signals before CAF starts its threads (they inherit the mask), so that
  // sigwait() below is the only place they are delivered.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  if (pthread_sigmask(SIG_BLOCK, &stop, nullptr) != 0)
    throw std::runtime_error("pthread_sigmask failed");
  CafSystem cs(scheduler_threads(args), caf_policy(args), configure_network);
  auto& sys = cs.sys();
  auto server = sys.spawn(raw_branch_server);
  ExitOnScopeEnd stop_server{{server}};
  auto port = sys.middleman().publish(server, 0, "127.0.0.1");
  if (!port) throw std::runtime_error("publish failed: " + sys.render(port.error()));
  write_port_file(port_file, *port);
  int sig = 0;
  sigwait(&stop, &sig);
  sys.middleman().unpublish(server);
  return 0;
}

// ---- the driver's worker processes ----------------------------------------------------------

/// `count` copies of this program in a worker mode (`mode`, e.g. "--serve-raw"), each given
/// its own port file; the constructor returns once every worker has written its port.
/// stop() (also run by the destructor, and when the constructor fails) sends SIGTERM to
/// each, then SIGKILL to those still alive after `stop_timeout`, and reaps them.
class WorkerProcesses {
 public:
  WorkerProcesses(const std::string& mode, int count, const std::vector<std::string>& extra,
                  std::chrono::milliseconds start_timeout, std::chrono::milliseconds stop_timeout)
      : stop_timeout_(stop_timeout) {
    char tmpl[] = "/tmp/flux-bench-w6-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    dir_ = tmpl;
    try {
      for (int i = 0; i < count; ++i) {
        files_.push_back(dir_ + "/worker" + std::to_string(i) + ".port");
        std::vector<std::string> argv{"bench_w6_cluster", mode, files_.back()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        pids_.push_back(spawn(argv));
      }
      wait_for_ports(start_timeout);
    } catch (...) {
      stop();
      throw;
    }
  }
  ~WorkerProcesses() { stop(); }
  WorkerProcesses(const WorkerProcesses&) = delete;
  WorkerProcesses& operator=(const WorkerProcesses&) = delete;

  const std::vector<std::uint16_t>& ports() const { return ports_; }

  void stop() noexcept {
    auto t0 = Clock::now();
    for (pid_t p : pids_) kill(p, SIGTERM);
    auto deadline = t0 + stop_timeout_;
    std::vector<pid_t> left;
    while (true) {
      left.clear();
      for (pid_t p : pids_) {
        if (waitpid(p, nullptr, WNOHANG) == 0) left.push_back(p);  // still running
      }
      pids_ = left;
      if (pids_.empty() || Clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (pid_t p : pids_) {
      note("W6: worker %d ignored SIGTERM for %lld ms; SIGKILL", static_cast<int>(p),
           static_cast<long long>(stop_timeout_.count()));
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
    pids_.clear();
    for (const auto& f : files_) {
      std::remove(f.c_str());
      std::remove((f + ".tmp").c_str());
    }
    files_.clear();
    if (!dir_.empty()) rmdir(dir_.c_str());
    dir_.clear();
  }

 private:
  static pid_t spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      // Only async-signal-safe calls until exec. Die with the driver, whatever kills it.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(1);
      dup2(STDERR_FILENO, STDOUT_FILENO);  // stdout is the driver's result stream
      execv("/proc/self/exe", argv.data());
      _exit(127);
    }
    return pid;
  }

  void wait_for_ports(std::chrono::milliseconds timeout) {
    ports_.assign(pids_.size(), 0);
    auto deadline = Clock::now() + timeout;
    while (true) {
      bool all = true;
      for (std::size_t i = 0; i < pids_.size(); ++i) {
        if (ports_[i] != 0) continue;
        std::ifstream f(files_[i]);
        unsigned port = 0;
        if (f >> port && port > 0 && port < 65536) {
          ports_[i] = static_cast<std::uint16_t>(port);
          continue;
        }
        all = false;
        int status = 0;
        if (waitpid(pids_[i], &status, WNOHANG) == pids_[i]) {
          pids_.erase(pids_.begin() + static_cast<long>(i));
          throw std::runtime_error("worker " + std::to_string(i) + " exited before serving (" +
                                   (WIFEXITED(status)
                                        ? "status " + std::to_string(WEXITSTATUS(status))
                                        : "signal " + std::to_string(WTERMSIG(status))) +
                                   ")");
        }
      }
      if (all) return;
      if (Clock::now() >= deadline)
        throw std::runtime_error("workers did not write their ports within " +
                                 std::to_string(timeout.count()) + " ms");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::chrono::milliseconds stop_timeout_;
  std::string dir_;
  std::vector<std::string> files_;
  std::vector<pid_t> pids_;
  std::vector<std::uint16_t> ports_;
};

// ---- measurements ----------------------------------------------------------------------

struct Options {
  int runs, warmup, tp_runs, tp_warmup, window;
  std::chrono::milliseconds timeout;  // per remote request
  std::size_t threads;
  std::string policy;
  long prefetch = -1;  // ClusterConfig::prefetch; -1: the library's default
};

/// What one side measures in one repetition.
struct Measurement {
  std::vector<double> latency_us;  // per run, one run at a time
  double runs_per_s = 0;           // --window in flight
};

/// The raw-CAF side's actors in the driver.
struct Topology {
  caf::actor inc, sum;
  std::vector<caf::actor> workers;  // the remote branch servers
  caf::duration timeout;
};

caf::behavior inc_actor(caf::event_based_actor*) {
  return {[](std::int64_t x) { return x + 1; }};
}
caf::behavior sum_actor(caf::event_based_actor*) {
  return {[](const std::vector<std::int64_t>& v) {
    return std::accumulate(v.begin(), v.end(), std::int64_t{0});
  }};
}

/// One run per request (x -> result): W2's coordinator with the branches on the workers.
caf::behavior coordinator(caf::event_based_actor* self, std::shared_ptr<const Topology> t) {
  return {[=](std::int64_t x) -> caf::result<std::int64_t> {
    auto rp = self->make_response_promise<std::int64_t>();
    auto fail = [=](caf::error& e) mutable { rp.deliver(std::move(e)); };
    self->request(t->inc, caf::infinite, x)
        .then(
            [=](std::int64_t y) {
              struct Gather {
                std::vector<std::int64_t> out;
                int pending = k_branches;
              };
              auto g = std::make_shared<Gather>();
              g->out.resize(k_branches);
              const std::string input = encode_input(y);
              for (int b = 0; b < k_branches; ++b) {
                const caf::actor& worker = t->workers[static_cast<std::size_t>(b % k_workers)];
                self->request(worker, t->timeout, mul_atom::value, input, std::int64_t{b + 1})
                    .then(
                        [=](std::int64_t z) {
                          g->out[static_cast<std::size_t>(b)] = z;
                          if (--g->pending != 0) return;
                          self->request(t->sum, caf::infinite, std::move(g->out))
                              .then([=](std::int64_t s) mutable { rp.deliver(s); }, fail);
                        },
                        fail);
              }
            },
            fail);
    return rp;
  }};
}

using go_atom = caf::atom_constant<caf::atom("go")>;

struct PumpState {
  std::int64_t next = 0, done = 0, total = 0, wrong = 0;
  caf::response_promise rp;
};
using Pump = caf::stateful_actor<PumpState>;

void pump_one(Pump* self, const caf::actor& coord, caf::duration timeout) {
  std::int64_t x = self->state.next++;
  self->request(coord, timeout, x)
      .then(
          [=](std::int64_t z) {
            auto& st = self->state;
            if (z != expected(x)) ++st.wrong;
            ++st.done;
            if (st.next < st.total) pump_one(self, coord, timeout);
            if (st.done == st.total) st.rp.deliver(st.done, st.wrong);
          },
          [=](caf::error& e) { self->state.rp.deliver(std::move(e)); });
}

/// Keeps `window` runs outstanding at `coord` until `total` have ended; replies (done, wrong).
caf::behavior pump(Pump* self, caf::actor coord, caf::duration timeout) {
  return {[=](go_atom, std::int64_t total, std::int64_t window) -> caf::result<caf::message> {
    auto& st = self->state;
    st.next = st.done = st.wrong = 0;
    st.total = total;
    st.rp = self->make_response_promise();
    for (std::int64_t i = 0; i < window && i < total; ++i) pump_one(self, coord, timeout);
    if (total == 0) st.rp.deliver(std::int64_t{0}, std::int64_t{0});
    return st.rp;
  }};
}

Measurement measure_raw(const std::vector<std::uint16_t>& ports, const Options& o) {
  CafSystem cs(o.threads, o.policy, configure_network);
  auto& sys = cs.sys();
  auto t = std::make_shared<Topology>();
  t->timeout = caf::duration{o.timeout};
  for (std::uint16_t port : ports) {
    auto w = sys.middleman().remote_actor("127.0.0.1", port);
    if (!w) {
      throw std::runtime_error("remote_actor 127.0.0.1:" + std::to_string(port) + ": " +
                               sys.render(w.error()));
    }
    t->workers.push_back(std::move(*w));
  }
  t->inc = sys.spawn(inc_actor);
  t->sum = sys.spawn(sum_actor);
  auto coord = sys.spawn(coordinator, std::shared_ptr<const Topology>(t));
  auto pumper = sys.spawn(pump, coord, t->timeout);
  ExitOnScopeEnd stop_actors{{pumper, coord, t->inc, t->sum}};
  Measurement m;
  {
    caf::scoped_actor self{sys};
    // A run's own timeout: all its requests are sent at once, so one remote timeout plus slack.
    const caf::duration run_timeout{o.timeout * 2};
    for (int i = 0; i < o.warmup + o.runs; ++i) {
      std::int64_t got = -1;
      auto t0 = Clock::now();
      self->request(coord, run_timeout, std::int64_t{i})
          .receive([&](std::int64_t v) { got = v; },
                   [&](caf::error& e) { throw std::runtime_error("W6 raw: " + sys.render(e)); });
      auto t1 = Clock::now();
      if (got != expected(i)) throw std::runtime_error("W6 raw: wrong result");
      if (i >= o.warmup) m.latency_us.push_back(micros_between(t0, t1));
    }
    auto go = [&](int total) {
      auto t0 = Clock::now();
      self->request(pumper, caf::infinite, go_atom::value, std::int64_t{total},
                    std::int64_t{o.window})
          .receive(
              [&](std::int64_t done, std::int64_t wrong) {
                if (done != total || wrong != 0) throw std::runtime_error("W6 raw: wrong result");
              },
              [&](caf::error& e) { throw std::runtime_error("W6 raw: " + sys.render(e)); });
      return seconds_since(t0);
    };
    go(o.tp_warmup);
    m.runs_per_s = o.tp_runs / go(o.tp_runs);
  }
  return m;
}

// ---- the Flux side ------------------------------------------------------------------------

/// Branch i of W2 (x -> x * i), defined once for the driver and the workers: they agree on it
/// by name and signature.
std::vector<flux::Node> branch_nodes() {
  std::vector<flux::Node> out;
  for (int i = 1; i <= k_branches; ++i) {
    out.push_back(flux::node("b" + std::to_string(i), [i](std::int64_t x) { return x * i; }));
  }
  return out;
}

flux::Pipeline flux_w6_pipeline() {
  auto inc = flux::node("inc", [](std::int64_t x) { return x + 1; });
  auto sum = flux::node("sum", [](const std::vector<std::int64_t>& xs) {
    return std::accumulate(xs.begin(), xs.end(), std::int64_t{0});
  });
  std::vector<flux::Pipeline> branches;
  for (const auto& b : branch_nodes()) branches.emplace_back(b);
  return (inc | flux::parallel(branches) | sum).named("w6");
}

/// --serve-flux PORTFILE --store URL --prefix P: a flux::Worker serving b1..b10.
int serve_flux(const Args& args) {
  const std::string port_file = args.str("serve-flux", "");
  if (port_file.empty() || port_file == "1") throw std::invalid_argument("--serve-flux PORTFILE");
  flux::Registry registry;
  for (const auto& b : branch_nodes()) registry.add(b);
  flux::WorkerConfig config;
  config.store = args.str("store", "");
  config.key_prefix = args.str("prefix", "flux-w6");
  config.id = args.str("id", "");
  config.capacity = static_cast<std::size_t>(args.num("capacity", 0));
  flux::Worker worker(registry, config);
  write_port_file(port_file, worker.port());
  worker.serve_until_signal();
  return 0;
}

Measurement measure_flux(const std::string& store, const std::string& prefix, const Options& o) {
  flux::Config config;
  config.store = store;
  config.key_prefix = prefix;
  config.threads = o.threads;
  config.scheduler =
      o.policy == "stealing" ? flux::Config::Scheduler::stealing : flux::Config::Scheduler::sharing;
  config.cluster.enabled = true;
  config.cluster.local_nodes = {"inc", "sum"};
  if (o.prefetch >= 0) config.cluster.prefetch = static_cast<std::uint32_t>(o.prefetch);
  config.retention =
      flux::Retention{std::chrono::milliseconds{0}, 2000};  // keep Redis small across reps
  flux::Runtime rt(config);
  const flux::Pipeline pipeline = flux_w6_pipeline();
  // Both workers known before measuring: run until both have executed a branch.
  std::set<std::string> seen;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (seen.size() < k_workers && Clock::now() < deadline) {
    auto r = rt.run(pipeline, std::int64_t{0});
    if (!r.ok()) throw std::runtime_error("W6 flux: " + r.error->message);
    for (const auto& e : rt.history(r.run_id)) {
      if (!e.worker.empty()) seen.insert(e.worker);
    }
  }
  if (seen.size() < k_workers) throw std::runtime_error("W6 flux: the workers did not join");
  Measurement m;
  for (int i = 0; i < o.warmup + o.runs; ++i) {
    auto t0 = Clock::now();
    auto r = rt.run(pipeline, std::int64_t{i});
    auto t1 = Clock::now();
    if (!r.ok()) throw std::runtime_error("W6 flux: " + r.error->message);
    if (r.output.as_int() != expected(i)) throw std::runtime_error("W6 flux: wrong result");
    if (i >= o.warmup) m.latency_us.push_back(micros_between(t0, t1));
  }
  auto go = [&](int total) {
    std::deque<std::pair<std::int64_t, flux::RunHandle>> window;
    auto t0 = Clock::now();
    auto finish_oldest = [&] {
      auto [x, h] = window.front();
      window.pop_front();
      auto r = h.wait();
      if (!r.ok()) throw std::runtime_error("W6 flux: " + r.error->message);
      if (r.output.as_int() != expected(x)) throw std::runtime_error("W6 flux: wrong result");
    };
    for (std::int64_t x = 0; x < total; ++x) {
      if (static_cast<int>(window.size()) >= o.window) finish_oldest();
      window.emplace_back(x, rt.start(pipeline, x));
    }
    while (!window.empty()) finish_oldest();
    return seconds_since(t0);
  };
  go(o.tp_warmup);
  m.runs_per_s = o.tp_runs / go(o.tp_runs);
  return m;
}

void emit(const Sides& s, int rep, const Measurement& m, const Options& o) {
  const auto& v = m.latency_us;
  result_line(s.latency, rep, median(v))
      .num("runs", static_cast<double>(v.size()))
      .num("workers", k_workers)
      .num("mean", mean(v))
      .num("p10", quantile(v, 0.10))
      .num("p90", quantile(v, 0.90))
      .num("p99", quantile(v, 0.99))
      .emit();
  result_line(s.p99, rep, quantile(v, 0.99))
      .num("runs", static_cast<double>(v.size()))
      .num("workers", k_workers)
      .emit();
  result_line(s.runs, rep, m.runs_per_s)
      .num("runs", o.tp_runs)
      .num("window", o.window)
      .num("workers", k_workers)
      .emit();
}

}  // namespace

int main(int argc, char** argv) try {
  Args args(argc, argv);
  if (args.has("serve-raw")) return serve_raw(args);
  if (args.has("serve-flux")) return serve_flux(args);

  Options o;
  o.runs = static_cast<int>(args.num("runs", 1000));
  o.warmup = static_cast<int>(args.num("warmup", 200));
  o.tp_runs = static_cast<int>(args.num("tp-runs", 5000));
  o.tp_warmup = static_cast<int>(args.num("tp-warmup", 500));
  o.window = static_cast<int>(args.num("window", 64));
  o.timeout = std::chrono::milliseconds(args.num("timeout-ms", 10000));
  o.threads = scheduler_threads(args);
  o.policy = caf_policy(args);
  o.prefetch = args.num("prefetch", -1);
  const int reps = static_cast<int>(args.num("reps", 5));
  const auto start_timeout = std::chrono::milliseconds(args.num("start-timeout-ms", 10000));
  const auto stop_timeout = std::chrono::milliseconds(args.num("stop-timeout-ms", 2000));
  // The workers run with the driver's scheduler settings.
  const std::vector<std::string> worker_args{"--threads", std::to_string(o.threads), "--policy",
                                             o.policy};
  emit_meta("bench_w6_cluster");

  // Started once for all repetitions; each repetition connects afresh.
  std::optional<WorkerProcesses> raw_workers;
  if (args.side_enabled("baseline"))
    raw_workers.emplace("--serve-raw", k_workers, worker_args, start_timeout, stop_timeout);
  // The Flux side needs the store its workers announce themselves in (bench/run.sh: --port).
  const std::string store = "redis://127.0.0.1:" + std::to_string(args.num("port", 6379));
  const std::string prefix = "flux-w6-" + std::to_string(::getpid());
  std::optional<WorkerProcesses> flux_workers;
  if (args.side_enabled("flux")) {
    std::vector<std::string> flux_args{"--store",    store,
                                       "--prefix",   prefix,
                                       "--capacity", std::to_string(args.num("capacity", 0))};
    flux_workers.emplace("--serve-flux", k_workers, flux_args, start_timeout, stop_timeout);
  }

  for (int rep = 1; rep <= reps; ++rep) {
    if (flux_workers) emit(k_flux, rep, measure_flux(store, prefix, o), o);
    if (raw_workers) emit(k_raw, rep, measure_raw(raw_workers->ports(), o), o);
    note("W6 repetition %d/%d done", rep, reps);
  }
  if (raw_workers) raw_workers->stop();
  if (flux_workers) flux_workers->stop();
  return 0;
} catch (const std::exception& e) {
  // The workers are already stopped: locals are destroyed before this handler runs.
  std::fprintf(stderr, "bench_w6_cluster: %s\n", e.what());
  return 1;
}
