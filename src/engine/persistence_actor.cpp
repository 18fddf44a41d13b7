// The persistence actor: the only writer to the store in a process.
//
// It runs detached (its own thread), so a slow or blocking store never stalls the
// scheduler. On each drain_atom it takes everything the journal has queued — writes of
// any number of runs, in the order they were made, hence in order per run — applies them
// in one `Storage::apply` call, and then completes the runs that ended in that batch:
// a run is reported ended only once all its records are in the store.
//
// One run's refused write fails that run only (Storage::apply reports refusals per run).
// A run whose caller is told it failed because of the store gets a Write::FailRun, so
// that the store ends up saying the same; it is retried until the store takes it.

#include <cstdio>

#include "engine/run_driver.hpp"
#include "metrics/metrics.hpp"

namespace flux::detail {
namespace {

using namespace std::chrono_literals;

/// How often FailRun corrections the store did not take are tried again.
constexpr auto k_correction_retry = 500ms;

std::string owner_key(const std::string& run_id, std::uint64_t fence) {
  return run_id + "/" + std::to_string(fence);
}

struct PersistenceState {
  // Refusals are remembered until the run they belong to completes: a straggling write
  // of a failed run may be refused in one batch and the run complete in a later one.
  std::unordered_map<std::string, std::string> refused;
  // FailRun writes not yet taken by the store (unreachable, ...), in order.
  std::vector<Write> corrections;
};

/// Why the store refused a run's writes.
struct Refused {
  std::string why;
  Errc code;  // invalid_argument: the record itself is unfit (too large, not encodable)
};

/// Applies `writes`; returns the refusals, by run (owner key).
std::unordered_map<std::string, Refused> apply_writes(Storage& storage,
                                                      const std::vector<Write>& writes) {
  std::unordered_map<std::string, Refused> failed;
  if (writes.empty()) return failed;
  const auto started = std::chrono::steady_clock::now();
  struct Timed {  // whichever way apply() ends
    std::chrono::steady_clock::time_point started;
    std::size_t n;
    ~Timed() { metrics::store_write(std::chrono::steady_clock::now() - started, n); }
  } timed{started, writes.size()};
  try {
    for (const RunRefusal& r : storage.apply(writes)) {
      failed.emplace(owner_key(r.run_id, r.fence), Refused{r.error.what(), r.error.code()});
    }
  } catch (const std::exception& e) {
    // The store as a whole failed: none of the batch is known to be stored.
    std::fprintf(stderr, "flux: persistence: %zu writes failed: %s\n", writes.size(), e.what());
    for (const Write& w : writes) {
      failed.emplace(owner_key(w.run_id(), w.fence), Refused{e.what(), Errc::storage});
    }
  }
  return failed;
}

/// A FailRun the store refused as such (not for being unreachable): its record cannot be
/// written with the run's input (too large, impossible to encode). Drop the input, and
/// mark the record so that resume refuses it rather than running on a null input.
void strip_values(Write& correction) {
  auto& shared = std::get<Write::FailRun>(correction.op).run;
  auto run = std::make_shared<RunInfo>(*shared);
  run->input = Value{};
  run->output = Value{};
  run->history_values = HistoryValues::none;
  shared = std::move(run);
}

}  // namespace

caf::behavior persistence_actor(caf::event_based_actor* self, std::shared_ptr<Storage> storage,
                                std::shared_ptr<ActorJournal> journal) {
  self->set_default_handler(caf::drop);
  auto state = std::make_shared<PersistenceState>();
  return {
      [self, storage, journal, state](drain_atom) {
        ActorJournal::mark_persistence_thread();  // before any completion runs user code
        ActorJournal::Batch batch = journal->take();
        // Corrections (FailRun) go after the batch's other writes, so that they override
        // whatever the failed runs' writes in it did; the ones being retried first.
        std::vector<Write> writes, corrections = std::move(state->corrections);
        state->corrections.clear();
        writes.reserve(batch.writes.size() + corrections.size());
        for (Write& w : batch.writes) {
          (std::holds_alternative<Write::FailRun>(w.op) ? corrections : writes)
              .push_back(std::move(w));
        }
        const std::size_t first_correction = writes.size();
        for (Write& w : corrections) writes.push_back(std::move(w));
        auto failed = apply_writes(*storage, writes);
        for (std::size_t i = first_correction; i < writes.size() && !failed.empty(); ++i) {
          auto it = failed.find(owner_key(writes[i].run_id(), writes[i].fence));
          if (it == failed.end()) continue;
          if (it->second.code == Errc::invalid_argument) strip_values(writes[i]);
          failed.erase(it);
          state->corrections.push_back(std::move(writes[i]));
        }
        for (auto& [key, refused] : failed) state->refused.emplace(key, std::move(refused.why));
        for (Completion& c : batch.completions) {
          auto it = state->refused.empty() ? state->refused.end()
                                           : state->refused.find(owner_key(c.run_id, c.fence));
          if (it == state->refused.end()) {
            c.done(nullptr);
          } else if (!c.final) {
            c.done(&it->second);
          } else {
            std::string why = std::move(it->second);
            state->refused.erase(it);
            c.done(&why);
          }
        }
        if (!state->corrections.empty()) {
          self->delayed_send(self, k_correction_retry, drain_atom::value);
        }
        // What the completions wrote (a correction, a parent's step continued by its child's
        // end, runs an observer started) goes out now, not at the next lease round.
        journal->nudge();
      },
  };
}

}  // namespace flux::detail
