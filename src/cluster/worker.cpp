// flux::Worker: a gateway actor that receives step requests from drivers, a pool of
// `capacity` threads that executes them, and a thread that keeps the worker's card in the
// store alive.

#include <unistd.h>

#include <atomic>
#include <caf/openssl/all.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "cluster/remote_run.hpp"
#include "cluster/wire.hpp"
#include "cluster/worker_directory.hpp"
#include "core/stop_signal.hpp"
#include "engine/blocking_pool.hpp"
#include "engine/engine.hpp"
#include "engine/run_driver.hpp"
#include "flux/cluster.hpp"
#include "flux/error.hpp"
#include "flux/metrics.hpp"
#include "format/record_codec.hpp"
#include "metrics/metrics.hpp"
#include "store/open_storage.hpp"

namespace flux {
namespace detail {
namespace {
using timeout_atom = caf::atom_constant<caf::atom("timeout")>;  // a step's timeout ran out
}  // namespace

class WorkerImpl {
 public:
  WorkerImpl(const Registry& registry, WorkerConfig config)
      : registry_(registry), config_(std::move(config)) {
    if (registry_.node_names().empty()) {
      throw Error(Errc::invalid_argument, "worker: the registry holds no node to serve");
    }
    const std::size_t cores = std::thread::hardware_concurrency();
    capacity_ = config_.capacity ? config_.capacity : cores ? cores : 2;
    id_ = config_.id.empty() ? process_identity() : config_.id;
    const std::string who = "worker " + id_;
    if (!config_.network.tls.enabled() && !config_.network.allow_plaintext &&
        !wire::is_loopback(config_.listen_host)) {
      throw Error(Errc::invalid_argument,
                  who + ": refusing to listen in plaintext on " + config_.listen_host +
                      ", which is not a loopback address: configure network.tls, or set "
                      "network.allow_plaintext on a network you trust");
    }
    store_url_ = resolve_store_url(config_.store);
    if (store_url_.rfind("redis://", 0) != 0) {
      throw Error(Errc::invalid_argument,
                  who + ": a worker announces itself in a Redis store; store is '" +
                      (store_url_.rfind("memory", 0) == 0 ? store_url_ : std::string("?")) + "'");
    }
    directory_ = std::make_unique<WorkerDirectory>(store_url_, config_.key_prefix);
    wire::configure_network(caf_config_, config_.network, who);
    caf_config_.set("scheduler.max-threads", std::size_t{2});
    caf_config_.set("scheduler.policy", caf::atom("sharing"));
    system_ = std::make_unique<caf::actor_system>(caf_config_);
    pool_ = std::make_unique<BlockingPool>(capacity_);
    gateway_ = system_->spawn(gateway, this);
    auto port =
        config_.network.tls.enabled()
            ? caf::openssl::publish(gateway_, config_.port, config_.listen_host.c_str(), true)
            : system_->middleman().publish(gateway_, config_.port, config_.listen_host.c_str(),
                                           true);
    if (!port) {
      caf::anon_send_exit(gateway_, caf::exit_reason::user_shutdown);
      throw Error(Errc::invalid_argument, who + ": cannot listen on " + config_.listen_host + ":" +
                                              std::to_string(config_.port) + ": " +
                                              system_->render(port.error()));
    }
    port_ = *port;
    card_.id = id_;
    card_.host = config_.advertise_host.empty() ? config_.listen_host : config_.advertise_host;
    card_.port = port_;
    card_.capacity = static_cast<std::uint32_t>(capacity_);
    card_.tls = config_.network.tls.enabled();
    card_.pid = ::getpid();
    card_.started = wall_now();
    card_.heartbeat = card_.started;
    for (const std::string& name : registry_.node_names()) {
      card_.nodes.emplace_back(name, signature(*registry_.node(name)));
    }
    directory_->announce(card_, config_.announce_ttl);
    announcer_ = std::thread([this] { keep_announced(); });
  }

  ~WorkerImpl() {
    drain();
    gateway_ = nullptr;
    pool_.reset();
    system_.reset();
  }

