#include "flux/runtime.hpp"

#include <string_view>

#include "cluster/dispatcher.hpp"
#include "cluster/wire.hpp"
#include "engine/engine.hpp"
#include "flux/metrics.hpp"
#include "run/run_state.hpp"
#include "store/open_storage.hpp"

namespace flux {

const char* to_string(RunStatus status) noexcept {
  switch (status) {
    case RunStatus::running:
      return "running";
    case RunStatus::completed:
      return "completed";
    case RunStatus::failed:
      return "failed";
    case RunStatus::cancelled:
      return "cancelled";
    case RunStatus::compensated:
      return "compensated";
    case RunStatus::compensation_failed:
      return "compensation_failed";
  }
  return "unknown";
}

std::uint32_t completed_steps(const std::vector<HistoryEntry>& history) {
  std::vector<std::string_view> steps;
  for (const HistoryEntry& e : history) {
    if (e.type == HistoryEntry::Type::node && e.ok()) steps.emplace_back(e.step);
  }
  return detail::distinct_steps(std::move(steps));
}

void RunResult::throw_if_failed() const {
  if (status == RunStatus::completed) return;
  if (status == RunStatus::running) {
    throw Error(Errc::invalid_argument, "run " + run_id + " has not ended");
  }
  if (status == RunStatus::cancelled) {
    throw Error(Errc::node_failed, error ? error->message : "run " + run_id + " was cancelled");
  }
  throw Error(Errc::node_failed, "run " + run_id + " failed: " +
                                     (error ? error->message : std::string("unknown error")));
}

RunHandle::RunHandle(std::shared_ptr<detail::RunCompletion> completion) noexcept
    : completion_(std::move(completion)) {}

const std::string& RunHandle::run_id() const noexcept { return completion_->run_id; }

RunResult RunHandle::wait() const {
  if (const Context* ctx = detail::executing_node()) {
    // The waiting thread is a scheduler or pool thread that the awaited run (and every
    // other run) may need: with enough such waits at once, nothing can move. Refused even
    // when the run happens to be over already, so that the outcome never depends on timing.
    throw Error(Errc::invalid_argument,
                "node '" + ctx->node_name() + "' (step " + ctx->step_id() + ") of run " +
                    ctx->run_id() + " waits for run " + completion_->run_id +
                    ": waiting for a run inside a node can deadlock; start it with "
                    "ctx.start(pipeline, input) and return the flux::ChildRun from the node "
                    "to use its output");
  }
  std::unique_lock lock(completion_->mu);
  completion_->cv.wait(lock, [&] { return completion_->result.has_value(); });
  return *completion_->result;
}

std::optional<RunResult> RunHandle::wait_for(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(completion_->mu);
  if (!completion_->cv.wait_for(lock, timeout, [&] { return completion_->result.has_value(); })) {
    return std::nullopt;
  }
  return *completion_->result;
}

bool RunHandle::cancel(const std::string& reason, const CancelOptions& options) const {
  // A resumed completed run has no cancel: it is over.
  return completion_->cancel && completion_->cancel(reason, options.compensate);
}

bool RunHandle::done() const {
  std::lock_guard lock(completion_->mu);
  return completion_->result.has_value();
}

Runtime::Runtime() : Runtime(Config{}) {}
namespace {

/// A cluster driver's engine reaches the cluster through these (the facade picks the roles).
detail::ClusterHooks cluster_hooks(const Config& config) {
  if (!config.cluster.enabled) return {};
  std::string url = detail::resolve_store_url(config.store);
  if (config.storage || url.rfind("redis://", 0) != 0) {
    throw Error(Errc::invalid_argument,
                "Config::cluster is enabled, which needs a Redis store (Config::store = "
                "\"redis://...\"): workers announce themselves there");
  }
  detail::ClusterHooks hooks;
  hooks.configure = [network = config.cluster.network](caf::actor_system_config& cfg,
                                                       const std::string& owner) {
    detail::wire::configure_network(cfg, network, "driver " + owner);
  };
  hooks.remote_steps = [cluster = config.cluster, url, prefix = config.key_prefix](
                           caf::actor_system& system,
                           const std::string& owner) -> std::unique_ptr<detail::RemoteSteps> {
    return std::make_unique<detail::Dispatcher>(system, cluster, url, prefix, owner);
  };
  return hooks;
}

}  // namespace

Runtime::Runtime(Config config) {
  if (!config.metrics_listen.empty()) {
    metrics_ = std::make_unique<MetricsServer>(config.metrics_listen);
    config.observers.push_back(metrics_observer());
  }
  detail::ClusterHooks hooks = cluster_hooks(config);
  engine_ = std::make_unique<detail::Engine>(std::move(config), std::move(hooks));
}
Runtime::~Runtime() = default;
std::uint16_t Runtime::metrics_port() const noexcept { return metrics_ ? metrics_->port() : 0; }

RunHandle Runtime::start_value(const Pipeline& pipeline, Value input, const RunOptions& options) {
  return RunHandle(engine_->start(pipeline, std::move(input), options));
}

bool Runtime::cancel(std::string_view run_id, const std::string& reason,
                     const CancelOptions& options) {
  return engine_->cancel(run_id, reason, options.compensate);
}

RunResult Runtime::resume(std::string_view run_id, const Pipeline& pipeline,
                          const ResumeOptions& options) {
  return start_resume(run_id, pipeline, options).wait();
}

RunHandle Runtime::start_resume(std::string_view run_id, const Pipeline& pipeline,
                                const ResumeOptions& options) {
  return RunHandle(engine_->resume(run_id, pipeline, options));
}

std::vector<RunInfo> Runtime::list_orphans() const { return engine_->list_orphans({}).runs; }

RunPage Runtime::list_orphans_page(const RunFilter& filter) const {
  return engine_->list_orphans(filter);
}

const std::string& Runtime::owner_id() const noexcept { return engine_->owner_id(); }

std::vector<RunInfo> Runtime::list_runs(const RunFilter& filter) const {
  return engine_->storage().list_runs(filter);
}

RunPage Runtime::list_runs_page(const RunFilter& filter) const {
  return engine_->storage().list_runs_page(filter);
}

std::optional<RunInfo> Runtime::get_run(std::string_view run_id) const {
  auto info = engine_->storage().get_run(run_id);
  if (info) info->history = engine_->storage().history(run_id, 0);
  return info;
}

std::vector<HistoryEntry> Runtime::history(std::string_view run_id, std::size_t from) const {
  return engine_->storage().history(run_id, from);
}

Value::Map Runtime::run_keys(std::string_view run_id, Scope scope) const {
  return engine_->storage().keys(run_id, scope);
}

Storage& Runtime::storage() const noexcept { return engine_->storage(); }

}  // namespace flux
