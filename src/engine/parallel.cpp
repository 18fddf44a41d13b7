// A parallel execution: fan-out from the thread that reached it, fan-in by the branches'
// own reports (see parallel.hpp).

#include "engine/parallel.hpp"

#include <chrono>

namespace flux::detail {

ParallelJoin::ParallelJoin(Cursor at, Value input, std::size_t branches)
    : at_(std::move(at)),
      input_(std::move(input)),
      attempt_(at_.job->attempt_of(at_.step().id)),
      start_(wall_now()),
      started_(std::chrono::steady_clock::now()),
      outputs_(branches),
      pending_(branches) {}

void ParallelJoin::start(Cursor at, Value input, const std::string* source) {
  const PlanStep& step = at.step();
  const std::size_t branches = step.children.size();
  auto join = std::make_shared<ParallelJoin>(at, input, branches);
  const RunJob& job = *at.job;
  job.services->notify([&](Observer& o) {
    o.on_node_start(NodeEvent{job.run->run_id(), k_parallel_name, step.id, join->attempt_});
  });
  // A cancelled run ends the parallel now: branches still executing a sync step would keep
  // it (and so the run) waiting for them otherwise. Weak: the run holds its hooks, and the
  // join holds the run.
  const std::uint64_t hook = job.run->on_cancel([weak = std::weak_ptr<ParallelJoin>(join)] {
    if (auto j = weak.lock()) {
      const PlanStep& s = j->at_.step();
      j->conclude(make_failure(flux_errc::cancelled, k_parallel_name, s.id,
                               j->at_.job->run->stop_reason()));
    }
  });
  join->cancel_hook_.store(hook);
  if (join->concluded_.load()) {  // cancelled already (the hook ran at once, or just now)
    job.run->off_cancel(join->cancel_hook_.exchange(0));
    return;
  }
  for (std::size_t b = 0; b < branches; ++b) {
    Cursor branch{at.job, &step.children[b], 0, join, static_cast<std::uint32_t>(b)};
    if (b + 1 < branches) {
      advance(std::move(branch), input, source);
    } else {
      advance(std::move(branch), std::move(input), source);  // the last branch takes it
    }
  }
}

void ParallelJoin::branch_done(std::uint32_t branch, Value output) {
  if (concluded_.load(std::memory_order_relaxed)) return;  // a failure came first
  outputs_[branch] = std::move(output);
  if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    conclude(Value(std::move(outputs_)));
  }
}

void ParallelJoin::branch_failed(std::uint32_t, caf::error error) {
  // The first real (not cancelled) branch failure ends the parallel at once — fail fast —
  // and stops the run from starting further steps; steps already executing finish and are
  // recorded, but nothing waits for them. A cancellation is only reported if the cause comes
  // from elsewhere (every branch was cancelled).
  if (!is_cancelled(error) || pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    conclude(std::move(error));
  }
}

void ParallelJoin::conclude(caf::expected<Value> out) {
  if (concluded_.exchange(true, std::memory_order_acq_rel)) return;
  const RunJob& job = *at_.job;
  job.run->off_cancel(cancel_hook_.exchange(0));
  const PlanStep& step = at_.step();
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
  e.attempt = attempt_;
  e.start = start_;
  e.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now() - started_);
  e.end = e.start + e.duration;
  e.input = job.services->for_history(std::move(input_));
  if (out) {
    e.output = job.services->for_history(*out);
  } else {
    e.error = failure_of(out.error()).message;
    job.run->failing = true;
  }
  const bool ok = e.ok();
  if (job.services->observers.empty()) {
    job.run->append(std::move(e));
  } else {
    job.run->append(e);
    const NodeEvent ev{job.run->run_id(), k_parallel_name, step.id, attempt_};
    job.services->notify([&](Observer& o) {
      if (ok) {
        o.on_node_end(ev, e);
      } else {
        o.on_node_error(ev, e);
      }
    });
  }
  if (out) {
    Cursor next = at_;
    ++next.index;
    advance_when_stored(std::move(next), std::move(*out), &step.label,
                        job.services->waits_for_store(false));
  } else {
    fail(at_, std::move(out.error()));
  }
}

}  // namespace flux::detail
