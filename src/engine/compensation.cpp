// Compensation (a saga): undoing the completed steps of a run that stopped (README,
// "Compensation").
//
// When a run fails, or is cancelled with CancelOptions::compensate, end_run hands it here
// instead of ending it. Its history says which steps completed and in which order; those whose
// node has a compensation (Node::compensate) are undone newest first, one at a time — so the
// steps of each parallel branch are undone in reverse within their branch, and a step is
// undone before whatever it was given by an earlier one. One at a time also means that the
// history, read back after a crash, says exactly how far the undoing went.
//
// Durability. The `compensating` entry (why the run stopped) is stored before the first
// compensation runs: from then on, a resume sees it and goes on compensating, never forward.
// Each compensation attempt is a `compensate` history entry, stored before the next one
// starts; a resume skips the steps whose compensation is recorded done and numbers the
// attempts of the others after those recorded. A compensation in progress at a crash is run
// again (at least once, as a step in flight at a crash is).
//
// Compensations run on the blocking-work pool (they are typically calls to other systems);
// a retry's backoff waits on a timer, holding no thread. They run on the run's owner, also
// for nodes whose steps executed on cluster workers (the remote step protocol carries steps,
// not compensations).

#include <chrono>
#include <map>
#include <set>
#include <unordered_map>

#include "engine/run_driver.hpp"

namespace flux::detail {
namespace {

/// One step to undo.
struct Undo {
  std::string step;
  const PlanStep* plan_step;
  Value output, input;  // as the step's history entry recorded them
  std::uint32_t attempt = 1;  // the next attempt to make
};

/// The compensation of one run in progress.
struct Saga {
  std::shared_ptr<RunJob> job;
  RunFailure why;
  RunStatus cause = RunStatus::failed;
  std::vector<Undo> undo;  // newest completed step first
  std::size_t next = 0;    // the index of the step being undone
};

void index_steps(const PlanStep& s, std::unordered_map<std::string, const PlanStep*>& out) {
  if (s.type == PipelineDef::Type::node) out.emplace(s.id, &s);
  for (const PlanStep& c : s.children) index_steps(c, out);
}

/// The steps of `job` to undo, newest first: completed node steps whose node has a
/// compensation, less those whose compensation is recorded done.
std::vector<Undo> steps_to_undo(const RunJob& job) {
  std::unordered_map<std::string, const PlanStep*> steps;
  index_steps(job.plan->root, steps);
  const std::vector<HistoryEntry> history = job.run->history();
  std::set<std::string> undone;
  std::map<std::string, std::uint32_t> attempts;
  for (const HistoryEntry& e : history) {
    if (e.type != HistoryEntry::Type::compensate) continue;
    attempts[e.step] = std::max(attempts[e.step], e.attempt);
    if (e.ok()) undone.insert(e.step);
  }
  std::vector<Undo> out;
  std::set<std::string> seen;
  for (auto it = history.rbegin(); it != history.rend(); ++it) {
    const HistoryEntry& e = *it;
    if (e.type != HistoryEntry::Type::node || !e.ok() || undone.count(e.step)) continue;
    auto found = steps.find(e.step);
    if (found == steps.end() || !found->second->node->compensation) continue;
    if (!seen.insert(e.step).second) continue;  // recorded twice (at least once): undone once
    const auto a = attempts.find(e.step);
    out.push_back(Undo{e.step, found->second, e.output, e.input,
                       a == attempts.end() ? 1 : a->second + 1});
  }
  return out;
}

void undo_next(const std::shared_ptr<Saga>& saga);

/// Continues `saga` once its records so far are stored; a refused record ends the run failed,
/// since the store no longer says how far the undoing went.
void when_stored(const std::shared_ptr<Saga>& saga, std::function<void()> then) {
  const RunJob& job = *saga->job;
  job.services->journal->complete(Completion{
      job.run->run_id(), job.lease.token,
      [saga, then = std::move(then)](const std::string* store_error) {
        if (!store_error) {
          then();
          return;
        }
        const std::string& id = saga->job->run->run_id();
        conclude_run(saga->job, RunStatus::failed, Value{},
                     RunFailure{"", "", "run " + id + ": the store failed while undoing its steps: " +
                                            *store_error + "; the run had stopped: " +
                                            saga->why.message});
      },
      /*final=*/false});
}

void finish(const std::shared_ptr<Saga>& saga, std::optional<RunFailure> failed) {
  if (failed) {
    conclude_run(saga->job, RunStatus::compensation_failed, Value{}, std::move(failed));
  } else {
    conclude_run(saga->job, RunStatus::compensated, Value{}, saga->why);
  }
}

/// Makes one attempt of the current step's compensation, on the blocking pool.
void attempt(const std::shared_ptr<Saga>& saga) {
  const Services& services = *saga->job->services;
  services.executions.add();
  services.pool.submit([saga] {
    RunJob& job = *saga->job;
    const Services& s = *job.services;
    Undo& u = saga->undo[saga->next];
    const NodeDef& node = *u.plan_step->node;
    const CompensationDef& comp = *node.compensation;
    HistoryEntry e;
    e.type = HistoryEntry::Type::compensate;
    e.node = u.plan_step->label;
    e.step = u.step;
    e.attempt = u.attempt;
    e.start = wall_now();
    const auto started = std::chrono::steady_clock::now();
    const std::string where = "compensation of node '" + e.node + "' (step " + e.step + ")";
    try {
      Context ctx(job.run, u.plan_step->label, u.plan_step->id, u.attempt);
      ExecutingNode executing(ctx);
      e.output = s.for_history(comp.call(u.output, u.input, ctx));
    } catch (const std::exception& ex) {
      e.error = where + " failed: " + ex.what();
    } catch (...) {
      e.error = where + " failed: unknown exception";
    }
    e.duration =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                             started);
    e.end = e.start + e.duration;
    e.input = s.for_history(u.output);
    const bool ok = e.ok();
    std::optional<std::chrono::nanoseconds> retry_in;
    std::optional<RunFailure> failed;
    if (!ok) {
      const caf::error error = make_failure(flux_errc::node_failed, e.node, e.step, *e.error);
      if (retry_allowed(comp.retry, e, error)) {
        retry_in = backoff_of(comp.retry, e.attempt);
      } else {
        std::string message = *e.error;
        if (e.attempt > 1) {
          message = where + " failed after " + std::to_string(e.attempt) +
                    " attempts: " + message.substr(where.size() + 9);
        }
        failed = RunFailure{e.node, e.step, message + "; the run had stopped: " + saga->why.message};
      }
    }
    job.run->append(std::move(e));
    if (ok) {
      ++saga->next;
      when_stored(saga, [saga] { undo_next(saga); });
    } else if (retry_in) {
      ++u.attempt;
      when_stored(saga, [saga, wait = *retry_in] {
        saga->job->services->timers->after(wait, [saga] { attempt(saga); });
      });
    } else {
      when_stored(saga, [saga, failed] { finish(saga, failed); });
    }
    s.executions.done();
  });
}

void undo_next(const std::shared_ptr<Saga>& saga) {
  if (saga->next == saga->undo.size()) {
    finish(saga, std::nullopt);
    return;
  }
  if (saga->job->run->lease_lost()) {  // another owner runs it now: leave the rest to it
    conclude_run(saga->job, RunStatus::failed, Value{},
                 RunFailure{"", "", saga->job->run->stop_reason()});
    return;
  }
  attempt(saga);
}

std::shared_ptr<Saga> make_saga(const std::shared_ptr<RunJob>& job, RunFailure why,
                                RunStatus cause) {
  auto saga = std::make_shared<Saga>();
  saga->job = job;
  saga->why = std::move(why);
  saga->cause = cause;
  saga->undo = steps_to_undo(*job);
  return saga;
}

}  // namespace

