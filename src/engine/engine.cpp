#include "engine/engine.hpp"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <future>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "engine/node_executors.hpp"
#include "engine/run_driver.hpp"
#include "format/record_codec.hpp"

namespace flux::detail {

const std::string k_run_input = "run input";
const std::string k_parallel_name = "parallel";

std::string encode_value_for_message(const Value& v) { return encode_value(v); }
Value decode_value_from_message(const std::string& bytes) {
  return decode_value(bytes, "a Value in an actor message");
}

Timestamp wall_now() {
  return std::chrono::time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now());
}

Value Services::for_history(const Value& v) const {
  switch (history_values) {
    case HistoryValues::full:
      return v;
    case HistoryValues::none:
      return Value{};
    case HistoryValues::truncated: {
      if (v.is_null() || v.is_bool() || v.is_int() || v.is_float()) return v;
      std::string text = v.to_string(history_value_limit);
      if (text.size() <= history_value_limit) return v;
      text.resize(history_value_limit);
      return Value::Map{{"truncated", true}, {"preview", std::move(text)}};
    }
  }
  return v;
}

void Services::report_observer_error(const char* what) {
  std::fprintf(stderr, "flux: an observer threw (ignored): %s\n", what);
}

void RunCompletion::complete(RunResult r) {
  std::vector<std::function<void(const RunResult&)>> waiting;
  {
    std::lock_guard lock(mu);
    result = std::move(r);
    waiting.swap(continuations);
  }
  cv.notify_all();
  for (auto& f : waiting) f(*result);  // `result` is set once, never changed after
}

void RunCompletion::then(std::function<void(const RunResult&)> f) {
  {
    std::lock_guard lock(mu);
    if (!result) {
      continuations.push_back(std::move(f));
      return;
    }
  }
  f(*result);
}

namespace {

/// How long cancel() looks for a run id the store does not know yet (see Engine::cancel): a
/// new run's first write batch is normally stored within milliseconds, even under load.
constexpr std::chrono::seconds k_unknown_run_patience{2};

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

// Bumped in a child process after fork(): a forked child must not continue its parent's
// random sequence, or both would hand out the same run ids.
std::atomic<unsigned> g_fork_generation{0};

std::string uuid_v4() {
  static const bool at_fork_registered = [] {
    ::pthread_atfork(nullptr, nullptr, [] { g_fork_generation.fetch_add(1); });
    return true;
  }();
  (void)at_fork_registered;
  thread_local std::mt19937_64 rng;
  thread_local unsigned seeded_generation = ~0u;
  if (seeded_generation != g_fork_generation.load(std::memory_order_relaxed)) {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    rng.seed(seq);
    seeded_generation = g_fork_generation.load(std::memory_order_relaxed);
  }
  std::uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xffffffffffff0fffull) | 0x0000000000004000ull;  // version 4
  lo = (lo & 0x3fffffffffffffffull) | 0x8000000000000000ull;  // variant 10
  // 8-4-4-4-12 hex digits.
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out(36, '-');
  std::size_t pos = 0;
  auto put = [&](std::uint64_t bits, int digits) {
    for (int d = digits - 1; d >= 0; --d) out[pos++] = k_hex[(bits >> (4 * d)) & 15];
  };
  put(hi >> 32, 8);
  ++pos;
  put(hi >> 16, 4);
  ++pos;
  put(hi, 4);
  ++pos;
  put(lo >> 48, 4);
  ++pos;
  put(lo, 12);
  return out;
}

}  // namespace

std::string process_identity() {
  return host_name() + ":" + std::to_string(::getpid()) + ":" + uuid_v4().substr(0, 8);
}

struct Engine::Impl {
  std::string owner;  // "host:pid:nonce": who holds this process's leases
  std::chrono::milliseconds lease_ttl{10000};
  std::chrono::milliseconds shutdown_grace{30000};
  std::chrono::milliseconds deadline{0};  // Config::deadline
  // Declared before `system`: the actor system keeps a reference to its config.
  caf::actor_system_config caf_config;
  std::unique_ptr<caf::actor_system> system;
  std::shared_ptr<Storage> storage;
  std::unique_ptr<Services> services;
  std::shared_ptr<ActorJournal> journal;
  caf::actor persistence;
  // Cluster drivers: node steps not in `local_nodes` go to workers through the dispatcher.
  bool cluster = false;
  std::set<std::string> local_nodes;
  std::unique_ptr<RemoteSteps> remote;
  // Adopting orphans (Config::cluster.adopt): a thread that resumes them.
  std::optional<Registry> adopt;
  std::chrono::milliseconds adopt_interval{1000};
  std::thread adopter;
  std::mutex adopter_mu;  // guards stop_adopting
  std::condition_variable adopter_cv;
  bool stop_adopting = false;

