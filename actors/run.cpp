// Starting and ending a run. There is no actor per run: a run moves by continuation
// passing (see Cursor in internal.hpp) from node actor to node actor, and when its root
// sequence ends — on whichever thread ran the last step — end_run records the outcome.
// The caller hears of the end from the persistence actor, once the run's records, the
// outcome included, are in the store.
//
// (DESIGN.md lists a "run actor" that drives each run. It did so here at first; spawning
// one per run and routing every root-sequence result through it cost an actor, a message
// and often a thread wake-up per run — see bench/README.md — for no state that the
// cursor and the RunJob do not already carry.)

#include "internal.hpp"

namespace flux::detail {

void start_run(std::shared_ptr<RunJob> job) {
  job->services->notify([&](Observer& o) { o.on_run_start(job->info); });
  const PlanStep& root = job->plan->root;
  Value input = job->info.input;
  advance(Cursor{std::move(job), &root, 0, nullptr, 0}, std::move(input), &k_run_input);
}

void end_run(const std::shared_ptr<RunJob>& job, caf::expected<Value> out) {
  if (job->ended.exchange(true)) return;  // the root sequence ends once; be sure of it
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
          // Some of its writes may still land (a batch whose outcome is unknown) or the
          // store may hold it as running: make the store say what the caller is told.
          Write correction{Write::FailRun{job->info}};
          correction.fence = job->lease.token;
          job->services->journal->write(std::move(correction));
        }
        job->services->notify([&](Observer& o) { o.on_run_end(job->info); });
        job->completion->complete(
            RunResult{job->info.id, job->info.status, job->info.output, job->info.error});
        job->services->runs.done();
      }});
}

}  // namespace flux::detail
