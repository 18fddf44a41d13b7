// The node actor: executes one node's function for any run and records each execution.
//
// Sync nodes run inside the actor. Blocking nodes, and the wait for an async node's
// future, run on the blocking pool; the result comes back as a done_atom message so
// that the response is delivered from the actor's own context.

#include <chrono>

#include "internal.hpp"

namespace flux::detail {
namespace {

/// One execution in progress: what is needed to call, time and record it.
struct Execution {
  explicit Execution(ExecRequest r)
      : req(std::move(r)),
        ctx(req.job->run, req.step->label, req.step->id, req.attempt),
        start(wall_now()),
        started(std::chrono::steady_clock::now()) {}

  NodeEvent event() const {
    return NodeEvent{req.job->run->run_id(), req.step->label, req.step->id, req.attempt};
  }

  ExecRequest req;
  Context ctx;
  Timestamp start;
  std::chrono::steady_clock::time_point started;
};

std::string source_text(const std::string* source) {
  return source == &k_run_input ? "the run input" : "the output of '" + *source + "'";
}

/// Turns the exception in flight into the failure it stands for.
caf::error current_failure(const Execution& ex) {
  const std::string& node = ex.req.step->label;
  const std::string& step = ex.req.step->id;
  std::string where = "node '" + node + "' (step " + step + ")";
  try {
    throw;
  } catch (const InputError& e) {
    return make_failure(flux_errc::type_mismatch, node, step,
                        "type mismatch: " + where + " cannot take " + source_text(ex.req.source) +
                            ": " + e.what());
  } catch (const std::exception& e) {
    return make_failure(flux_errc::node_failed, node, step, where + " failed: " + e.what());
  } catch (...) {
    return make_failure(flux_errc::node_failed, node, step,
                        where + " failed: unknown exception (not derived from std::exception)");
  }
}

/// Appends the history entry for `ex` and notifies observers.
void record(const Execution& ex, const caf::expected<Value>& outcome) {
  const RunJob& job = *ex.req.job;
  HistoryEntry e;
  e.type = HistoryEntry::Type::node;
  e.node = ex.req.step->label;
  e.step = ex.req.step->id;
  e.attempt = ex.req.attempt;
  e.start = ex.start;
  e.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now() - ex.started);
  e.end = e.start + e.duration;
  e.input = job.services->for_history(ex.req.input);
  if (outcome) {
    e.output = job.services->for_history(*outcome);
  } else {
    e.error = failure_of(outcome.error()).message;
    job.run->failing = true;
  }
  job.run->append(e);
  job.run->end_step();
  job.services->notify([&](Observer& o) {
    if (e.ok()) {
      o.on_node_end(ex.event(), e);
    } else {
      o.on_node_error(ex.event(), e);
    }
  });
}

caf::expected<Value> call_sync(const NodeDef& def, Execution& ex) {
  try {
    return def.call(ex.req.input, ex.ctx);
  } catch (...) {
    return current_failure(ex);
  }
}

}  // namespace

caf::behavior node_actor(caf::stateful_actor<NodeActorState>* self, const NodeDef* def) {
  self->set_default_handler(caf::drop);
  return {
      [self, def](exec_atom, ExecRequest& req) -> caf::result<Value> {
        auto ex = std::make_shared<Execution>(std::move(req));
        ex->req.job->run->begin_step();  // the run stays owned until this step is recorded
        const Services& services = *ex->req.job->services;
        services.notify([&](Observer& o) { o.on_node_start(ex->event()); });

        if (def->mode == NodeMode::sync) {
          auto out = call_sync(*def, *ex);
          record(*ex, out);
          if (out) return std::move(*out);
          return std::move(out.error());
        }
        services.executions.add();  // may outlive its run if the run fails fast

        // Off the scheduler: the work runs on the pool and its result comes back as a
        // done_atom message, so that the promise is delivered from this actor's context.
        std::function<Value()> finish;
        if (def->mode == NodeMode::async) {
          try {
            finish = def->call_async(ex->req.input, ex->ctx);  // decodes input, starts the work
          } catch (...) {
            caf::error err = current_failure(*ex);
            record(*ex, err);
            services.executions.done();
            return err;
          }
        }
        auto token = self->state.next_token++;
        auto rp = self->make_response_promise();
        self->state.pending.emplace(token, rp);
        auto me = caf::actor_cast<caf::actor>(self);
        services.pool.submit([me, token, ex, def, finish = std::move(finish)]() mutable {
          caf::expected<Value> out = Value{};
          if (finish) {
            try {
              out = finish();  // waits for the future
            } catch (...) {
              out = current_failure(*ex);
            }
          } else {
            out = call_sync(*def, *ex);
          }
          record(*ex, out);
          if (out) {
            caf::anon_send(me, done_atom::value, token, std::move(*out));
          } else {
            caf::anon_send(me, done_atom::value, token, out.error());
          }
          ex->req.job->services->executions.done();
        });
        return rp;
      },
      [self](done_atom, std::uint64_t token, Value& out) {
        auto it = self->state.pending.find(token);
        if (it == self->state.pending.end()) return;
        it->second.deliver(std::move(out));
        self->state.pending.erase(it);
      },
      [self](done_atom, std::uint64_t token, caf::error& err) {
        auto it = self->state.pending.find(token);
        if (it == self->state.pending.end()) return;
        it->second.deliver(std::move(err));
        self->state.pending.erase(it);
      },
  };
}

}  // namespace flux::detail