bool begin_compensation(const std::shared_ptr<RunJob>& job, RunFailure why, RunStatus cause) {
  auto saga = make_saga(job, std::move(why), cause);
  if (saga->undo.empty()) return false;
  job->run->begin_compensation();
  HistoryEntry mark;
  mark.type = HistoryEntry::Type::compensating;
  mark.node = "compensation";
  mark.start = mark.end = wall_now();
  mark.input = Value::Map{{"status", to_string(cause)},
                          {"node", saga->why.node},
                          {"step", saga->why.step},
                          {"message", saga->why.message}};
  mark.output = Value::Map{{"steps", static_cast<std::int64_t>(saga->undo.size())}};
  job->run->append(std::move(mark));
  // Stored before anything is undone: a resume must know not to go forward.
  when_stored(saga, [saga] { undo_next(saga); });
  return true;
}

void resume_compensation(const std::shared_ptr<RunJob>& job) {
  job->ended = true;       // it is no longer cancelled: it is stopping already
  job->run->mark_ended();  // (see end_run)
  const RunJob::Stopped stopped = *job->compensating;
  bool marked = false;
  for (const HistoryEntry& e : job->run->history()) {
    marked = marked || e.type == HistoryEntry::Type::compensating;
  }
  if (!marked) {  // an orphan cancelled with compensation: it begins here
    if (!begin_compensation(job, stopped.why, stopped.cause)) {
      conclude_run(job, stopped.cause, Value{}, stopped.why);
    }
    return;
  }
  job->run->begin_compensation();
  auto saga = make_saga(job, stopped.why, stopped.cause);
  undo_next(saga);
}

}  // namespace flux::detail