  std::mutex cache_mu;  // guards plans and nodes
  std::unordered_map<const PipelineDef*, std::shared_ptr<const Plan>> plans;
  std::size_t node_executors = 1;  // executor actors per node (Config::node_executors)
  struct NodeEntry {
    std::shared_ptr<const NodeDef> def;
    std::shared_ptr<NodeExecutors> executors;
  };
  std::unordered_map<const NodeDef*, NodeEntry> nodes;

  std::shared_ptr<NodeExecutors> executors_for(const std::shared_ptr<const NodeDef>& def) {
    auto it = nodes.find(def.get());
    if (it != nodes.end()) return it->second.executors;
    auto executors = std::make_shared<NodeExecutors>(*system, def.get(), node_executors);
    nodes.emplace(def.get(), NodeEntry{def, executors});
    return executors;
  }

  /// Where each node step of `step` executes: on a worker when this is a cluster driver and
  /// the node is not one of its local nodes, else on this process's executors.
  /// `def` is the pipeline definition `step` was planned from (same shape).
  void place_nodes(const PipelineDef& def, const PlanStep& step, Plan& plan) {
    if (step.type != PipelineDef::Type::sequence) ++plan.entries;
    if (step.type == PipelineDef::Type::node) {
      if (step.node->compensation) plan.compensates = true;
      NodePlacement& where = plan.nodes[step.node_index];
      if (cluster && !local_nodes.count(step.label)) {
        where.remote = true;
      } else {
        where.executors = executors_for(def.node);
      }
      return;
    }
    for (std::size_t i = 0; i < step.children.size(); ++i) {
      place_nodes(*def.children[i], step.children[i], plan);
    }
  }

  // Pipelines and node definitions that only this cache still refers to are dropped
  // (and their actors stopped) once the cache grows, so that services which build
  // pipelines dynamically do not accumulate actors.
  void evict_unused() {
    for (auto it = plans.begin(); it != plans.end();) {
      it = it->second->def.use_count() == 1 && it->second.use_count() == 1 ? plans.erase(it)
                                                                           : std::next(it);
    }
    for (auto it = nodes.begin(); it != nodes.end();) {
      if (it->second.def.use_count() == 1) {
        it = nodes.erase(it);  // stops its executors
      } else {
        ++it;
      }
    }
  }

  std::shared_ptr<const Plan> plan_for(const Pipeline& pipeline) {
    std::lock_guard lock(cache_mu);
    auto it = plans.find(pipeline.def().get());
    if (it != plans.end()) return it->second;
    if (plans.size() >= 256) evict_unused();
    auto plan = std::make_shared<Plan>();
    plan->def = pipeline.def();
    std::size_t node_steps = 0;
    plan->root = plan_steps(*plan->def, node_steps);
    plan->nodes.resize(node_steps);
    place_nodes(*plan->def, plan->root, *plan);
    plans.emplace(plan->def.get(), plan);
    return plan;
  }
};

