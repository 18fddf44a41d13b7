// Moving a run: starting it, advancing it along its plan (advance, advance_when_stored),
// recording its steps (record_step), failing a sequence (fail) and ending it (end_run).
//
// Starting and ending a run. There is no actor per run: a run moves by continuation
// passing (see Cursor in run_driver.hpp) from node actor to node actor, and when its root
// sequence ends — on whichever thread ran the last step — end_run records the outcome.
// The caller hears of the end from the persistence actor, once the run's records, the
// outcome included, are in the store.
//
// (DESIGN.md lists a "run actor" that drives each run. It did so here at first; spawning
// one per run and routing every root-sequence result through it cost an actor, a message
// and often a thread wake-up per run — see bench/README.md — for no state that the
// cursor and the RunJob do not already carry.)

#include "engine/run_driver.hpp"

#include <chrono>

#include "engine/node_executors.hpp"

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
  if (step.type == PipelineDef::Type::node && job.plan->placement(step).remote) {
    job.services->remote->submit(ExecRequest{std::move(at), std::move(input), source});
  } else if (step.type == PipelineDef::Type::node) {
    NodeExecutors& executors = *job.plan->placement(step).executors;
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

void record_step(const Cursor& at, HistoryEntry e, Value input, caf::expected<Value> outcome,
                 bool slow) {
  const RunJob& job = *at.job;
  // An output too deep to store fails its step here, naming it, rather than the run later
  // when the store refuses the history entry.
  if (outcome) {
    if (auto too_deep = check_output_depth(e.node, e.step, *outcome)) outcome = *too_deep;
  }
  e.input = job.services->for_history(std::move(input));  // the call is done with it
  if (outcome) {
    e.output = job.services->for_history(*outcome);
  } else {
    e.error = failure_of(outcome.error()).message;
    job.run->failing = true;
  }
  const bool ok = e.ok();
  if (job.services->observers.empty()) {
    job.run->append(std::move(e));
  } else {
    const NodeEvent event{job.run->run_id(), e.node, e.step, e.attempt};
    job.run->append(e);
    job.services->notify([&](Observer& o) {
      if (ok) {
        o.on_node_end(event, e);
      } else {
        o.on_node_error(event, e);
      }
    });
  }
  job.run->end_step();
  if (outcome) {
    Cursor next = at;
    ++next.index;
    const std::string* label = &at.step().label;
    advance_when_stored(std::move(next), std::move(*outcome), label,
                        job.services->waits_for_store(slow));
  } else {
    fail(at, std::move(outcome.error()));
  }
}

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
