#include "cluster/dispatcher.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "cluster/wire.hpp"
#include "cluster/worker_directory.hpp"
#include "flux/error.hpp"
#include "format/record_codec.hpp"
#include "metrics/metrics.hpp"

namespace flux::detail {

namespace {
using poke_atom = caf::atom_constant<caf::atom("poke")>;  // the inbox has something
using tick_atom = caf::atom_constant<caf::atom("tick")>;  // check placement deadlines
using abandon_atom = caf::atom_constant<caf::atom("abandon")>;  // a run with steps out stopped
}  // namespace

/// What the discovery thread, `submit` callers and the actor exchange. Thread-safe.
struct Dispatcher::Shared {
  std::mutex mu;  // guards everything below
  std::condition_variable cv;
  bool stopping = false;
  std::deque<ExecRequest> steps;                         // submitted, not yet taken
  std::deque<std::pair<WorkerCard, caf::actor>> joined;  // connected by discovery
  std::vector<std::string> departed;                     // cards no longer announced
  std::set<std::string> lost;                            // connections the actor saw go
  std::map<std::string, std::string> unusable;           // announced workers not connected, and why
};

namespace {

std::string seconds(std::chrono::steady_clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s",
                std::chrono::duration_cast<std::chrono::duration<double>>(d).count());
  return buf;
}

std::string seconds(std::chrono::milliseconds d) {
  return seconds(std::chrono::steady_clock::duration(d));
}

/// The dispatcher actor's state. Single-threaded (the actor's).
class Placement {
 public:
  Placement(caf::event_based_actor* self, std::shared_ptr<Dispatcher::Shared> shared,
            ClusterConfig config, std::string driver)
      : self_(self),
        shared_(std::move(shared)),
        config_(std::move(config)),
        driver_(std::move(driver)) {}

  /// Takes what the inbox holds: new steps, joined and departed workers.
  void take_inbox() {
    std::deque<ExecRequest> steps;
    std::deque<std::pair<WorkerCard, caf::actor>> joined;
    std::vector<std::string> departed;
    {
      std::lock_guard lock(shared_->mu);
      steps.swap(shared_->steps);
      joined.swap(shared_->joined);
      departed.swap(shared_->departed);
    }
    for (auto& [card, handle] : joined) join(std::move(card), std::move(handle));
    for (const std::string& id : departed) depart(id);
    const auto deadline = std::chrono::steady_clock::now() + config_.placement_timeout;
    for (ExecRequest& req : steps) {
      const RunJob& job = *req.at.job;
      const PlanStep& step = req.at.step();
      req.at.job->run->begin_step();  // the run stays owned until this step is recorded
      // A retry (Node::retry) carries its attempt number; a first attempt takes the next one.
      const std::uint32_t attempt = req.attempt ? req.attempt : job.attempt_of(step.id);
      job.services->notify([&](Observer& o) {
        o.on_node_start(NodeEvent{job.run->run_id(), step.label, step.id, attempt});
      });
      enqueue(
          Waiting{std::move(req), attempt, deadline, wall_now(), std::chrono::steady_clock::now()});
    }
    place_waiting();
  }

  /// Places what waits where it can, the step waiting longest first among those a worker can
  /// take now; fails what waited too long for a worker hosting its node. Costs O(nodes waiting
  /// x workers) per step placed, whatever the number of steps waiting.
  void place_waiting() {
    const auto now = std::chrono::steady_clock::now();
    for (;;) {
      Queue* pick = nullptr;
      Slot* where = nullptr;
      for (auto& [def, q] : queues_) {
        while (!q.steps.empty()) {
          Waiting& front = q.steps.front();
          if (front.req.at.job->run->failing) {  // the run stopped: start nothing new
            Waiting w = take_front(q);
            abandon(std::move(w), w.req.at.job->run->stop_reason());
            continue;
          }
          auto [best, hosted] = best_worker(front.req.at.step().label, q.signature);
          // Hosted but every host is at capacity: the step waits for a slot without a
          // deadline (load is not absence).
          if (hosted) q.hosted_at = now;
          if (best) {
            if (!pick || front.seq < pick->steps.front().seq) pick = &q, where = best;
          } else if (!hosted &&
                     now >= std::max(front.deadline, q.hosted_at + config_.placement_timeout)) {
            no_worker(take_front(q), q.signature);
            continue;
          }
          break;
        }
      }
      if (!pick) break;
      send(*where, take_front(*pick), pick->signature);
    }
    std::erase_if(queues_, [](const auto& kv) { return kv.second.steps.empty(); });
  }