  void drain() {
    {
      std::lock_guard lock(mu_);
      if (drained_) return;
      drained_ = true;
      draining_ = true;
    }
    cv_.notify_all();
    if (announcer_.joinable()) announcer_.join();
    try {
      directory_->withdraw(id_);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "flux: worker %s could not withdraw its card: %s\n", id_.c_str(),
                   e.what());
    }
    {
      // As a Runtime's shutdown grace: in its last part (a second, or half of it if shorter)
      // the steps still held see ctx.cancelled() and nothing more of theirs is sent; their
      // drivers place them again when this worker's connections close.
      const auto grace = config_.drain_grace;
      const auto last_part = std::min(std::chrono::milliseconds(1000), grace / 2);
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, grace - last_part, [this] { return busy_ == 0; })) {
        lock.unlock();
        abandon_all_held();
        lock.lock();
        if (!cv_.wait_for(lock, last_part, [this] { return busy_ == 0; })) {
          stuck_ = true;
          std::fprintf(stderr,
                       "flux: worker %s: %zu step(s) still executing after the drain grace of "
                       "%lld ms; their drivers will place them again\n",
                       id_.c_str(), busy_, static_cast<long long>(grace.count()));
        }
      }
    }
    // The last answers are handed to the network layer; give it a moment to write them
    // before the connections close.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (gateway_) {
      if (config_.network.tls.enabled()) {
        // caf/openssl/unpublish.hpp does not compile in 0.17.6; this is what it would send.
        caf::anon_send(system_->openssl_manager().actor_handle(), caf::unpublish_atom::value,
                       gateway_.address(), port_);
      } else {
        (void)system_->middleman().unpublish(gateway_, port_);
      }
      caf::anon_send_exit(gateway_, caf::exit_reason::user_shutdown);
    }
  }

  const std::string& id() const noexcept { return id_; }
  std::uint16_t port() const noexcept { return port_; }
  std::size_t busy() const {
    std::lock_guard lock(mu_);
    return busy_;
  }

 private:
  /// Writes the card again every third of its TTL, with the worker's load and the time: a
  /// heartbeat operators can read (and a card that expired meanwhile — the worker was
  /// stopped, or the store restarted — is announced again).
  void keep_announced() {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, config_.announce_ttl / 3, [this] { return draining_; })) {
      card_.busy = static_cast<std::uint32_t>(busy_);
      lock.unlock();
      try {
        card_.heartbeat = wall_now();
        directory_->announce(card_, config_.announce_ttl);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "flux: worker %s could not refresh its card: %s\n", id_.c_str(),
                     e.what());
      }
      lock.lock();
    }
  }

  wire::StepResult refused(const wire::StepRequest& req, std::string why) const {
    wire::StepResult r;
    r.dispatch = req.dispatch;
    r.worker = id_;
    r.outcome = static_cast<std::uint8_t>(wire::StepOutcome::refused);
    r.error = std::move(why);
    return r;
  }

  /// The gateway: hands each StepRequest to the pool, whose thread sends the StepResult
  /// straight to the driver's dispatcher (the request's sender) — no hop back through this
  /// actor. Requests beyond `capacity` wait in the pool's queue (ClusterConfig::prefetch).
  static caf::behavior gateway(caf::event_based_actor* self, WorkerImpl* w) {
    self->set_default_handler(
        [w](caf::scheduled_actor*, caf::message_view& x) -> caf::result<caf::message> {
          std::fprintf(stderr, "flux: worker %s dropped an unexpected message: %s\n",
                       w->id_.c_str(), caf::to_string(x.content()).substr(0, 200).c_str());
          return caf::sec::unexpected_message;
        });
    return {
        [self, w](wire::StepRequest& req) {
          auto owner = caf::actor_cast<caf::actor>(self->current_sender());
          if (!owner) {
            std::fprintf(stderr,
                         "flux: worker %s dropped step %s of run %s: it came without a sender "
                         "to answer\n",
                         w->id_.c_str(), req.step.c_str(), req.run_id.c_str());
            return;
          }
          if (auto why = w->refusal(req)) {
            self->send(owner, w->refused(req, std::move(*why)));
            return;
          }
          auto held = w->hold(owner, req.dispatch);
          w->pool_->submit([w, req = std::move(req), owner, held]() mutable {
            // Abandoned by its driver while it waited here: the driver recorded it already.
            if (!held->abandoned->load()) {
              wire::StepResult r = w->execute(req, owner, *held);
              if (!held->settled.exchange(true)) caf::anon_send(owner, std::move(r));
            }
            w->release(owner, req.dispatch);
            w->end_execution();  // only now: a drain waits for the answers to be sent
          });
        },
        [w](timeout_atom, const caf::actor& owner, std::uint64_t dispatch,
            const std::string& error) {
          // The step's timeout on this worker: it is abandoned (its late result not sent).
          auto held = w->find(owner, dispatch);
          if (!held || held->settled.exchange(true)) return;
          held->abandoned->store(true);
          caf::anon_send(owner, w->timed_out_result(dispatch, *held, error));
        },
        [self, w](wire::CancelStep& c) {
          auto owner = caf::actor_cast<caf::actor>(self->current_sender());
          auto held = w->find(owner, c.dispatch);
          if (!held) return;  // ended already
          held->settled = true;  // the driver recorded the step: nothing more is sent
          held->abandoned->store(true);
        },
    };
  }

  /// A step this worker holds (waiting or executing), as its driver's CancelStep and its own
  /// timeout reach it. Settled once: by its result, its timeout or its driver's cancel.
  struct Held {
    std::shared_ptr<std::atomic<bool>> abandoned = std::make_shared<std::atomic<bool>>(false);
    std::atomic<bool> settled{false};
    Timestamp start{};
    std::chrono::steady_clock::time_point started{};
  };
  using HeldKey = std::pair<caf::actor_addr, std::uint64_t>;  // each driver numbers its own

  std::shared_ptr<Held> hold(const caf::actor& owner, std::uint64_t dispatch) {
    auto held = std::make_shared<Held>();
    std::lock_guard lock(held_mu_);
    held_[HeldKey{owner.address(), dispatch}] = held;
    return held;
  }
  std::shared_ptr<Held> find(const caf::actor& owner, std::uint64_t dispatch) {
    std::lock_guard lock(held_mu_);
    auto it = held_.find(HeldKey{owner.address(), dispatch});
    return it == held_.end() ? nullptr : it->second;
  }
  /// The answer for a step that exceeded its timeout here (`error` says so).
  wire::StepResult timed_out_result(std::uint64_t dispatch, const Held& held,
                                    const std::string& error) const {
    wire::StepResult r;
    r.dispatch = dispatch;
    r.worker = id_;
    r.outcome = static_cast<std::uint8_t>(wire::StepOutcome::timed_out);
    r.error = error;
    r.start_ns = held.start.time_since_epoch().count();
    r.duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - held.started)
                        .count();
    return r;
  }

  /// Every step held: sees ctx.cancelled(), and its result is not sent (the drain's end).
  void abandon_all_held() {
    std::lock_guard lock(held_mu_);
    for (auto& [key, held] : held_) {
      held->settled = true;
      held->abandoned->store(true);
    }
  }
  void release(const caf::actor& owner, std::uint64_t dispatch) {
    std::lock_guard lock(held_mu_);
    held_.erase(HeldKey{owner.address(), dispatch});
  }

  /// Why the worker does not execute `req`, if it does not; otherwise counts it as busy.
  std::optional<std::string> refusal(const wire::StepRequest& req) {
    const Node* node = registry_.node(req.node);
    if (!node) return "worker " + id_ + " does not host node '" + req.node + "'";
    if (std::string mine = signature(*node); mine != req.signature) {
      return "worker " + id_ + " hosts node '" + req.node + "' as " + mine +
             ", but the driver's node of that name is " + req.signature;
    }
    std::lock_guard lock(mu_);
    if (draining_) return "worker " + id_ + " is draining";
    ++busy_;
    return std::nullopt;
  }

  void end_execution() {
    {
      std::lock_guard lock(mu_);
      --busy_;
    }
    cv_.notify_all();
  }

  /// Executes `req` here. Its limits are the driver's: ctx.deadline() is the earlier of the
  /// node's timeout (counted from now) and the run's deadline; ctx.cancelled() also turns true
  /// when the driver abandons the step. A node that is not sync is abandoned at its timeout
  /// (the gateway answers "timed out" then, and this result is not sent); a sync node cannot
  /// be, and is recorded as timed out if it returns late, as on a driver.
  wire::StepResult execute(const wire::StepRequest& req, const caf::actor& owner, Held& held) {
    wire::StepResult r;
    r.dispatch = req.dispatch;
    r.worker = id_;
    const Timestamp start = wall_now();
    const auto started = std::chrono::steady_clock::now();
    held.start = start;
    held.started = started;
    const NodeDef& def = *registry_.node(req.node)->def();
    const auto timeout = std::chrono::nanoseconds(req.timeout_ns);
    std::optional<Timestamp> deadline;
    if (req.deadline_ns > 0) deadline = Timestamp(std::chrono::nanoseconds(req.deadline_ns));
    if (timeout.count() > 0 && (!deadline || start + timeout < *deadline)) {
      deadline = start + timeout;
    }
    const std::string timed_out_text =
        timeout.count() > 0 ? failure_of(timed_out(req.node, req.step,
                                                   std::chrono::duration_cast<
                                                       std::chrono::milliseconds>(timeout)))
                                  .message
                            : std::string();
    if (timeout.count() > 0 && def.mode != NodeMode::sync) {
      caf::delayed_anon_send(gateway_, timeout, timeout_atom::value, owner, req.dispatch,
                             timed_out_text);
    }
    caf::expected<Value> out = Value{};
    try {
      Value input =
          decode_value(req.input, "the input of step " + req.step + " of run " + req.run_id);
      auto run = std::make_shared<RemoteRun>(*system_, owner, req, context_timeout());
      Context ctx(run, req.node, req.step, req.attempt);
      ctx.set_limits(deadline, held.abandoned);
      ExecutingNode executing(ctx);
      switch (def.mode) {
        case NodeMode::sync:
        case NodeMode::blocking:
          out = def.call(input, ctx);
          break;
        case NodeMode::async:
          out = def.call_async(input, ctx)();
          break;
        case NodeMode::child:
          throw Error(Errc::invalid_argument,
                      "it starts child runs, which a worker cannot do: list it in the "
                      "driver's Config::cluster.local_nodes");
      }
    } catch (...) {
      out = current_node_failure(req.node, req.step, req.source);
    }
    if (timeout.count() > 0 && std::chrono::steady_clock::now() - started >= timeout) {
      return timed_out_result(req.dispatch, held, timed_out_text);  // returned late
    }
    if (out) {
      if (auto too_deep = check_output_depth(req.node, req.step, *out)) out = *too_deep;
    }
    if (out) {
      try {
        r.output = encode_value(*out);
      } catch (const std::exception& e) {
        out = make_failure(flux_errc::node_failed, req.node, req.step,
                           "node '" + req.node + "' (step " + req.step +
                               ") returned a value that cannot be sent: " + e.what());
      }
    }
    r.start_ns = start.time_since_epoch().count();
    r.duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    metrics::worker_step(req.node, std::chrono::nanoseconds(r.duration_ns));
    if (out) {
      r.outcome = static_cast<std::uint8_t>(wire::StepOutcome::ok);
    } else {
      r.outcome = static_cast<std::uint8_t>(wire::StepOutcome::failed);
      r.type_mismatch = out.error().code() == static_cast<std::uint8_t>(flux_errc::type_mismatch);
      r.error = failure_of(out.error()).message;
      r.output.clear();
    }
    return r;
  }

  /// How long a context call may wait for the run's owner: longer than the heartbeat
  /// timeout, so that a lost owner is noticed by the connection first.
  std::chrono::milliseconds context_timeout() const {
    return std::max(std::chrono::milliseconds(10000), config_.network.connection_timeout * 5);
  }

  Registry registry_;
  WorkerConfig config_;
  std::size_t capacity_ = 0;
  std::string id_;
  std::string store_url_;
  std::unique_ptr<WorkerDirectory> directory_;  // used by the constructor, then announcer_
  WorkerCard card_;
  caf::actor_system_config caf_config_;  // before system_: the system refers to it
  std::unique_ptr<caf::actor_system> system_;
  std::unique_ptr<BlockingPool> pool_;
  caf::actor gateway_;
  std::uint16_t port_ = 0;
  std::thread announcer_;
  std::mutex held_mu_;  // guards held_
  std::map<HeldKey, std::shared_ptr<Held>> held_;
  mutable std::mutex mu_;  // guards busy_, draining_, drained_
  std::condition_variable cv_;
  std::size_t busy_ = 0;
  bool draining_ = false;
  bool drained_ = false;
  bool stuck_ = false;  // steps still executing when the drain grace ran out

 public:
  std::size_t capacity() const noexcept { return capacity_; }
  /// Whether steps were still executing when a drain gave up waiting for them.
  bool stuck() const {
    std::lock_guard lock(mu_);
    return stuck_;
  }
};

}  // namespace detail

