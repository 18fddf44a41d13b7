// The run actor: starts one run on its plan and, when the plan's root sequence ends,
// records the outcome. The caller hears of the end from the persistence actor, once the
// run's records — the outcome included — are in the store.

#include "internal.hpp"

namespace flux::detail {
namespace {

void finish(caf::event_based_actor* self, const std::shared_ptr<RunJob>& job,
            caf::expected<Value> out) {
  RunInfo& info = job->info;
  info.updated = wall_now();
  info.finished = info.updated;
  if (out) {
    info.status = RunStatus::completed;
    info.output = std::move(*out);
  } else {
    info.status = RunStatus::failed;
    info.error = failure_of(out.error());
  }
  job->run->journal_run(info);
  job->run->end_run();  // gives the lease up now, or when the last step still executing ends
  job->services->journal->complete(Completion{
      info.id, job->lease.token, [job](const std::string* store_error) {
        // Runs on the persistence actor's thread, after the batch holding the run's last
        // writes was applied (or refused).
        if (store_error) {
          // The store failed: the run cannot be called complete, whatever its steps did.
          job->info.status = RunStatus::failed;
          job->info.output = Value{};
          job->info.error =
              RunFailure{"", "", "run " + job->info.id + ": the store failed: " + *store_error};
        }
        job->services->notify([&](Observer& o) { o.on_run_end(job->info); });
        job->completion->complete(
            RunResult{job->info.id, job->info.status, job->info.output, job->info.error});
        job->services->runs.done();
      }});
  self->quit();
}

}  // namespace

caf::behavior run_actor(caf::event_based_actor* self, std::shared_ptr<RunJob> job) {
  self->set_default_handler(caf::drop);
  job->services->notify([&](Observer& o) { o.on_run_start(job->info); });
  advance(Cursor{job, &job->plan->root, 0, caf::actor_cast<caf::actor>(self), 0}, job->info.input,
          &k_run_input);
  return {
      [self, job](seq_done_atom, std::uint32_t, Value& out) { finish(self, job, std::move(out)); },
      [self, job](seq_fail_atom, std::uint32_t, caf::error& err) {
        finish(self, job, std::move(err));
      },
  };
}

}  // namespace flux::detail