  /// Abandons the waiting steps of runs that stopped, wherever they are in their queue
  /// (place_waiting only looks at the fronts).
  void sweep_stopped() {
    for (auto& [def, q] : queues_) {
      std::deque<Waiting> keep;
      for (Waiting& w : q.steps) {
        if (w.req.at.job->run->failing) {
          const std::string why = w.req.at.job->run->stop_reason();
          abandon(std::move(w), why);
        } else {
          keep.push_back(std::move(w));
        }
      }
      q.steps = std::move(keep);
    }
  }

  void on_result(std::uint64_t dispatch, wire::StepResult& r) {
    auto it = inflight_.find(dispatch);
    if (it == inflight_.end()) return;  // placed again after its worker was lost: stale
    if (it->second.worker != r.worker) {
      std::fprintf(stderr,
                   "flux: driver %s dropped a result for dispatch %llu from '%s': it was sent "
                   "to worker %s\n",
                   driver_.c_str(), static_cast<unsigned long long>(dispatch), r.worker.c_str(),
                   it->second.worker.c_str());
      return;
    }
    InFlight d = std::move(it->second);
    inflight_.erase(it);
    release_slot(d.worker);
    const PlanStep& step = d.req.at.step();
    RunState& run = *d.req.at.job->run;
    run.off_cancel(d.hook);
    if (run.lease_lost()) {
      std::fprintf(stderr,
                   "flux: driver %s dropped the result of step %s (node '%s') of run %s from "
                   "worker %s: the run is no longer this driver's\n",
                   driver_.c_str(), step.id.c_str(), step.label.c_str(), run.run_id().c_str(),
                   d.worker.c_str());
      run.end_step();
      fail(d.req.at, make_failure(flux_errc::node_failed, step.label, step.id, run.stop_reason()));
      place_waiting();
      return;
    }
    if (r.outcome == static_cast<std::uint8_t>(wire::StepOutcome::refused)) {
      std::fprintf(stderr, "flux: driver %s: %s; placing step %s of run %s elsewhere\n",
                   driver_.c_str(), r.error.c_str(), step.id.c_str(), run.run_id().c_str());
      if (auto s = workers_.find(d.worker); s != workers_.end()) {
        if (r.error.find("draining") != std::string::npos) {
          s->second.accepting = false;
        } else {
          s->second.nodes.erase(step.label);  // the worker does not serve it (as we know it)
        }
      }
      enqueue(Waiting{std::move(d.req), d.attempt,
                      std::chrono::steady_clock::now() + config_.placement_timeout, d.start,
                      d.started});
      place_waiting();
      return;
    }
    HistoryEntry e = entry_for(d);
    e.start = Timestamp(std::chrono::nanoseconds(r.start_ns));
    e.duration = std::chrono::nanoseconds(r.duration_ns);
    e.end = e.start + e.duration;
    caf::expected<Value> outcome = Value{};
    if (r.outcome == static_cast<std::uint8_t>(wire::StepOutcome::ok)) {
      try {
        outcome = decode_value(r.output, "the output of step " + step.id + " of run " +
                                             run.run_id() + " from worker " + d.worker);
      } catch (const std::exception& ex) {
        outcome = make_failure(flux_errc::node_failed, step.label, step.id, ex.what());
      }
    } else if (r.outcome == static_cast<std::uint8_t>(wire::StepOutcome::timed_out)) {
      outcome = make_failure(flux_errc::timed_out, step.label, step.id, r.error);
    } else {
      outcome = make_failure(r.type_mismatch ? flux_errc::type_mismatch : flux_errc::node_failed,
                             step.label, step.id, r.error);
    }
    // Durability as for a local step of the node's mode: a sync node's record is batched.
    record_step(d.req.at, std::move(e), std::move(d.req.input), std::move(outcome),
                /*slow=*/step.node->mode != NodeMode::sync);
    place_waiting();
  }