Worker::Worker(const Registry& registry, WorkerConfig config) {
  const std::string metrics_listen = config.metrics_listen;
  impl_ = std::make_unique<detail::WorkerImpl>(registry, std::move(config));
  detail::WorkerImpl* impl = impl_.get();
  metrics_watch_ = detail::metrics::watch_worker(
      impl->id(), [impl] { return impl->busy(); }, impl->capacity());
  if (!metrics_listen.empty()) {
    try {
      metrics_ = std::make_unique<MetricsServer>(metrics_listen);
    } catch (...) {
      detail::metrics::unwatch_worker(metrics_watch_);
      throw;  // ~WorkerImpl drains
    }
  }
}
Worker::~Worker() {
  metrics_.reset();
  detail::metrics::unwatch_worker(metrics_watch_);
  impl_->drain();
  if (impl_->stuck()) {
    // Destroying the worker would wait for its stuck threads forever: its state is left to
    // them, so that the process can exit (their drivers have placed their steps again).
    std::fprintf(stderr,
                 "flux: worker %s: leaving its stuck executions behind so that the process can "
                 "exit\n",
                 impl_->id().c_str());
    (void)impl_.release();
  }
}
const std::string& Worker::id() const noexcept { return impl_->id(); }
std::uint16_t Worker::port() const noexcept { return impl_->port(); }
std::size_t Worker::busy() const { return impl_->busy(); }
std::uint16_t Worker::metrics_port() const noexcept { return metrics_ ? metrics_->port() : 0; }
void Worker::drain() { impl_->drain(); }

void Worker::serve_until_signal() {
  detail::StopSignal stop;
  const char* sig = stop.wait();
  std::fprintf(stderr, "flux: worker %s: %s, draining\n", id().c_str(), sig);
  drain();
}

}  // namespace flux
