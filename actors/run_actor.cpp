// The run actor: drives one run through its pipeline, then records the outcome and
// reports it — only after the persistence actor confirms the run's records are stored.

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
  auto report = [self, job] {
    job->services->notify([&](Observer& o) { o.on_run_end(job->info); });
    RunResult r{job->info.id, job->info.status, job->info.output, job->info.error};
    job->completion->complete(std::move(r));
    job->services->runs.done();
    self->quit();
  };
  self->request(job->services->persistence, caf::infinite, sync_atom::value, job->info.id,
                job->lease.token)
      .then([report] { report(); },
            [job, report](caf::error& e) {
              // The store failed: the run cannot be called complete, whatever its steps did.
              job->info.status = RunStatus::failed;
              job->info.output = Value{};
              job->info.error = failure_of(e);
              report();
            });
}

}  // namespace

caf::behavior run_actor(caf::event_based_actor* self, std::shared_ptr<RunJob> job) {
  self->set_default_handler(caf::drop);
  job->services->notify([&](Observer& o) { o.on_run_start(job->info); });
  run_sequence(self, job, job->plan->root, 0, job->info.input, &k_run_input,
               [self, job](caf::expected<Value> out) { finish(self, job, std::move(out)); });
  // Replies to the requests above are handled as responses; the run needs no other messages.
  return {[](go_atom) {}};
}

}  // namespace flux::detail