  /// A connection to a worker is gone (killed, hung or cut off: heartbeats).
  void on_down(const caf::down_msg& down) {
    auto slot = std::find_if(workers_.begin(), workers_.end(), [&](const auto& kv) {
      return kv.second.handle.address() == down.source;
    });
    if (slot == workers_.end()) return;
    const std::string id = slot->first;
    const std::string where = slot->second.card.host + ":" + std::to_string(slot->second.card.port);
    workers_.erase(slot);
    {
      std::lock_guard lock(shared_->mu);
      shared_->lost.insert(id);  // discovery connects again when it is announced again
    }
    std::vector<std::uint64_t> orphaned;
    for (const auto& [dispatch, d] : inflight_) {
      if (d.worker == id) orphaned.push_back(dispatch);
    }
    std::sort(orphaned.begin(), orphaned.end());
    std::fprintf(stderr,
                 "flux: driver %s lost worker %s at %s (%s); placing its %zu step(s) again\n",
                 driver_.c_str(), id.c_str(), where.c_str(), caf::to_string(down.reason).c_str(),
                 orphaned.size());
    for (std::uint64_t dispatch : orphaned) {
      auto it = inflight_.find(dispatch);
      InFlight d = std::move(it->second);
      inflight_.erase(it);
      d.req.at.job->run->off_cancel(d.hook);
      // The lost attempt is recorded: it may have had effects (at least once).
      HistoryEntry e = entry_ending_now(d);
      e.input = d.req.at.job->services->for_history(d.req.input);
      e.error = "worker " + id + " at " + where + " was lost while executing node '" +
                d.req.at.step().label + "' (step " + d.req.at.step().id + ") after " +
                seconds(std::chrono::steady_clock::now() - d.sent) + " (" +
                caf::to_string(down.reason) + "); placed again as attempt " +
                std::to_string(d.attempt + 1);
      const RunJob& job = *d.req.at.job;
      const NodeEvent event{job.run->run_id(), e.node, e.step, e.attempt};
      job.run->append(e);
      job.services->notify([&](Observer& o) { o.on_node_error(event, e); });
      metrics::step_redispatched();
      // The next attempt starts (waits for a worker) now: observers see every attempt begin
      // and end, as for a first attempt in take_inbox().
      const NodeEvent next{job.run->run_id(), e.node, e.step, d.attempt + 1};
      job.services->notify([&](Observer& o) { o.on_node_start(next); });
      enqueue(Waiting{std::move(d.req), d.attempt + 1,
                      std::chrono::steady_clock::now() + config_.placement_timeout, wall_now(),
                      std::chrono::steady_clock::now()});
    }
    place_waiting();
  }

