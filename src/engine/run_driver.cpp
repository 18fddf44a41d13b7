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
#include <random>

#include "engine/node_executors.hpp"
#include "engine/parallel.hpp"

namespace flux::detail {
namespace {

/// The failure as the run reports it once no attempt is left: it says how many were made.
caf::error with_attempts(caf::error error, std::uint32_t attempts) {
  RunFailure f = failure_of(error);
  const std::string where = "node '" + f.node + "' (step " + f.step + ")";
  const std::string count = std::to_string(attempts) + " attempts";
  if (f.message.rfind(where + " failed: ", 0) == 0) {
    f.message = where + " failed after " + count + ": " + f.message.substr(where.size() + 9);
  } else {
    f.message += " (" + count + ")";
  }
  return make_failure(static_cast<flux_errc>(error.code()), f.node, f.step, f.message);
}

}  // namespace

bool retry_allowed(const RetryPolicy& policy, const HistoryEntry& e, const caf::error& error) {
  if (e.attempt >= policy.attempts || is_cancelled(error)) return false;
  AttemptFailure f;
  f.node = e.node;
  f.step = e.step;
  f.attempt = e.attempt;
  f.message = *e.error;
  f.timed_out = error.code() == static_cast<std::uint8_t>(flux_errc::timed_out);
  f.type_mismatch = error.code() == static_cast<std::uint8_t>(flux_errc::type_mismatch);
  if (!policy.retry_on) return !f.type_mismatch;
  try {
    return policy.retry_on(f);
  } catch (...) {
    return false;  // documented: an exception from the predicate means "no"
  }
}

std::chrono::nanoseconds backoff_of(const RetryPolicy& policy, std::uint32_t failed_attempt) {
  std::chrono::nanoseconds wait = policy.backoff.after(failed_attempt);
  if (policy.jitter && wait.count() > 0) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_real_distribution<double> share(0.5, 1.0);
    wait = std::chrono::nanoseconds(static_cast<std::int64_t>(wait.count() * share(rng)));
  }
  return wait;
}

namespace {

/// Executes `req` again once `wait` has passed, or at once if the run is cancelled meanwhile
/// (submit_step then fails it). Holds no thread while it waits.
void retry_after(std::chrono::nanoseconds wait, ExecRequest req) {
  struct Pending {
    explicit Pending(ExecRequest r) : req(std::move(r)) {}
    ExecRequest req;
    std::atomic<bool> fired{false};
    std::atomic<std::uint64_t> timer{0}, hook{0};
  };
  auto p = std::make_shared<Pending>(std::move(req));
  RunState& run = *p->req.at.job->run;
  Timers& timers = *p->req.at.job->services->timers;
  auto go = [p] {
    if (p->fired.exchange(true)) return;
    const RunJob& job = *p->req.at.job;
    job.services->timers->cancel(p->timer);
    job.run->off_cancel(p->hook);
    submit_step(std::move(p->req));
  };
  p->hook = run.on_cancel(go);  // first: a run cancelled already goes on at once
  if (p->fired) return;
  p->timer = timers.after(wait, go);
}

/// The label of what produced the input of the step at `at`, when the caller did not say.
const std::string* source_of(const Cursor& at) {
  return at.index > 0 ? &at.seq->children[at.index - 1].label : &k_run_input;
}

}  // namespace

void submit_step(ExecRequest req) {
  const RunJob& job = *req.at.job;
  if (job.run->failing) {  // cancelled, or another branch failed: start nothing new
    fail(req.at, make_failure(flux_errc::cancelled, "", "", job.run->stop_reason()));
    return;
  }
  const NodePlacement& placement = job.plan->placement(req.at.step());
  if (placement.remote) {
    job.services->remote->submit(std::move(req));
  } else {
    placement.executors->submit(std::move(req));
  }
}

bool cancel_run(const RunJob& job, const std::string& by, const std::string& reason,
                bool compensate) {
  if (job.ended) return false;
  return job.run->cancel(by, reason, compensate);
}