Engine::Engine(Config config, ClusterHooks cluster) : impl_(std::make_unique<Impl>()) {
  impl_->storage = open_storage(config);
  std::size_t threads = config.threads ? config.threads : std::thread::hardware_concurrency();
  impl_->caf_config.set("scheduler.max-threads", threads ? threads : 2);
  impl_->caf_config.set("scheduler.policy", config.scheduler == Config::Scheduler::sharing
                                                ? caf::atom("sharing")
                                                : caf::atom("stealing"));
  impl_->owner = process_identity();
  if (cluster.remote_steps) {
    cluster.configure(impl_->caf_config, impl_->owner);
    impl_->cluster = true;
    impl_->local_nodes = config.cluster.local_nodes;
  }
  impl_->system = std::make_unique<caf::actor_system>(impl_->caf_config);
  impl_->node_executors = config.node_executors ? config.node_executors : threads ? threads : 2;
  impl_->services = std::make_unique<Services>(config.blocking_threads);
  impl_->services->observers = std::move(config.observers);
  impl_->lease_ttl = config.lease_ttl;
  impl_->shutdown_grace = config.shutdown_grace;
  impl_->services->history_values = config.history_values;
  impl_->services->history_value_limit = config.history_value_limit;
  impl_->services->durability = config.durability;
  impl_->services->system = impl_->system.get();
  impl_->services->timers = std::make_unique<Timers>(*impl_->system);
  if (config.retry) {
    check_retry_policy(*config.retry, "Config::retry");
    impl_->services->retry = std::move(config.retry);
  }
  if (config.deadline.count() < 0) {
    throw Error(Errc::invalid_argument, "Config::deadline must not be negative");
  }
  impl_->deadline = config.deadline;
  impl_->journal = std::make_shared<ActorJournal>();
  impl_->services->journal = impl_->journal;
  impl_->persistence =
      impl_->system->spawn<caf::detached>(persistence_actor, impl_->storage, impl_->journal);
  impl_->journal->attach(impl_->persistence);
  if (impl_->cluster) {
    impl_->remote = cluster.remote_steps(*impl_->system, impl_->owner);
    impl_->services->remote = impl_->remote.get();
  }
  if (config.cluster.adopt) {
    impl_->adopt = std::move(config.cluster.adopt);
    impl_->adopt_interval = config.cluster.adopt_interval;
    impl_->adopter = std::thread([this] { adopt_orphans(); });
  }
  // The keeper's rounds also push out records that wait in the journal (see journal.hpp),
  // and wait for them: a lease is renewed only once its claim is stored.
  impl_->services->leases =
      std::make_unique<LeaseKeeper>(*impl_->storage, config.lease_ttl,
                                    [journal = impl_->journal.get(), bound = config.lease_ttl / 3] {
                                      return journal->flush(bound);
                                    });
}

Engine::~Engine() {
  if (impl_->adopter.joinable()) {
    {
      std::lock_guard lock(impl_->adopter_mu);
      impl_->stop_adopting = true;
    }
    impl_->adopter_cv.notify_all();
    impl_->adopter.join();
  }
  if (!shut_down_within_grace()) {
    // Steps that ignore cancellation still run on threads of this engine and use its state:
    // it is left to them (not destroyed), so that the process can exit.
    (void)impl_.release();
    return;
  }
  impl_->services->executions.wait_idle();  // steps still executing after a run failed fast
  impl_->services->leases.reset();
  impl_->remote.reset();  // the cluster dispatcher: stops discovery
  impl_->nodes.clear();   // stops the executors
  impl_->plans.clear();
  {
    // Drain what is still queued (writes of steps that finished after their run failed
    // fast, lease releases) before the persistence actor goes.
    caf::scoped_actor self{*impl_->system};
    self->request(impl_->persistence, caf::infinite, drain_atom::value)
        .receive([] {}, [](caf::error&) {});
  }
  caf::anon_send_exit(impl_->persistence, caf::exit_reason::user_shutdown);
  impl_->persistence = nullptr;
  impl_->journal->detach();
  // A detached actor's thread lives until the last handle to the actor is gone, and the
  // system waits for that thread: drop every handle before destroying the system.
  impl_->journal.reset();
  impl_->services.reset();  // also joins the blocking pool (idle: no run is in flight)
  impl_->system.reset();    // waits for every actor to finish
}

bool Engine::shut_down_within_grace() {
  using namespace std::chrono;
  Services& services = *impl_->services;
  const milliseconds grace = impl_->shutdown_grace;
  const milliseconds last_part = std::min(milliseconds(1000), grace / 2);
  if (services.runs.wait_idle_for(grace - last_part) &&
      services.executions.wait_idle_for(grace - last_part)) {
    return true;
  }
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.3f s", duration<double>(grace).count());
  const std::string why = "the runtime " + impl_->owner + " shut down (Config::shutdown_grace " +
                          seconds + ") before the run ended; it is left to resume";
  auto runs = services.leases->runs();
  if (!runs.empty()) {
    std::fprintf(stderr,
                 "flux: runtime %s: %zu run(s) still going %.3f s into the shutdown grace of %s: "
                 "stopping them (they stay running in the store, for resume)\n",
                 impl_->owner.c_str(), runs.size(), duration<double>(grace - last_part).count(),
                 seconds);
  }
  for (auto& run : runs) run->shut_down(why);
  if (services.runs.wait_idle_for(last_part) && services.executions.wait_idle_for(last_part)) {
    return true;
  }
  // Something ignores cancellation. Store what was recorded, give the leases up (so that the
  // runs are orphans now, and late writes are refused by fencing), and leave.
  {
    caf::scoped_actor self{*impl_->system};
    self->request(impl_->persistence, milliseconds(2000), drain_atom::value)
        .receive([] {}, [](caf::error&) {});
  }
  const auto given_up = services.leases->give_up_all();
  std::fprintf(stderr,
               "flux: runtime %s: steps that ignore cancellation still execute at the end of the "
               "shutdown grace of %s: left behind (%zu more lease(s) given up)\n",
               impl_->owner.c_str(), seconds, given_up.size());
  return false;
}

