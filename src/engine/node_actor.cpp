// The node actor: executes one node's function for any run, records the execution, and
// continues the run itself (see Cursor in run_driver.hpp).
//
// Sync nodes run inside the actor. Blocking nodes, and the wait for an async node's
// future, run on the blocking pool, which then records and continues the run from there:
// the actor is free for other runs meanwhile.
//
// Timeouts and cancellation (README, "Control"). An attempt that is not sync is *settled*
// once: by its own end, by its timeout (Node::timeout) or by its run's cancellation —
// whichever comes first records it; the others find it settled and do nothing, so a late
// result is never recorded. A sync attempt holds its scheduler thread and cannot be cut
// short: it sees its limits through ctx.deadline() / ctx.cancelled(), and one that returns
// after its timeout is recorded as timed out.

#include <atomic>
#include <chrono>
#include <optional>

#include "engine/node_executors.hpp"
#include "engine/run_driver.hpp"

namespace flux::detail {
namespace {

/// One execution: what is needed to call, time and record it.
struct Execution {
  explicit Execution(ExecRequest r)
      : req(std::move(r)),
        step(&req.at.step()),
        ctx(req.at.job->run, step->label, step->id,
            req.attempt ? req.attempt : req.at.job->attempt_of(step->id)),
        start(wall_now()),
        started(std::chrono::steady_clock::now()) {
    // The attempt's deadline: the earlier of its timeout and its run's deadline.
    std::optional<Timestamp> deadline = req.at.job->deadline;
    if (const auto limit = step->node->timeout; limit.count() > 0) {
      const Timestamp until = start + std::chrono::duration_cast<std::chrono::nanoseconds>(limit);
      if (!deadline || until < *deadline) deadline = until;
    }
    if (step->node->mode != NodeMode::sync) {
      abandoned = std::make_shared<std::atomic<bool>>(false);
      ctx.set_limits(deadline, abandoned);
    } else if (deadline) {
      ctx.set_limits(deadline, nullptr);  // the fast path allocates nothing more
    }
  }

  NodeEvent event() const {
    return NodeEvent{req.at.job->run->run_id(), step->label, step->id, ctx.attempt()};
  }
  const RunJob& job() const { return *req.at.job; }

