// Driving steps: the sequence driver used by run and parallel actors, and the
// parallel actor — the fan-out/fan-in coordinator.

#include <chrono>

#include "internal.hpp"

namespace flux::detail {
namespace {

void run_step(caf::event_based_actor* self, const std::shared_ptr<RunJob>& job,
              const PlanStep& step, Value input, const std::string* source, Done done) {
  auto on_value = [done](Value& v) { done(std::move(v)); };
  auto on_error = [done](caf::error& e) { done(std::move(e)); };
  if (step.type == PipelineDef::Type::node) {
    self->request(step.actor, caf::infinite, exec_atom::value,
                  ExecRequest{job, &step, std::move(input), source, job->attempt_of(step.id)})
        .then(on_value, on_error);
  } else {  // parallel: a coordinator per execution
    auto coordinator = self->spawn(parallel_actor, job, &step, std::move(input), source);
    self->request(coordinator, caf::infinite, go_atom::value).then(on_value, on_error);
  }
}

}  // namespace

void run_sequence(caf::event_based_actor* self, const std::shared_ptr<RunJob>& job,
                  const PlanStep& seq, std::size_t i, Value input, const std::string* source,
                  Done done) {
  // Resume: steps whose output is recorded are not executed again.
  while (i < seq.children.size() && !job->replay.empty()) {
    auto it = job->replay.find(seq.children[i].id);
    if (it == job->replay.end()) break;
    input = it->second;
    source = &seq.children[i].label;
    ++i;
  }
  if (i == seq.children.size()) {
    done(std::move(input));
    return;
  }
  if (job->run->failing) {  // another branch failed: start nothing new
    done(make_failure(flux_errc::cancelled, "", "", "cancelled: another step of the run failed"));
    return;
  }
  const PlanStep& step = seq.children[i];
  run_step(self, job, step, std::move(input), source,
           [self, job, &seq, i, &step, done = std::move(done)](caf::expected<Value> out) mutable {
             if (!out) {
               done(std::move(out));
               return;
             }
             run_sequence(self, job, seq, i + 1, std::move(*out), &step.label, std::move(done));
           });
}

caf::behavior parallel_actor(caf::event_based_actor* self, std::shared_ptr<RunJob> job,
                             const PlanStep* step, Value input, const std::string* source) {
  return {[=](go_atom) {
    auto rp = self->make_response_promise();
    // Fan-in state. The first real (not cancelled) branch failure is answered at once —
    // fail fast — and stops the run from starting further steps; steps already executing
    // finish and are recorded, but nothing waits for them.
    struct Gather {
      Value::List outputs;
      std::size_t pending;
      Timestamp start = wall_now();
      std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    };
    auto g = std::make_shared<Gather>();
    g->outputs.resize(step->children.size());
    g->pending = step->children.size();
    const std::uint32_t attempt = job->attempt_of(step->id);
    NodeEvent event{job->run->run_id(), k_parallel_name, step->id, attempt};
    job->services->notify([&](Observer& o) { o.on_node_start(event); });

    auto conclude = [=](caf::expected<Value> out) mutable {
      HistoryEntry e;
      e.type = HistoryEntry::Type::parallel;
      e.node = k_parallel_name;
      e.step = step->id;
      e.attempt = attempt;
      e.start = g->start;
      e.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now() - g->started);
      e.end = e.start + e.duration;
      e.input = job->services->for_history(input);
      if (out) {
        e.output = job->services->for_history(*out);
      } else {
        e.error = failure_of(out.error()).message;
        job->run->failing = true;
      }
      job->run->append(e);
      NodeEvent ev{job->run->run_id(), k_parallel_name, step->id, attempt};
      job->services->notify([&](Observer& o) {
        if (e.ok()) {
          o.on_node_end(ev, e);
        } else {
          o.on_node_error(ev, e);
        }
      });
      if (out) {
        rp.deliver(std::move(*out));
      } else {
        rp.deliver(std::move(out.error()));
      }
      self->quit();  // pending branch responses are dropped with the actor
    };

    for (std::size_t b = 0; b < step->children.size(); ++b) {
      run_sequence(self, job, step->children[b], 0, input, source,
                   [=](caf::expected<Value> out) mutable {
                     if (!out) {
                       // A cancellation is only reported if the cause comes from elsewhere.
                       if (!is_cancelled(out.error()) || --g->pending == 0) {
                         conclude(std::move(out));
                       }
                       return;
                     }
                     g->outputs[b] = std::move(*out);
                     if (--g->pending == 0) conclude(Value(std::move(g->outputs)));
                   });
    }
    return rp;
  }};
}

}  // namespace flux::detail
