// The process-wide metrics (src/metrics/metrics.hpp) and their Prometheus text rendering.

#include "metrics/metrics.hpp"

#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>

#include "flux/metrics.hpp"

namespace flux::detail::metrics {
namespace {

/// A Prometheus histogram with fixed upper bounds (in seconds): per-bucket counts (not
/// cumulative; summed when rendered) and the sum in nanoseconds, all relaxed atomics, so a
/// scrape may see an observation in the count but not yet in the sum — as any client
/// library's does.
template <std::size_t N>
class Histogram {
 public:
  explicit Histogram(const std::array<double, N>& bounds) : bounds_(bounds) {}

  void observe(std::chrono::nanoseconds took) noexcept {
    const double s = std::chrono::duration<double>(took).count();
    std::size_t i = 0;
    while (i < N && s > bounds_[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(took.count() > 0 ? static_cast<std::uint64_t>(took.count()) : 0,
                      std::memory_order_relaxed);
  }

  /// `name`_bucket, _sum and _count lines; `labels` ("node=\"x\"" or "") go first.
  void render(std::string& out, const std::string& name, const std::string& labels) const {
    std::uint64_t cumulative = 0;
    const std::string sep = labels.empty() ? "" : ",";
    char buf[64];
    for (std::size_t i = 0; i <= N; ++i) {
      cumulative += counts_[i].load(std::memory_order_relaxed);
      if (i < N) {
        std::snprintf(buf, sizeof buf, "%g", bounds_[i]);
      } else {
        std::snprintf(buf, sizeof buf, "+Inf");
      }
      out += name + "_bucket{" + labels + sep + "le=\"" + buf + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    std::snprintf(buf, sizeof buf, "%.9f",
                  static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9);
    const std::string braces = labels.empty() ? "" : "{" + labels + "}";
    out += name + "_sum" + braces + " " + buf + "\n";
    out += name + "_count" + braces + " " + std::to_string(cumulative) + "\n";
  }

 private:
  const std::array<double, N> bounds_;
  std::array<std::atomic<std::uint64_t>, N + 1> counts_{};  // the last: above every bound
  std::atomic<std::uint64_t> sum_ns_{0};
};

// Steps: from sub-millisecond local nodes to minutes of blocking work.
constexpr std::array<double, 13> k_step_bounds{0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                               0.25,   0.5,   1,     5,    30,    300};
// Store batches: a Redis round trip on loopback is ~0.1 ms; retries can take seconds.
constexpr std::array<double, 11> k_store_bounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                0.01,   0.05,    0.25,   1,     10};
using StepHistogram = Histogram<k_step_bounds.size()>;

struct NodeStats {
  StepHistogram duration{k_step_bounds};
  std::atomic<std::uint64_t> failures{0};
};

struct WatchedWorker {
  std::string id;
  std::function<std::size_t()> busy;
  std::size_t capacity = 0;
};

/// Everything, for the whole process. Leaked on purpose: hooks may run during static
/// destruction (a Runtime destroyed by a static's destructor).
struct Registry {
  std::atomic<std::uint64_t> runs_started{0};
  std::mutex ended_mu;
  std::map<std::string, std::uint64_t> runs_ended{{"completed", 0}, {"failed", 0}};
  std::atomic<std::int64_t> steps_in_flight{0};
  std::atomic<std::uint64_t> redispatches{0};
  std::atomic<std::int64_t> persistence_queue{0};
  std::atomic<std::uint64_t> store_records{0};
  Histogram<k_store_bounds.size()> store_write{k_store_bounds};

  std::mutex nodes_mu;
  std::map<std::string, std::unique_ptr<NodeStats>> nodes;         // driver side (observer)
  std::map<std::string, std::unique_ptr<StepHistogram>> executed;  // worker side

  std::mutex workers_mu;
  std::uint64_t next_watch = 1;
  std::map<std::uint64_t, WatchedWorker> workers;

  NodeStats& node(const std::string& name) {
    std::lock_guard lock(nodes_mu);
    auto& slot = nodes[name];
    if (!slot) slot = std::make_unique<NodeStats>();
    return *slot;
  }
  StepHistogram& executed_node(const std::string& name) {
    std::lock_guard lock(nodes_mu);
    auto& slot = executed[name];
    if (!slot) slot = std::make_unique<StepHistogram>(k_step_bounds);
    return *slot;
  }
};

Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

/// A label value in the text format: backslash, double quote and line feed escaped.
std::string label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void header(std::string& out, const std::string& name, const char* type, const char* help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

/// A parallel as a whole is reported under the node name "parallel"; it is not a step (its
/// branches are). Tested on the name at both ends, so that start and end always pair.
bool is_step(const std::string& node) { return node != "parallel"; }

/// Counts runs and steps from the engine's observer calls (on its threads: lock-free but
/// for the per-node map).
class MetricsObserver final : public Observer {
 public:
  void on_run_start(const RunInfo&) override {
    registry().runs_started.fetch_add(1, std::memory_order_relaxed);
  }
  void on_run_end(const RunInfo& run) override {
    Registry& r = registry();
    std::lock_guard lock(r.ended_mu);
    ++r.runs_ended[to_string(run.status)];
  }
  void on_node_start(const NodeEvent& event) override {
    if (is_step(event.node)) registry().steps_in_flight.fetch_add(1, std::memory_order_relaxed);
  }
  void on_node_end(const NodeEvent& event, const HistoryEntry& entry) override {
    if (!is_step(event.node)) return;
    registry().steps_in_flight.fetch_sub(1, std::memory_order_relaxed);
    registry().node(event.node).duration.observe(entry.duration);
  }
  void on_node_error(const NodeEvent& event, const HistoryEntry& entry) override {
    if (!is_step(event.node)) return;
    registry().steps_in_flight.fetch_sub(1, std::memory_order_relaxed);
    NodeStats& stats = registry().node(event.node);
    stats.duration.observe(entry.duration);
    stats.failures.fetch_add(1, std::memory_order_relaxed);
  }
};

}  // namespace

void persistence_queued(std::int64_t delta) noexcept {
  registry().persistence_queue.fetch_add(delta, std::memory_order_relaxed);
}

void store_write(std::chrono::nanoseconds took, std::size_t records) noexcept {
  registry().store_write.observe(took);
  registry().store_records.fetch_add(records, std::memory_order_relaxed);
}

void step_redispatched() noexcept {
  registry().redispatches.fetch_add(1, std::memory_order_relaxed);
}

void worker_step(const std::string& node, std::chrono::nanoseconds took) {
  registry().executed_node(node).observe(took);
}

std::uint64_t watch_worker(std::string id, std::function<std::size_t()> busy,
                           std::size_t capacity) {
  Registry& r = registry();
  std::lock_guard lock(r.workers_mu);
  const std::uint64_t handle = r.next_watch++;
  r.workers.emplace(handle, WatchedWorker{std::move(id), std::move(busy), capacity});
  return handle;
}

void unwatch_worker(std::uint64_t handle) {
  Registry& r = registry();
  std::lock_guard lock(r.workers_mu);
  r.workers.erase(handle);
}

}  // namespace flux::detail::metrics

namespace flux {

std::shared_ptr<Observer> metrics_observer() {
  static const std::shared_ptr<Observer> observer =
      std::make_shared<detail::metrics::MetricsObserver>();
  return observer;
}

std::string metrics_text() {
  using namespace detail::metrics;
  Registry& r = registry();
  std::string out;
  out.reserve(4096);

  header(out, "flux_runs_started_total", "counter", "Runs started (or resumed) by this process.");
  out += "flux_runs_started_total " + std::to_string(r.runs_started.load()) + "\n";
  {
    std::lock_guard lock(r.ended_mu);
    for (const auto& [status, n] : r.runs_ended) {
      const std::string name = "flux_runs_" + status + "_total";
      header(out, name, "counter", ("Runs of this process that ended " + status + ".").c_str());
      out += name + " " + std::to_string(n) + "\n";
    }
  }
  header(out, "flux_steps_in_flight", "gauge",
         "Node steps of this process's runs executing now, here or on workers.");
  out += "flux_steps_in_flight " + std::to_string(r.steps_in_flight.load()) + "\n";
  {
    std::lock_guard lock(r.nodes_mu);
    header(out, "flux_step_duration_seconds", "histogram",
           "Duration of node steps of this process's runs (failed ones too), by node.");
    for (const auto& [node, stats] : r.nodes) {
      stats->duration.render(out, "flux_step_duration_seconds", "node=\"" + label(node) + "\"");
    }
    header(out, "flux_step_failures_total", "counter",
           "Node steps of this process's runs that failed, by node.");
    for (const auto& [node, stats] : r.nodes) {
      out += "flux_step_failures_total{node=\"" + label(node) + "\"} " +
             std::to_string(stats->failures.load()) + "\n";
    }
    header(out, "flux_worker_step_duration_seconds", "histogram",
           "Duration of the steps the workers of this process executed, by node.");
    for (const auto& [node, histogram] : r.executed) {
      histogram->render(out, "flux_worker_step_duration_seconds", "node=\"" + label(node) + "\"");
    }
  }
  header(out, "flux_step_redispatches_total", "counter",
         "Steps placed again on another worker because the worker executing them was lost.");
  out += "flux_step_redispatches_total " + std::to_string(r.redispatches.load()) + "\n";
  header(out, "flux_persistence_queue_depth", "gauge",
         "Records waiting for this process's persistence actor.");
  out += "flux_persistence_queue_depth " + std::to_string(r.persistence_queue.load()) + "\n";
  header(out, "flux_store_write_seconds", "histogram",
         "Duration of one batch of records written to the store.");
  r.store_write.render(out, "flux_store_write_seconds", "");
  header(out, "flux_store_writes_total", "counter", "Records handed to the store.");
  out += "flux_store_writes_total " + std::to_string(r.store_records.load()) + "\n";
  {
    std::lock_guard lock(r.workers_mu);
    header(out, "flux_worker_steps_in_flight", "gauge",
           "Steps a worker of this process executes now (its load).");
    for (const auto& [handle, w] : r.workers) {
      out += "flux_worker_steps_in_flight{worker=\"" + label(w.id) + "\"} " +
             std::to_string(w.busy()) + "\n";
    }
    header(out, "flux_worker_capacity", "gauge",
           "Steps a worker of this process executes at most at once.");
    for (const auto& [handle, w] : r.workers) {
      out += "flux_worker_capacity{worker=\"" + label(w.id) + "\"} " + std::to_string(w.capacity) +
             "\n";
    }
  }
  return out;
}

}  // namespace flux