Storage& Engine::storage() const noexcept { return *impl_->storage; }
const std::string& Engine::owner_id() const noexcept { return impl_->owner; }

ChildRun Engine::start_child(const Pipeline& pipeline, Value input, const std::string& parent_run,
                             const std::string& parent_step) {
  auto completion = start(pipeline, std::move(input), parent_run, parent_step, {});
  return ChildRun(completion->run_id, completion);
}

std::shared_ptr<RunCompletion> Engine::start(const Pipeline& pipeline, Value input,
                                             const RunOptions& options) {
  return start(pipeline, std::move(input), {}, {}, options);
}

std::shared_ptr<RunCompletion> Engine::start(const Pipeline& pipeline, Value input,
                                             const std::string& parent_run,
                                             const std::string& parent_step,
                                             const RunOptions& options) {
  if (options.deadline && options.deadline->count() <= 0) {
    throw Error(Errc::invalid_argument, "pipeline '" + pipeline.name() +
                                            "': RunOptions::deadline must be positive, got " +
                                            std::to_string(options.deadline->count()) + " ms");
  }
  // Refused here -- for Runtime::start and for a child started with ctx.start alike -- before
  // anything runs or is written: a too-deep input would otherwise run every node and fail
  // only when the store refuses it.
  if (const std::size_t depth = input.depth(); depth > k_max_value_depth) {
    throw Error(Errc::invalid_argument,
                "pipeline '" + pipeline.name() + "': the run input is nested " +
                    std::to_string(depth) + " levels deep (lists/maps); the limit is " +
                    std::to_string(k_max_value_depth) + " (flux::k_max_value_depth)");
  }
  auto job = std::make_shared<RunJob>();
  job->plan = impl_->plan_for(pipeline);
  job->services = impl_->services.get();
  job->info.id = uuid_v4();
  job->info.pipeline = pipeline.name();
  job->info.fingerprint = pipeline.fingerprint();
  job->info.status = RunStatus::running;
  job->info.created = job->info.updated = wall_now();
  job->info.input = std::move(input);
  job->info.owner = impl_->owner;
  job->info.history_values = impl_->services->history_values;
  job->info.parent_run_id = parent_run;
  job->info.parent_step = parent_step;
  job->info.steps_total = static_cast<std::uint32_t>(job->plan->nodes.size());
  const std::chrono::milliseconds deadline = options.deadline.value_or(impl_->deadline);
  if (deadline.count() > 0) {
    job->info.deadline = job->info.created + std::chrono::nanoseconds(deadline);
  }
  // A fresh random id: nobody else can hold its lease, so it is claimed by the run's first
  // write (token 1) rather than by a round trip to the store here.
  job->lease = Lease{impl_->owner, 1};
  job->run = std::make_shared<RunState>(job->info.id, impl_->journal, job->lease.token);
  job->run->expect_entries(job->plan->entries);
  job->run->journal_claim(impl_->owner, impl_->lease_ttl);
  job->run->set_child_starter(this);
  return launch(std::move(job));
}

std::shared_ptr<RunCompletion> Engine::launch(std::shared_ptr<RunJob> job) {
  job->completion = std::make_shared<RunCompletion>();
  job->completion->run_id = job->info.id;
  impl_->services->runs.add();
  impl_->services->leases->add(job->info.id, job->lease, job->run);
  job->run->set_on_released([services = impl_->services.get(), id = job->info.id,
                             owner = job->lease.owner, run = std::weak_ptr(job->run)] {
    services->leases->remove(id);
    if (auto r = run.lock()) r->journal_release(owner);
  });
  job->completion->cancel = [weak = std::weak_ptr<RunJob>(job), owner = impl_->owner](
                                const std::string& reason, bool compensate) {
    auto j = weak.lock();
    return j && cancel_run(*j, owner, reason, compensate);
  };
  job->deadline = job->info.deadline;
  job->run->journal_run(job->info);
  if (job->deadline) {
    // Reaching the deadline cancels the run; the timer is stopped when the run ends.
    job->deadline_timer = impl_->services->timers->after(
        *job->deadline - wall_now(), [job] { cancel_run(*job, "deadline", "deadline exceeded"); });
  }
  auto completion = job->completion;
  start_run(std::move(job));
  return completion;
}