  /// The run of an in-flight step stopped (cancelled, its deadline passed, another step
  /// failed): the step is recorded as abandoned at once, as a local one is, and its worker told
  /// (its ctx.cancelled() turns true; its result, if it comes, is ignored as stale).
  void on_abandon(std::uint64_t dispatch) {
    auto it = inflight_.find(dispatch);
    if (it == inflight_.end()) return;  // ended meanwhile
    InFlight d = std::move(it->second);
    inflight_.erase(it);
    const PlanStep& step = d.req.at.step();
    RunState& run = *d.req.at.job->run;
    run.off_cancel(d.hook);
    const std::string why = run.stop_reason();
    if (auto w = workers_.find(d.worker); w != workers_.end()) {
      self_->send(w->second.handle, wire::CancelStep{dispatch, why});
    }
    release_slot(d.worker);
    HistoryEntry e = entry_ending_now(d);
    Value input = std::move(d.req.input);
    record_step(d.req.at, std::move(e), std::move(input),
                make_failure(flux_errc::cancelled, step.label, step.id,
                             "node '" + step.label + "' (step " + step.id +
                                 ") was abandoned: " + why),
                /*slow=*/true);
    place_waiting();
  }

  /// A Context call of a step executing on a worker: applied to the run here, in order.
  wire::ContextReply on_context(wire::ContextCall& c) {
    wire::ContextReply reply;
    auto it = inflight_.find(c.dispatch);
    if (it == inflight_.end() || it->second.req.at.job->run->run_id() != c.run_id ||
        it->second.req.at.job->run->fence() != c.fence) {
      reply.ok = false;
      reply.error =
          "the step is no longer this driver's (it was placed again, or its run "
          "ended); context call refused";
      return reply;
    }
    RunState& run = *it->second.req.at.job->run;
    if (run.lease_lost()) {
      reply.ok = false;
      reply.error = run.stop_reason();
      return reply;
    }
    const Scope scope =
        c.scope == static_cast<std::uint8_t>(Scope::shared) ? Scope::shared : Scope::kv;
    try {
      switch (static_cast<wire::ContextOp>(c.op)) {
        case wire::ContextOp::get:
          if (auto v = run.get(scope, c.key)) {
            reply.found = true;
            reply.value = encode_value(*v);
          }
          break;
        case wire::ContextOp::put:
          run.put(scope, c.key, decode_value(c.value, "context call value"));
          break;
        case wire::ContextOp::erase:
          reply.found = run.erase(scope, c.key);
          break;
        case wire::ContextOp::compare_and_set: {
          std::optional<Value> expected;
          if (c.has_expected) expected = decode_value(c.expected, "context call expected value");
          auto now = run.compare_and_set(scope, c.key, expected,
                                         decode_value(c.value, "context call value"));
          reply.found = !now.has_value();
          if (now && *now) reply.value = encode_value(**now);
          break;
        }
        case wire::ContextOp::snapshot:
          reply.value = encode_value(Value(run.snapshot(scope)));
          break;
        case wire::ContextOp::history:
          for (const HistoryEntry& e : run.history()) reply.items.push_back(encode_history(e));
          break;
        default:
          reply.ok = false;
          reply.error = "unknown context operation " + std::to_string(c.op);
      }
    } catch (const std::exception& e) {
      reply.ok = false;
      reply.error = e.what();
    }
    return reply;
  }

  void stop_all() {
    for (auto& [id, slot] : workers_) self_->demonitor(slot.handle);
    workers_.clear();
  }

 private:
  struct Slot {
    WorkerCard card;
    caf::actor handle;
    std::map<std::string, std::string> nodes;  // name -> signature
    std::uint32_t outstanding = 0;
    bool accepting = true;
    std::uint64_t last_sent = 0;  // when it was last given a step (dispatch number)
  };
  struct Waiting {
    ExecRequest req;
    std::uint32_t attempt;
    std::chrono::steady_clock::time_point deadline;
    Timestamp start;  // when the step was first submitted (history of a failed placement)
    std::chrono::steady_clock::time_point started;
    std::uint64_t seq = 0;  // order of submission, across nodes (set by enqueue)
  };
  struct InFlight {
    ExecRequest req;
    std::uint32_t attempt;
    std::string worker;
    Timestamp start;
    std::chrono::steady_clock::time_point started;
    std::chrono::steady_clock::time_point sent;
    std::uint64_t hook = 0;  // the run's on_cancel callback that abandons the step
  };

