// The parallel actor: the fan-out/fan-in coordinator of one parallel execution.

#include <chrono>

#include "engine/node_executors.hpp"
#include "engine/run_driver.hpp"

namespace flux::detail {

caf::behavior parallel_actor(caf::event_based_actor* self, Cursor at, Value input,
                             const std::string* source) {
  self->set_default_handler(caf::drop);
  // Fan-in state. The first real (not cancelled) branch failure ends the parallel at once
  // — fail fast — and stops the run from starting further steps; steps already executing
  // finish and are recorded, but nothing waits for them.
  struct Gather {
    Value::List outputs;
    std::size_t pending;
    Timestamp start = wall_now();
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    bool concluded = false;
    std::uint64_t cancel_hook = 0;
  };
  const PlanStep& step = at.step();
  auto g = std::make_shared<Gather>();
  g->outputs.resize(step.children.size());
  g->pending = step.children.size();
  const RunJob& job = *at.job;
  const std::uint32_t attempt = job.attempt_of(step.id);
  job.services->notify([&](Observer& o) {
    o.on_node_start(NodeEvent{job.run->run_id(), k_parallel_name, step.id, attempt});
  });
  auto me = caf::actor_cast<caf::actor>(self);
  // A cancelled run ends now: branches still executing a sync step would keep the parallel
  // (and so the run) waiting for them otherwise. A weak handle: the hook must not keep this
  // actor alive.
  g->cancel_hook = job.run->on_cancel([weak = caf::actor_cast<caf::weak_actor_ptr>(self)] {
    if (auto strong = caf::actor_cast<caf::actor>(weak)) {
      caf::anon_send(strong, cancel_atom::value);
    }
  });
  for (std::size_t b = 0; b < step.children.size(); ++b) {
    advance(Cursor{at.job, &step.children[b], 0, me, static_cast<std::uint32_t>(b)}, input, source);
  }

  auto conclude = [self, at, g, attempt, input](caf::expected<Value> out) {
    g->concluded = true;
    const RunJob& job = *at.job;
    job.run->off_cancel(g->cancel_hook);
    const PlanStep& step = at.step();
    // The list of the branches' outputs is one level deeper than the deepest of them.
    if (out) {
      if (const std::size_t depth = out->depth(); depth > k_max_value_depth) {
        out = make_failure(flux_errc::node_failed, k_parallel_name, step.id,
                           "parallel (step " + step.id + ") gathered its branches' outputs " +
                               "into a list nested " + std::to_string(depth) +
                               " levels deep (lists/maps); the limit is " +
                               std::to_string(k_max_value_depth) + " (flux::k_max_value_depth)");
      }
    }
    HistoryEntry e;
    e.type = HistoryEntry::Type::parallel;
    e.node = k_parallel_name;
    e.step = step.id;
    e.attempt = attempt;
    e.start = g->start;
    e.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now() - g->started);
    e.end = e.start + e.duration;
    e.input = job.services->for_history(input);
    if (out) {
      e.output = job.services->for_history(*out);
    } else {
      e.error = failure_of(out.error()).message;
      job.run->failing = true;
    }
    job.run->append(e);
    NodeEvent ev{job.run->run_id(), k_parallel_name, step.id, attempt};
    job.services->notify([&](Observer& o) {
      if (e.ok()) {
        o.on_node_end(ev, e);
      } else {
        o.on_node_error(ev, e);
      }
    });
    if (out) {
      Cursor next = at;
      ++next.index;
      advance_when_stored(std::move(next), std::move(*out), &step.label,
                          job.services->waits_for_store(false));
    } else {
      fail(at, std::move(out.error()));
    }
    self->quit();  // later branch reports are dropped with the actor
  };

  return {
      [g, conclude](seq_done_atom, std::uint32_t branch, Value& out) {
        if (g->concluded) return;
        g->outputs[branch] = std::move(out);
        if (--g->pending == 0) conclude(Value(std::move(g->outputs)));
      },
      [g, conclude, at](cancel_atom) {
        if (g->concluded) return;
        const PlanStep& step = at.step();
        conclude(make_failure(flux_errc::cancelled, k_parallel_name, step.id,
                              at.job->run->stop_reason()));
      },
      [g, conclude](seq_fail_atom, std::uint32_t, caf::error& err) {
        if (g->concluded) return;
        // A cancellation is only reported if the cause comes from elsewhere.
        if (!is_cancelled(err) || --g->pending == 0) conclude(std::move(err));
      },
  };
}

}  // namespace flux::detail