std::shared_ptr<RunCompletion> Engine::resume(std::string_view run_id, const Pipeline& pipeline,
                                              const ResumeOptions& options) {
  return resume(run_id, pipeline, options, std::nullopt);
}

std::shared_ptr<RunCompletion> Engine::resume_requested(std::string_view run_id,
                                                        const Pipeline& pipeline,
                                                        const ResumeOptions& options,
                                                        Timestamp seen) {
  return resume(run_id, pipeline, options, std::optional<Timestamp>(seen));
}

std::shared_ptr<RunCompletion> Engine::resume(std::string_view run_id, const Pipeline& pipeline,
                                              const ResumeOptions& options,
                                              const std::optional<Timestamp>& requested_at_update) {
  Storage& store = *impl_->storage;
  const std::string id(run_id);
  // A resume request is honoured once: by the driver that finds the record as it was when it
  // read the request. Compared by the record's own update time, never by two machines' clocks.
  auto check_unchanged = [&](const RunInfo& now) {
    if (requested_at_update && now.updated != *requested_at_update) {
      throw Error(Errc::run_owned, "run " + id +
                                       " changed since its resume request was read (another "
                                       "driver honoured it); resume skipped");
    }
  };
  // Everything that can refuse the resume is checked before anything is written.
  auto info = store.get_run(id);
  if (info) check_unchanged(*info);
  if (!info) {
    // A run just started may hold its lease before its record is stored.
    if (auto holder = store.lease_holder(id)) {
      throw Error(Errc::run_owned,
                  "run " + id + " is owned by " + *holder + " (its lease is live); resume refused");
    }
    throw Error(Errc::not_found, "run " + id + " is not in the store");
  }
  // Nothing to do: its stored result. (A compensated run's steps are undone; going on would
  // redo them. One whose compensation failed is resumed: its remaining compensations run.)
  if (info->status == RunStatus::completed || info->status == RunStatus::compensated) {
    auto done = std::make_shared<RunCompletion>();
    done->run_id = id;
    done->complete(RunResult{id, info->status, info->output, info->error});
    return done;
  }
  // A cancel request asking for compensation (an orphan cancelled so) is honoured here: the
  // resumed run undoes its steps instead of going on.
  std::optional<CancelRequest> request;
  {
    const std::string ids[] = {id};
    if (auto requests = store.cancel_requests(ids); !requests.empty()) request = requests[0];
  }
  const bool compensate_request = request && request->compensate;
  if (!options.cancelled) {  // someone meant it to stop: only an explicit resume goes on
    if (info->status == RunStatus::cancelled) {
      throw Error(Errc::invalid_argument,
                  (info->error ? info->error->message : "run " + id + " was cancelled") +
                      "; resume refused (ResumeOptions{.cancelled = true} resumes it anyway)");
    }
    if (request && !compensate_request) {
      throw Error(Errc::invalid_argument,
                  "run " + id + " has a cancel request from " + request->by +
                      "; resume refused (ResumeOptions{.cancelled = true} resumes it anyway)");
    }
  }
  if (options.deadline && options.deadline->count() <= 0) {
    throw Error(Errc::invalid_argument, "run " + id + ": ResumeOptions::deadline must be positive");
  }
  if (info->fingerprint != pipeline.fingerprint()) {
    throw Error(Errc::invalid_argument,
                "run " + id + " was recorded with pipeline '" + info->pipeline + "' (fingerprint " +
                    info->fingerprint + "); it cannot be resumed with pipeline '" +
                    pipeline.name() + "' (fingerprint " + pipeline.fingerprint() +
                    "), whose shape or node names differ");
  }
  if (info->history_values != HistoryValues::full) {
    throw Error(Errc::invalid_argument,
                "run " + id +
                    " was recorded without full history values, so the outputs of its "
                    "completed steps are not stored and it cannot be resumed");
  }
  (void)store.history(id, 0);  // a record that cannot be decoded refuses the resume here
  auto taken = store.acquire_lease(id, impl_->owner, impl_->lease_ttl);
  if (!taken.lease) {
    throw Error(Errc::run_owned, "run " + id + " is owned by " + taken.holder +
                                     " (its lease is live); resume refused");
  }
  auto job = std::make_shared<RunJob>();
  job->lease = *taken.lease;
  std::vector<HistoryEntry> history;
  Value::Map kv, shared;
  try {
    // Read again under the lease: whatever a former owner wrote before is included, and
    // whatever it tries to write from now on is refused by the fence.
    info = store.get_run(id);
    history = store.history(id, 0);
    kv = store.keys(id, Scope::kv);
    shared = store.keys(id, Scope::shared);
    if (!info) throw Error(Errc::not_found, "run " + id + " is not in the store");
    check_unchanged(*info);
    // Whoever resumes the run honours its resume request (an adopting driver, `app resume`):
    // cleared before the run's first write, so that a record written after it never comes
    // with the request still pending.
    store.clear_resume_request(id);
  } catch (...) {
    store.release_lease(id, job->lease);
    throw;
  }
  if (options.cancelled || compensate_request) store.clear_cancel_request(id);
  for (const HistoryEntry& e : history) {
    if (e.type == HistoryEntry::Type::compensating) {  // it was undoing its steps: it goes on
      auto field = [&](const char* name) {
        if (!e.input.is_map()) return std::string();
        auto it = e.input.as_map().find(name);
        return it != e.input.as_map().end() && it->second.is_string() ? it->second.as_string()
                                                                       : std::string();
      };
      job->compensating = RunJob::Stopped{
          RunFailure{field("node"), field("step"), field("message")},
          field("status") == "cancelled" ? RunStatus::cancelled : RunStatus::failed};
    }
    if (e.type != HistoryEntry::Type::node && e.type != HistoryEntry::Type::parallel) continue;
    auto& attempts = job->attempts[e.step];
    attempts = std::max(attempts, e.attempt);
    if (e.ok()) job->replay[e.step] = e.output;
  }
  const RunStatus previous = info->status;
  job->plan = impl_->plan_for(pipeline);
  job->services = impl_->services.get();
  job->info = std::move(*info);
  job->info.status = RunStatus::running;
  job->info.pipeline = pipeline.name();
  job->info.owner = impl_->owner;
  job->info.updated = wall_now();
  job->info.finished.reset();
  job->info.error.reset();
  job->info.output = Value{};
  job->info.steps_total = static_cast<std::uint32_t>(job->plan->nodes.size());
  job->info.steps_done.reset();  // running again: counted from its history until it ends
  // An interrupted run keeps its deadline; a failed or cancelled one is a new try. A run undoing
  // its steps has none: its compensations are not cut short.
  if (compensate_request || job->compensating) {
    job->info.deadline.reset();
  } else if (options.deadline) {
    job->info.deadline = job->info.updated + std::chrono::nanoseconds(*options.deadline);
  } else if (previous != RunStatus::running) {
    job->info.deadline.reset();
  }
  job->run = std::make_shared<RunState>(id, impl_->journal, job->lease.token, std::move(history),
                                        std::move(kv), std::move(shared));
  HistoryEntry mark;
  mark.type = HistoryEntry::Type::resume;
  mark.node = "resume";
  mark.start = mark.end = job->info.updated;
  mark.input = Value::Map{{"owner", impl_->owner}, {"from_status", to_string(previous)}};
  mark.output = Value::Map{{"reused_steps", static_cast<std::int64_t>(job->replay.size())}};
  job->run->set_child_starter(this);
  job->run->append(std::move(mark));  // before any step of the resumed run
  if (compensate_request && !job->compensating) {  // cancelled as an orphan, to be undone
    job->run->cancel(request->by, request->reason, /*compensate=*/true);
    job->compensating =
        RunJob::Stopped{RunFailure{"", "", job->run->stop_reason()}, RunStatus::cancelled};
  }
  return launch(std::move(job));
}

