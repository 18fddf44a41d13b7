// Moving a run along its plan (advance, fail) and the parallel actor — the
// fan-out/fan-in coordinator.

#include <chrono>

#include "internal.hpp"
#include "node_executors.hpp"

namespace flux::detail {

void fail(const Cursor& at, caf::error error) {
  if (!at.reply_to) {
    end_run(at.job, std::move(error));
    return;
  }
  caf::anon_send(at.reply_to, seq_fail_atom::value, at.tag, std::move(error));
}

void advance(Cursor at, Value input, const std::string* source) {
  const RunJob& job = *at.job;
  const auto& steps = at.seq->children;
  // Resume: steps whose output is recorded are not executed again.
  while (at.index < steps.size() && !job.replay.empty()) {
    auto it = job.replay.find(steps[at.index].id);
    if (it == job.replay.end()) break;
    input = it->second;
    source = &steps[at.index].label;
    ++at.index;
  }
  if (at.index == steps.size()) {
    if (!at.reply_to) {
      end_run(at.job, std::move(input));
    } else {
      caf::anon_send(at.reply_to, seq_done_atom::value, at.tag, std::move(input));
    }
    return;
  }
  if (job.run->failing) {  // another branch failed: start nothing new
    fail(at, make_failure(flux_errc::cancelled, "", "", job.run->stop_reason()));
    return;
  }
  const PlanStep& step = at.step();
  if (step.type == PipelineDef::Type::node && step.remote) {
    job.services->remote->submit(ExecRequest{std::move(at), std::move(input), source});
  } else if (step.type == PipelineDef::Type::node) {
    NodeExecutors& executors = *step.executors;
    executors.submit(ExecRequest{std::move(at), std::move(input), source});
  } else {  // a coordinator per parallel execution
    job.services->system->spawn(parallel_actor, std::move(at), std::move(input), source);
  }
}

void advance_when_stored(Cursor at, Value input, const std::string* source, bool wait_for_store) {
  if (!wait_for_store) {
    advance(std::move(at), std::move(input), source);
    return;
  }
  const RunJob& job = *at.job;
  job.services->journal->complete(Completion{
      job.run->run_id(), job.lease.token,
      [at, input = std::move(input), source](const std::string* store_error) mutable {
        if (store_error) {
          fail(at, make_failure(
                       flux_errc::node_failed, "", "",
                       "run " + at.job->run->run_id() + ": the store failed: " + *store_error));
        } else {
          advance(std::move(at), std::move(input), source);
        }
      },
      /*final=*/false});
}

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
  for (std::size_t b = 0; b < step.children.size(); ++b) {
    advance(Cursor{at.job, &step.children[b], 0, me, static_cast<std::uint32_t>(b)}, input, source);
  }

  auto conclude = [self, at, g, attempt, input](caf::expected<Value> out) {
    g->concluded = true;
    const RunJob& job = *at.job;
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
      [g, conclude](seq_fail_atom, std::uint32_t, caf::error& err) {
        if (g->concluded) return;
        // A cancellation is only reported if the cause comes from elsewhere.
        if (!is_cancelled(err) || --g->pending == 0) conclude(std::move(err));
      },
  };
}

}  // namespace flux::detail