  ExecRequest req;
  const PlanStep* step;
  Context ctx;
  Timestamp start;
  std::chrono::steady_clock::time_point started;
  // Not sync: who settles the attempt (see the file comment), and what to disarm then.
  std::shared_ptr<std::atomic<bool>> abandoned;
  std::atomic<bool> settled{false};
  std::atomic<std::uint64_t> timer{0}, hook{0};
};

caf::error current_failure(const Execution& ex) {
  return current_node_failure(ex.step->label, ex.step->id, source_text(ex.req.source));
}

/// Records `ex` and continues the run (record_step). `abandoned`: the function may still be
/// running, so its input is copied (it may still read it) and its children are not read.
void finish(Execution& ex, caf::expected<Value> outcome, bool abandoned = false) {
  HistoryEntry e;
  e.type = HistoryEntry::Type::node;
  e.node = ex.step->label;
  e.step = ex.step->id;
  e.attempt = ex.ctx.attempt();
  e.start = ex.start;
  e.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now() - ex.started);
  e.end = e.start + e.duration;
  if (!abandoned) e.children = ex.ctx.children();
  Value input = abandoned ? Value(ex.req.input) : std::move(ex.req.input);
  record_step(ex.req.at, std::move(e), std::move(input), std::move(outcome),
              ex.step->node->mode != NodeMode::sync, ex.req.source);
}

/// Stops the timeout and the cancellation hook of a settled attempt.
void disarm(Execution& ex) {
  const RunJob& job = ex.job();
  job.services->timers->cancel(ex.timer.exchange(0));
  job.run->off_cancel(ex.hook.exchange(0));
}

/// Settles `ex` as failed with `why` if nothing settled it yet: the function (still running)
/// is abandoned and its eventual result ignored.
void abandon(const std::shared_ptr<Execution>& ex, caf::error why) {
  if (ex->settled.exchange(true)) return;
  ex->abandoned->store(true);
  disarm(*ex);
  finish(*ex, std::move(why), /*abandoned=*/true);
}

/// Settles `ex` with its own outcome, unless its timeout or its run's cancellation did.
void settle(const std::shared_ptr<Execution>& ex, caf::expected<Value> outcome) {
  if (ex->settled.exchange(true)) return;  // abandoned: the late result is never recorded
  disarm(*ex);
  // Returned after its timeout, before the timer said so (it may have seen ctx.cancelled()
  // turn true at its deadline): timed out all the same.
  if (const auto limit = ex->step->node->timeout;
      limit.count() > 0 && std::chrono::steady_clock::now() - ex->started >= limit) {
    outcome = timed_out(ex->step->label, ex->step->id, limit);
  }
  finish(*ex, std::move(outcome));
}

/// Arms the timeout and the cancellation hook of a non-sync attempt; false if the run is
/// cancelled already (the attempt is then settled as cancelled and must not start).
bool arm(const std::shared_ptr<Execution>& ex) {
  const RunJob& job = ex->job();
  ex->hook = job.run->on_cancel([ex] {
    abandon(ex, make_failure(flux_errc::cancelled, ex->step->label, ex->step->id,
                             "node '" + ex->step->label + "' (step " + ex->step->id +
                                 ") was abandoned: " + ex->job().run->stop_reason()));
  });
  if (ex->settled) return false;
  if (const auto limit = ex->step->node->timeout; limit.count() > 0) {
    ex->timer = job.services->timers->after(
        limit, [ex, limit] { abandon(ex, timed_out(ex->step->label, ex->step->id, limit)); });
  }
  return true;
}

caf::expected<Value> call_sync(const NodeDef& def, Execution& ex) {
  try {
    ExecutingNode executing(ex.ctx);
    return def.call(ex.req.input, ex.ctx);
  } catch (...) {
    return current_failure(ex);
  }
}

/// The node's outcome from its child run's result.
caf::expected<Value> child_outcome(const Execution& ex, const RunResult& child) {
  if (child.ok()) return child.output;
  const std::string& node = ex.step->label;
  const std::string& step = ex.step->id;
  return make_failure(
      flux_errc::node_failed, node, step,
      "node '" + node + "' (step " + step + ") failed: child run " + child.run_id +
          " failed: " + (child.error ? child.error->message : std::string("unknown error")));
}

/// Executes one request: a sync node right here, other nodes handed to the blocking pool,
/// which records and continues the run from there.
void execute(const NodeDef* def, ExecRequest req) {
  req.at.job->run->begin_step();  // the run stays owned until this step is recorded
  const Services& services = *req.at.job->services;
  if (def->mode == NodeMode::sync) {
    Execution ex(std::move(req));
    services.notify([&](Observer& o) { o.on_node_start(ex.event()); });
    auto out = call_sync(*def, ex);
    // A sync node cannot be preempted: its timeout is enforced when it returns.
    if (def->timeout.count() > 0 && std::chrono::steady_clock::now() - ex.started > def->timeout) {
      out = timed_out(ex.step->label, ex.step->id, def->timeout);
    }
    finish(ex, std::move(out));
    return;
  }
  auto ex = std::make_shared<Execution>(std::move(req));
  services.notify([&](Observer& o) { o.on_node_start(ex->event()); });
  if (!arm(ex)) return;  // cancelled before it started: recorded as such
  if (def->mode == NodeMode::child) {
    std::optional<ChildRun> child;
    try {
      ExecutingNode executing(ex->ctx);
      child = def->call_child(ex->req.input, ex->ctx);
    } catch (...) {
      settle(ex, current_failure(*ex));
      return;
    }
    services.executions.add();
    services.journal->nudge();  // store what came before while the child runs
    // No thread waits: the child's completion continues this run.
    child->completion()->then([ex](const RunResult& result) mutable {
      const Services& s = *ex->job().services;
      settle(ex, child_outcome(*ex, result));
      ex.reset();
      s.executions.done();
    });
    return;
  }
  std::function<Value()> wait;
  if (def->mode == NodeMode::async) {
    try {
      ExecutingNode executing(ex->ctx);
      wait = def->call_async(ex->req.input, ex->ctx);  // decodes input, starts the work
    } catch (...) {
      settle(ex, current_failure(*ex));
      return;
    }
  }
  services.executions.add();  // may outlive its run if the run fails fast
  services.journal->nudge();  // store what came before while this step takes its time
  services.pool.submit([ex, def, wait = std::move(wait)]() mutable {
    const Services& s = *ex->job().services;
    caf::expected<Value> out = Value{};
    if (wait) {
      try {
        out = wait();  // the future
      } catch (...) {
        out = current_failure(*ex);
      }
    } else {
      out = call_sync(*def, *ex);
    }
    settle(ex, std::move(out));
    ex.reset();
    s.executions.done();
  });
}

}  // namespace

caf::behavior node_actor(caf::event_based_actor* self, const NodeDef* def, NodeExecutors* executors,
                         std::size_t index, NodeExecutors::Slot* slot) {
  self->set_default_handler(caf::drop);
  return {
      [def, executors, index, slot](exec_atom) {
        ExecRequest req = NodeExecutors::take(*slot);
        // The plan owns `executors`; the request may hold its last reference.
        std::shared_ptr<const Plan> keep = req.at.job->plan;
        execute(def, std::move(req));
        executors->finished(index);
      },
  };
}

}  // namespace flux::detail