bool Engine::cancel(std::string_view run_id, const std::string& reason, bool compensate) {
  const std::string id(run_id);
  // Owned here: at once.
  if (auto run = impl_->services->leases->find(id)) {
    return run->cancel(impl_->owner, reason, compensate);
  }
  Storage& store = *impl_->storage;
  auto info = store.get_run(id);
  std::optional<std::string> holder = store.lease_holder(id);
  // A run just started by another process reaches the store with its owner's first write
  // batch, which may still be on its way when its id (returned by start() at once) is used
  // here: an id the store does not know is looked up again for a while before it is unknown.
  const auto patience = std::chrono::steady_clock::now() + k_unknown_run_patience;
  while (!info && !holder && std::chrono::steady_clock::now() < patience) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    info = store.get_run(id);
    holder = store.lease_holder(id);
  }
  if (!info && !holder) throw Error(Errc::not_found, "run " + id + " is not in the store");
  if (info && info->status != RunStatus::running) return false;
  // Its owner picks the request up at its next lease renewal. An orphan whose steps are to be
  // undone keeps the request for whoever resumes it: only a process with its pipeline can.
  if (holder || compensate) {
    store.request_cancel(id, CancelRequest{impl_->owner, reason, compensate});
    return true;
  }
  if (cancel_orphan(id, reason)) return true;
  store.request_cancel(id, CancelRequest{impl_->owner, reason});  // someone adopted it meanwhile
  return true;
}