  /// Steps of one node definition waiting for a worker, in order of submission.
  struct Queue {
    std::string signature;  // the node's, computed once per queue
    std::deque<Waiting> steps;
    std::chrono::steady_clock::time_point hosted_at{};  // when a worker last hosted the node
  };

  void enqueue(Waiting w) {
    w.seq = ++next_seq_;
    const NodeDef* def = w.req.at.step().node;
    auto [it, created] = queues_.try_emplace(def);
    if (created) it->second.signature = signature(*def);
    it->second.steps.push_back(std::move(w));
  }

  static Waiting take_front(Queue& q) {
    Waiting w = std::move(q.steps.front());
    q.steps.pop_front();
    return w;
  }

  /// The worker to give a step of node `name` (signature `sig`) now, if any can take one, and
  /// whether any connected worker hosts the node at all.
  std::pair<Slot*, bool> best_worker(const std::string& name, const std::string& sig) {
    Slot* best = nullptr;
    bool hosted = false;
    for (auto& [id, slot] : workers_) {
      if (!slot.accepting) continue;
      auto it = slot.nodes.find(name);
      if (it == slot.nodes.end() || it->second != sig) continue;
      hosted = true;
      if (slot.outstanding >= limit(slot)) continue;
      // Least outstanding work relative to capacity; among equals, the one used least
      // recently, so that steps spread even when each finds every worker idle.
      if (!best) {
        best = &slot;
        continue;
      }
      const auto mine = std::uint64_t{slot.outstanding} * best->card.capacity;
      const auto theirs = std::uint64_t{best->outstanding} * slot.card.capacity;
      if (mine < theirs || (mine == theirs && slot.last_sent < best->last_sent)) best = &slot;
    }
    return {best, hosted};
  }

  /// How many steps a worker may hold: what it executes at once, plus what waits in its queue.
  std::uint32_t limit(const Slot& slot) const {
    return slot.card.capacity + slot.card.capacity * config_.prefetch;
  }

  static HistoryEntry entry_for(const InFlight& d) {
    HistoryEntry e;
    e.type = HistoryEntry::Type::node;
    e.node = d.req.at.step().label;
    e.step = d.req.at.step().id;
    e.attempt = d.attempt;
    e.worker = d.worker;
    return e;
  }
  /// The entry of an attempt that ends here and now without a result (its worker was lost,
  /// or its run stopped): timed from when it was first submitted.
  static HistoryEntry entry_ending_now(const InFlight& d) {
    HistoryEntry e = entry_for(d);
    e.start = d.start;
    e.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now() - d.started);
    e.end = e.start + e.duration;
    return e;
  }

  void join(WorkerCard card, caf::actor handle) {
    const std::string id = card.id;
    auto it = workers_.find(id);
    if (it != workers_.end() && it->second.handle != handle) {
      self_->demonitor(it->second.handle);
    }
    Slot slot;
    slot.nodes.insert(card.nodes.begin(), card.nodes.end());
    slot.card = std::move(card);
    slot.handle = handle;
    if (it != workers_.end()) slot.outstanding = it->second.outstanding;
    self_->monitor(handle);
    workers_[id] = std::move(slot);
  }

  void depart(const std::string& id) {
    auto it = workers_.find(id);
    if (it == workers_.end()) return;
    it->second.accepting = false;  // its steps in flight still end normally (a drain)
    if (it->second.outstanding == 0) {
      self_->demonitor(it->second.handle);
      workers_.erase(it);
    }
  }

  void release_slot(const std::string& id) {
    auto it = workers_.find(id);
    if (it == workers_.end()) return;
    if (it->second.outstanding) --it->second.outstanding;
    if (!it->second.accepting && it->second.outstanding == 0) {
      self_->demonitor(it->second.handle);
      workers_.erase(it);
    }
  }

