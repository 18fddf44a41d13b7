// The node actor: executes one node's function for any run, records the execution, and
// continues the run itself (see Cursor in run_driver.hpp).
//
// Sync nodes run inside the actor. Blocking nodes, and the wait for an async node's
// future, run on the blocking pool, which then records and continues the run from there:
// the actor is free for other runs meanwhile.

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
        ctx(req.at.job->run, step->label, step->id, req.at.job->attempt_of(step->id)),
        start(wall_now()),
        started(std::chrono::steady_clock::now()) {}

  NodeEvent event() const {
    return NodeEvent{req.at.job->run->run_id(), step->label, step->id, ctx.attempt()};
  }
  const RunJob& job() const { return *req.at.job; }

  ExecRequest req;
  const PlanStep* step;
  Context ctx;
  Timestamp start;
  std::chrono::steady_clock::time_point started;
};

caf::error current_failure(const Execution& ex) {
  return current_node_failure(ex.step->label, ex.step->id, source_text(ex.req.source));
}

/// Records `ex` and continues the run (record_step).
void finish(Execution& ex, caf::expected<Value> outcome) {
  HistoryEntry e;
  e.type = HistoryEntry::Type::node;
  e.node = ex.step->label;
  e.step = ex.step->id;
  e.attempt = ex.ctx.attempt();
  e.start = ex.start;
  e.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now() - ex.started);
  e.end = e.start + e.duration;
  e.children = ex.ctx.children();
  record_step(ex.req.at, std::move(e), std::move(ex.req.input), std::move(outcome),
              ex.step->node->mode != NodeMode::sync);
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
    finish(ex, std::move(out));
    return;
  }
  auto ex = std::make_shared<Execution>(std::move(req));
  services.notify([&](Observer& o) { o.on_node_start(ex->event()); });
  if (def->mode == NodeMode::child) {
    std::optional<ChildRun> child;
    try {
      ExecutingNode executing(ex->ctx);
      child = def->call_child(ex->req.input, ex->ctx);
    } catch (...) {
      finish(*ex, current_failure(*ex));
      return;
    }
    services.executions.add();
    services.journal->nudge();  // store what came before while the child runs
    // No thread waits: the child's completion continues this run.
    child->completion()->then([ex](const RunResult& result) mutable {
      const Services& s = *ex->job().services;
      finish(*ex, child_outcome(*ex, result));
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
      finish(*ex, current_failure(*ex));
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
    finish(*ex, std::move(out));
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