bool Engine::cancel_orphan(const std::string& id, const std::string& reason) {
  Storage& store = *impl_->storage;
  auto taken = store.acquire_lease(id, impl_->owner, impl_->lease_ttl);
  if (!taken.lease) return false;
  std::optional<RunInfo> info;
  std::vector<HistoryEntry> history;
  try {
    info = store.get_run(id);
    history = store.history(id, 0);
  } catch (...) {
    store.release_lease(id, *taken.lease);
    throw;
  }
  if (!info || info->status != RunStatus::running) {  // it ended meanwhile
    store.release_lease(id, *taken.lease);
    return true;
  }
  // Its history and record are written as its owner would: through the journal, fenced.
  auto run = std::make_shared<RunState>(id, impl_->journal, taken.lease->token, std::move(history));
  run->cancel(impl_->owner, reason);
  info->status = RunStatus::cancelled;
  info->error = RunFailure{"", "", run->stop_reason()};
  info->steps_done = run->completed_steps();
  info->owner = impl_->owner;
  info->updated = wall_now();
  info->finished = info->updated;
  run->journal_run(*info);
  run->journal_release(impl_->owner);
  std::promise<std::string> stored;
  impl_->journal->complete(Completion{id, taken.lease->token, [&stored](const std::string* error) {
                                        stored.set_value(error ? *error : std::string());
                                      }});
  if (std::string error = stored.get_future().get(); !error.empty()) {
    throw Error(Errc::storage, "run " + id + ": recording its cancellation failed: " + error);
  }
  store.clear_cancel_request(id);
  return true;
}

void Engine::adopt_orphans() {
  std::set<std::string> reported;  // orphans whose pipeline is not registered: said once
  std::string last_error;
  std::unique_lock lock(impl_->adopter_mu);
  while (!impl_->adopter_cv.wait_for(lock, impl_->adopt_interval,
                                     [this] { return impl_->stop_adopting; })) {
    lock.unlock();
    try {
      RunFilter filter;
      filter.limit = 100;
      do {
        RunPage page = list_orphans(filter);
        for (const RunInfo& orphan : page.runs) {
          const Pipeline* pipeline = impl_->adopt->pipeline(orphan.pipeline);
          if (!pipeline) {
            if (reported.insert(orphan.id).second) {
              std::fprintf(stderr,
                           "flux: driver %s does not adopt run %s: its pipeline '%s' is not in "
                           "Config::cluster.adopt\n",
                           impl_->owner.c_str(), orphan.id.c_str(), orphan.pipeline.c_str());
            }
            continue;
          }
          try {
            auto completion = resume(orphan.id, *pipeline);
            // A run that ended meanwhile is returned as stored, not adopted: say so only for
            // one this driver now runs.
            bool adopted;
            {
              std::lock_guard done(completion->mu);
              adopted = !completion->result;
            }
            if (adopted) {
              std::fprintf(stderr, "flux: driver %s adopted run %s (pipeline '%s')\n",
                           impl_->owner.c_str(), orphan.id.c_str(), orphan.pipeline.c_str());
            }
          } catch (const Error& e) {
            // Another driver took it first (run_owned), or it cannot be resumed: said once.
            if (e.code() != Errc::run_owned && reported.insert(orphan.id).second) {
              std::fprintf(stderr, "flux: driver %s cannot adopt run %s: %s\n",
                           impl_->owner.c_str(), orphan.id.c_str(), e.what());
            }
          }
        }
        filter.cursor = page.next_cursor;
      } while (!filter.cursor.empty());
      take_resume_requests(reported);
      last_error.clear();
    } catch (const std::exception& e) {
      if (last_error != e.what()) {
        last_error = e.what();
        std::fprintf(stderr, "flux: driver %s could not look for orphans: %s\n",
                     impl_->owner.c_str(), e.what());
      }
    }
    lock.lock();
  }
}