  void send(Slot& slot, Waiting w, const std::string& sig) {
    const std::uint64_t dispatch = ++next_dispatch_;
    const PlanStep& step = w.req.at.step();
    const RunJob& job = *w.req.at.job;
    wire::StepRequest r;
    r.run_id = job.run->run_id();
    r.step = step.id;
    r.node = step.label;
    r.signature = sig;
    r.source = source_text(w.req.source);
    r.attempt = w.attempt;
    r.fence = job.run->fence();
    r.dispatch = dispatch;
    r.timeout_ns = std::chrono::nanoseconds(step.node->timeout).count();
    if (job.deadline) r.deadline_ns = job.deadline->time_since_epoch().count();
    try {
      r.input = encode_value(w.req.input);
    } catch (const std::exception& e) {
      HistoryEntry entry;
      entry.node = step.label;
      entry.step = step.id;
      entry.attempt = w.attempt;
      entry.start = w.start;
      entry.end = wall_now();
      record_step(w.req.at, std::move(entry), std::move(w.req.input),
                  make_failure(flux_errc::node_failed, step.label, step.id,
                               "node '" + step.label + "' (step " + step.id +
                                   "): its input cannot be sent to a worker: " + e.what()),
                  true);
      return;
    }
    ++slot.outstanding;
    slot.last_sent = dispatch;
    RunState& run = *job.run;
    auto [at, placed] =
        inflight_.emplace(dispatch, InFlight{std::move(w.req), w.attempt, slot.card.id, w.start,
                                             w.started, std::chrono::steady_clock::now()});
    // Called at once if the run stopped already: the step is then abandoned on arrival.
    at->second.hook = run.on_cancel(
        [me = caf::actor_cast<caf::actor>(self_), dispatch] {
          caf::anon_send(me, abandon_atom::value, dispatch);
        });
    // Answered by a StepResult message carrying `dispatch`, not by a response: the worker's
    // execution thread sends it straight to this actor. A worker that goes away is noticed
    // through the monitor (on_down), which places its steps again.
    self_->send(slot.handle, std::move(r));
  }

  /// No worker hosting the node appeared within the placement timeout: the step fails.
  void no_worker(Waiting w, const std::string& sig) {
    const PlanStep& step = w.req.at.step();
    std::string seen;
    for (const auto& [id, slot] : workers_) {
      if (!seen.empty()) seen += "; ";
      seen += id;
      auto it = slot.nodes.find(step.label);
      if (!slot.accepting) {
        seen += " (draining)";
      } else if (it != slot.nodes.end()) {
        seen += " (hosts it as " + it->second + ", not " + sig + ")";
      } else {
        std::string names;
        for (const auto& [name, sig] : slot.nodes) names += (names.empty() ? "" : ", ") + name;
        seen += " (nodes: " + (names.empty() ? std::string("none") : names) + ")";
      }
    }
    {
      std::lock_guard lock(shared_->mu);
      for (const auto& [id, why] : shared_->unusable) {
        if (workers_.count(id)) continue;
        if (!seen.empty()) seen += "; ";
        seen += id + " (not connected: " + why + ")";
      }
    }
    HistoryEntry e;
    e.node = step.label;
    e.step = step.id;
    e.attempt = w.attempt;
    e.start = w.start;
    e.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now() - w.started);
    e.end = e.start + e.duration;
    Cursor at = w.req.at;
    record_step(
        at, std::move(e), std::move(w.req.input),
        make_failure(flux_errc::node_failed, step.label, step.id,
                     "no worker hosts node '" + step.label + "' (step " + step.id + ", signature " +
                         sig + "): waited " + seconds(config_.placement_timeout) +
                         "; workers seen: " + (seen.empty() ? std::string("none") : seen)),
        true);
  }

  /// The run stopped while the step waited: it is not started.
  void abandon(Waiting w, const std::string& why) {
    const PlanStep& step = w.req.at.step();
    w.req.at.job->run->end_step();
    fail(w.req.at, make_failure(flux_errc::cancelled, step.label, step.id, why));
  }

  caf::event_based_actor* self_;
  std::shared_ptr<Dispatcher::Shared> shared_;
  const ClusterConfig config_;
  const std::string driver_;
  std::map<std::string, Slot> workers_;
  std::unordered_map<std::uint64_t, InFlight> inflight_;
  std::map<const NodeDef*, Queue> queues_;  // steps waiting for a worker, per node
  std::uint64_t next_dispatch_ = 0;
  std::uint64_t next_seq_ = 0;
};

