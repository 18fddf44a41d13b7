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
                  ExecRequest{job, &step, std::move(input), source})
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
    // Fan-in state: every branch reports once; the parallel answers when all have, so
    // that nothing of the run is still executing when its failure is reported.
    struct Gather {
      Value::List outputs;
      std::size_t pending;
      caf::error failure;  // the first real (not cancelled) branch failure
      Timestamp start = wall_now();
      std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    };
    auto g = std::make_shared<Gather>();
    g->outputs.resize(step->children.size());
    g->pending = step->children.size();
    NodeEvent event{job->run->run_id(), step->label, step->id, 1};
    job->services->notify([&](Observer& o) { o.on_node_start(event); });

    for (std::size_t b = 0; b < step->children.size(); ++b) {
      run_sequence(self, job, step->children[b], 0, input, source,
                   [=](caf::expected<Value> out) mutable {
                     if (out) {
                       g->outputs[b] = std::move(*out);
                     } else if (!g->failure ||
                                (is_cancelled(g->failure) && !is_cancelled(out.error()))) {
                       g->failure = out.error();  // report the cause, not a cancellation
                       job->run->failing = true;
                     }
                     if (--g->pending > 0) return;
                     HistoryEntry e;
                     e.type = HistoryEntry::Type::parallel;
                     e.node = "parallel";
                     e.step = step->id;
                     e.start = g->start;
                     e.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::steady_clock::now() - g->started);
                     e.end = e.start + e.duration;
                     e.input = input;
                     NodeEvent ev{job->run->run_id(), step->label, step->id, 1};
                     if (g->failure) {
                       e.error = failure_of(g->failure).message;
                       job->run->append(e);
                       job->services->notify([&](Observer& o) { o.on_node_error(ev, e); });
                       rp.deliver(g->failure);
                     } else {
                       e.output = Value(std::move(g->outputs));
                       job->run->append(e);
                       job->services->notify([&](Observer& o) { o.on_node_end(ev, e); });
                       rp.deliver(e.output);
                     }
                     self->quit();
                   });
    }
    return rp;
  }};
}

}  // namespace flux::detail