void Engine::take_resume_requests(std::set<std::string>& reported) {
  Storage& store = *impl_->storage;
  const std::vector<std::string> ids = store.pending_resume_requests(100);
  for (const std::string& id : ids) {
    const std::string key[] = {id};
    // The record first, then the request: a driver that honours the request clears it before
    // the resumed run's first write, so a record read here that is newer than that write comes
    // with no request (see resume_requested).
    std::optional<RunInfo> info;
    std::optional<ResumeRequest> request;
    std::optional<std::string> unreadable;
    try {
      info = store.get_run(id);
    } catch (const Error& e) {
      if (e.code() != Errc::storage) throw;
      unreadable = e.what();  // a corrupt record (an unreachable store fails the write below)
    }
    try {
      auto requests = store.resume_requests(key);
      if (!requests.empty()) request = requests[0];
    } catch (const Error& e) {
      if (e.code() != Errc::storage) throw;
      // A request that cannot be read is replaced by its refusal, so that it is not read
      // again and again, and whoever asked sees why.
      store.request_resume(
          id, ResumeRequest{ResumeRequest::Verb::resume, "", wall_now(), std::string(e.what())});
      continue;
    }
    if (!request || request->refusal) {  // expired, or cleared or refused meanwhile
      if (!request) store.clear_resume_request(id);
      continue;
    }
    auto refuse = [&](const std::string& why) {
      std::fprintf(stderr, "flux: driver %s cannot %s run %s (asked by %s): %s\n",
                   impl_->owner.c_str(), to_string(request->verb), id.c_str(), request->by.c_str(),
                   why.c_str());
      request->refusal = why;
      store.request_resume(id, *request);
    };
    if (unreadable) {
      refuse(*unreadable);
      continue;
    }
    // A run that is gone (retention) or completed meanwhile: nothing left to do.
    if (!info || info->status == RunStatus::completed || info->status == RunStatus::compensated) {
      store.clear_resume_request(id);
      continue;
    }
    const Pipeline* pipeline = impl_->adopt->pipeline(info->pipeline);
    if (!pipeline) {  // left pending for a driver that adopts it
      if (reported.insert("resume request " + id).second) {
        std::fprintf(stderr,
                     "flux: driver %s leaves the %s request of run %s to another driver: its "
                     "pipeline '%s' is not in Config::cluster.adopt\n",
                     impl_->owner.c_str(), to_string(request->verb), id.c_str(),
                     info->pipeline.c_str());
      }
      continue;
    }
    try {
      ResumeOptions options;
      options.cancelled = info->status == RunStatus::cancelled;
      resume_requested(id, *pipeline, options, info->updated);
      std::fprintf(stderr, "flux: driver %s %s run %s (pipeline '%s', asked by %s)\n",
                   impl_->owner.c_str(),
                   request->verb == ResumeRequest::Verb::retry ? "retries" : "resumes", id.c_str(),
                   info->pipeline.c_str(), request->by.c_str());
    } catch (const Error& e) {
      // Another driver (or a live owner) has the run: the lease decides, and the request
      // stays for whoever is left to honour it. Anything else cannot be honoured as asked.
      if (e.code() == Errc::run_owned) continue;
      if (e.code() == Errc::not_found) {
        store.clear_resume_request(id);
        continue;
      }
      refuse(e.what());
    }
  }
}

RunPage Engine::list_orphans(const RunFilter& filter) const {
  RunFilter running = filter;
  running.status = RunStatus::running;
  RunPage page = impl_->storage->list_runs_page(running);
  // All lease holders in one call (one round trip to Redis), not one call per run.
  std::vector<std::string> ids;
  ids.reserve(page.runs.size());
  for (const RunInfo& info : page.runs) ids.push_back(info.id);
  std::vector<std::optional<std::string>> holders = impl_->storage->lease_holders(ids);
  if (holders.size() != ids.size()) {  // a user's store that miscounts: fail, never guess
    throw Error(Errc::storage, "lease_holders answered " + std::to_string(holders.size()) +
                                   " times for " + std::to_string(ids.size()) + " runs");
  }
  std::vector<RunInfo> orphans;
  for (std::size_t i = 0; i < page.runs.size(); ++i) {
    if (!holders[i]) orphans.push_back(std::move(page.runs[i]));
  }
  page.runs = std::move(orphans);
  return page;
}

}  // namespace flux::detail