caf::behavior dispatcher_actor(caf::event_based_actor* self,
                               std::shared_ptr<Dispatcher::Shared> shared, ClusterConfig config,
                               std::string driver) {
  auto p = std::make_shared<Placement>(self, std::move(shared), config, std::move(driver));
  self->set_down_handler([p](caf::down_msg& down) { p->on_down(down); });
  self->set_default_handler(caf::drop);
  self->delayed_send(self, std::chrono::milliseconds(100), tick_atom::value);
  self->attach_functor([p] { p->stop_all(); });
  return {
      [p](poke_atom) { p->take_inbox(); },
      [p](wire::StepResult& r) { p->on_result(r.dispatch, r); },
      [p](abandon_atom, std::uint64_t dispatch) { p->on_abandon(dispatch); },
      [self, p](tick_atom) {
        p->sweep_stopped();
        p->take_inbox();
        self->delayed_send(self, std::chrono::milliseconds(100), tick_atom::value);
      },
      [p](wire::ContextCall& c) -> wire::ContextReply { return p->on_context(c); },
  };
}

}  // namespace

Dispatcher::Dispatcher(caf::actor_system& system, ClusterConfig config, std::string store_url,
                       std::string key_prefix, std::string driver)
    : system_(system),
      config_(std::move(config)),
      store_url_(std::move(store_url)),
      key_prefix_(std::move(key_prefix)),
      shared_(std::make_shared<Shared>()) {
  actor_ = system_.spawn(dispatcher_actor, shared_, config_, std::move(driver));
  discovery_ = std::thread([this] { discover(); });
}

Dispatcher::~Dispatcher() {
  {
    std::lock_guard lock(shared_->mu);
    shared_->stopping = true;
  }
  shared_->cv.notify_all();
  discovery_.join();
  caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
  actor_ = nullptr;
}

void Dispatcher::submit(ExecRequest req) {
  {
    std::lock_guard lock(shared_->mu);
    shared_->steps.push_back(std::move(req));
  }
  caf::anon_send(actor_, poke_atom::value);
}