void fail(const Cursor& at, caf::error error) {
  if (!at.join) {
    end_run(at.job, std::move(error));
    return;
  }
  at.join->branch_failed(at.tag, std::move(error));
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
    if (!at.join) {
      end_run(at.job, std::move(input));
    } else {
      at.join->branch_done(at.tag, std::move(input));
    }
    return;
  }
  if (job.run->failing) {  // cancelled, or another branch failed: start nothing new
    fail(at, make_failure(flux_errc::cancelled, "", "", job.run->stop_reason()));
    return;
  }
  const PlanStep& step = at.step();
  if (step.type == PipelineDef::Type::node && job.plan->placement(step).remote) {
    job.services->remote->submit(ExecRequest{std::move(at), std::move(input), source});
  } else if (step.type == PipelineDef::Type::node) {
    NodeExecutors& executors = *job.plan->placement(step).executors;
    executors.submit(ExecRequest{std::move(at), std::move(input), source});
  } else {
    ParallelJoin::start(std::move(at), std::move(input), source);
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
                 bool slow, const std::string* source) {
  const RunJob& job = *at.job;
  // A step may notice the run's deadline (ctx.cancelled()) before the deadline's timer does:
  // the run is cancelled here then, so that it never completes past its deadline.
  if (job.deadline && !job.run->cancelled() && wall_now() >= *job.deadline) {
    cancel_run(job, "deadline", "deadline exceeded");
  }
  const RetryPolicy* policy = job.services->retry_policy(at.step().node);
  std::optional<ExecRequest> again;  // the next attempt, if the policy gives one
  // An output too deep to store fails its step here, naming it, rather than the run later
  // when the store refuses the history entry.
  if (outcome) {
    if (auto too_deep = check_output_depth(e.node, e.step, *outcome)) outcome = *too_deep;
  }
  if (outcome) {
    e.input = job.services->for_history(std::move(input));  // the call is done with it
    e.output = job.services->for_history(*outcome);
  } else {
    e.error = failure_of(outcome.error()).message;
    if (policy && !job.run->failing && retry_allowed(*policy, e, outcome.error())) {
      e.input = job.services->for_history(input);
      again.emplace(
          ExecRequest{at, std::move(input), source ? source : source_of(at), e.attempt + 1});
    } else {
      e.input = job.services->for_history(std::move(input));
      if (policy && e.attempt > 1) {
        outcome = with_attempts(std::move(outcome.error()), e.attempt);
      }
      job.run->failing = true;
    }
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
  if (again) {
    retry_after(backoff_of(*policy, e.attempt), std::move(*again));
  } else if (outcome) {
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
  if (job->compensating) {
    resume_compensation(job);
    return;
  }
  Value input = job->info.input;
  advance(Cursor{std::move(job), &root, 0, nullptr, 0}, std::move(input), &k_run_input);
}

void end_run(const std::shared_ptr<RunJob>& job, caf::expected<Value> out) {
  if (job->ended.exchange(true)) return;  // the root sequence ends once; be sure of it
  if (std::uint64_t timer = job->deadline_timer.exchange(0)) job->services->timers->cancel(timer);
  job->run->mark_ended();  // no cancel from now on; executions still going have nothing to cut
  // A run cancelled while its last step was finishing is cancelled: the caller of cancel() was
  // told so.
  RunStatus status;
  Value output;
  std::optional<RunFailure> error;
  if (job->run->shutting_down()) {
    // Stopped by the Runtime's shutdown (Config::shutdown_grace): not ended, not undone.
    status = RunStatus::running;
    error = RunFailure{"", "", job->run->stop_reason()};
  } else if (job->run->cancellation()) {
    status = RunStatus::cancelled;
    error = RunFailure{"", "", job->run->stop_reason()};
  } else if (out) {
    status = RunStatus::completed;
    output = std::move(*out);
  } else {
    status = RunStatus::failed;
    error = failure_of(out.error());
  }
  // A failed run, or one cancelled with CancelOptions::compensate, undoes its completed
  // steps first -- unless another owner has it now.
  const bool compensate = status == RunStatus::failed ||
                          (status == RunStatus::cancelled && job->run->compensate_requested());
  if (compensate && !job->run->lease_lost() && job->plan->compensates) {
    // Steps of other parallel branches may still be finishing (fail-fast): what they complete
    // is undone too, so the undoing starts once they are done.
    job->run->when_steps_done([job, status, why = *error] {
      if (!begin_compensation(job, why, status)) conclude_run(job, status, Value{}, why);
    });
    return;
  }
  conclude_run(job, status, std::move(output), std::move(error));
}

void conclude_run(const std::shared_ptr<RunJob>& job, RunStatus status, Value output,
                  std::optional<RunFailure> error) {
  RunInfo& info = job->info;
  info.updated = wall_now();
  info.finished = info.updated;
  info.status = status;
  info.output = std::move(output);
  info.error = std::move(error);
  info.steps_done = job->run->completed_steps();  // once, here: never written per step
  if (job->run->shutting_down() && status == RunStatus::running) {
    // Left to resume (Config::shutdown_grace): the store keeps the run `running`, an orphan
    // once its lease is given up; the caller is told why it did not end.
    info.finished.reset();
  } else {
    job->run->journal_run(info);
  }
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
          Write correction{Write::FailRun{std::make_shared<const RunInfo>(job->info)}};
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