void Dispatcher::discover() {
  using clock = std::chrono::steady_clock;
  struct Retry {
    clock::time_point next;
    std::chrono::milliseconds backoff{500};
  };
  std::unique_ptr<WorkerDirectory> directory;
  std::set<std::string> connected;     // ids handed to the actor
  std::map<std::string, Retry> retry;  // ids whose connect failed: not before `next`
  std::set<std::string> refused;       // ids refused once (logged once)
  std::string last_error;              // the store's, logged once per change
  const bool tls = config_.network.tls.enabled();
  std::unique_lock lock(shared_->mu);
  while (!shared_->stopping) {
    for (const std::string& id : shared_->lost) connected.erase(id);
    shared_->lost.clear();
    lock.unlock();
    std::vector<WorkerCard> cards;
    try {
      if (!directory) directory = std::make_unique<WorkerDirectory>(store_url_, key_prefix_);
      cards = directory->live();
      last_error.clear();
    } catch (const std::exception& e) {
      directory.reset();
      if (last_error != e.what()) {
        last_error = e.what();
        std::fprintf(stderr, "flux: discovery of workers failed: %s\n", e.what());
      }
    }
    std::set<std::string> live;
    bool joined = false;
    auto unusable = [&](const WorkerCard& card, std::string why) {
      std::lock_guard guard(shared_->mu);
      shared_->unusable[card.id] = std::move(why);
    };
    auto connect_failed = [&](const WorkerCard& card, std::string why) {
      Retry& next = retry[card.id];
      std::fprintf(stderr, "flux: worker %s: %s; retrying in %lld ms\n", card.id.c_str(),
                   why.c_str(), static_cast<long long>(next.backoff.count()));
      unusable(card, std::move(why));
      next.next = clock::now() + next.backoff;
      next.backoff = std::min(next.backoff * 2, std::chrono::milliseconds(5000));
    };
    std::vector<const WorkerCard*> candidates;
    for (const WorkerCard& card : cards) {
      live.insert(card.id);
      if (connected.count(card.id)) continue;
      const std::string where = card.host + ":" + std::to_string(card.port);
      if (card.protocol != k_wire_protocol || card.tls != tls) {
        std::string why = "at " + where + ", it speaks " + card.protocol +
                          (card.tls ? " over TLS" : " in plaintext") + ", this driver " +
                          k_wire_protocol + (tls ? " over TLS" : " in plaintext");
        if (refused.insert(card.id).second) {
          std::fprintf(stderr, "flux: worker %s not used: %s\n", card.id.c_str(), why.c_str());
        }
        unusable(card, std::move(why));
        continue;
      }
      if (!tls && !config_.network.allow_plaintext && !wire::is_loopback(card.host)) {
        std::string why = "at " + where +
                          ": plaintext to an address other than loopback is refused (configure "
                          "network.tls, or set network.allow_plaintext on a trusted network)";
        if (refused.insert(card.id).second) {
          std::fprintf(stderr, "flux: worker %s not used: %s\n", card.id.c_str(), why.c_str());
        }
        unusable(card, std::move(why));
        continue;
      }
      auto r = retry.find(card.id);
      if (r != retry.end() && clock::now() < r->second.next) continue;
      candidates.push_back(&card);
    }
    // All at once and bounded, before CAF's connect, which blocks on an address that does not
    // answer and holds every other connect meanwhile (wire::connect_to).
    std::vector<std::pair<std::string, std::uint16_t>> addresses;
    for (const WorkerCard* card : candidates) addresses.emplace_back(card->host, card->port);
    const auto probed = wire::probe_tcp(
        addresses, std::max(std::chrono::milliseconds(1000), config_.network.connection_timeout));
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      const WorkerCard& card = *candidates[i];
      const std::string where = card.host + ":" + std::to_string(card.port);
      if (!probed[i].empty()) {
        connect_failed(card, "cannot connect to " + where + ": " + probed[i]);
        continue;
      }
      auto handle = wire::connect_to(
          system_, config_.network, card.host, card.port,
          std::max(std::chrono::milliseconds(2000), config_.network.connection_timeout * 2));
      if (!handle) {
        connect_failed(card, "cannot connect to " + where + ": " + system_.render(handle.error()));
        continue;
      }
      retry.erase(card.id);
      connected.insert(card.id);
      std::lock_guard guard(shared_->mu);
      shared_->unusable.erase(card.id);
      shared_->joined.emplace_back(card, *handle);
      joined = true;
    }
    std::vector<std::string> departed;
    for (auto it = connected.begin(); it != connected.end();) {
      if (!live.count(*it) && last_error.empty()) {
        departed.push_back(*it);
        it = connected.erase(it);
      } else {
        ++it;
      }
    }
    lock.lock();
    for (auto it = shared_->unusable.begin(); it != shared_->unusable.end();) {
      it = live.count(it->first) || !last_error.empty() ? std::next(it)
                                                        : shared_->unusable.erase(it);
    }
    if (joined || !departed.empty()) {
      for (auto& id : departed) shared_->departed.push_back(std::move(id));
      caf::anon_send(actor_, poke_atom::value);
    }
    shared_->cv.wait_for(lock, config_.discovery_interval, [this] { return shared_->stopping; });
  }
}

}  // namespace flux::detail
