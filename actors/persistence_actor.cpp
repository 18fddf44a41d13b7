// The persistence actor: the only writer to the store in a process.
//
// It runs detached (its own thread), so a slow or blocking store never stalls the
// scheduler. On each drain_atom it takes everything the journal has queued — writes of
// any number of runs, in the order they were made, hence in order per run — applies them
// in one `Storage::apply` call, and then completes the runs that ended in that batch:
// a run is reported ended only once all its records are in the store.

#include <cstdio>

#include "internal.hpp"

namespace flux::detail {
namespace {

std::string owner_key(const std::string& run_id, std::uint64_t fence) {
  return run_id + "/" + std::to_string(fence);
}

/// Applies `writes`; returns the runs (by owner key) whose writes the store refused.
std::unordered_map<std::string, std::string> apply_writes(Storage& storage,
                                                          const std::vector<Write>& writes) {
  std::unordered_map<std::string, std::string> failed;
  if (writes.empty()) return failed;
  try {
    storage.apply(writes);
  } catch (const Error& e) {
    if (e.code() == Errc::run_owned) {
      // Some run lost its ownership: apply the writes one by one (applying twice is
      // harmless) so that only the runs whose writes are refused fail.
      for (const Write& w : writes) {
        try {
          storage.apply(std::span<const Write>(&w, 1));
        } catch (const std::exception& one) {
          failed.emplace(owner_key(w.run_id(), w.fence), one.what());
        }
      }
    } else {
      std::fprintf(stderr, "flux: persistence: %zu writes failed: %s\n", writes.size(), e.what());
      for (const Write& w : writes) failed.emplace(owner_key(w.run_id(), w.fence), e.what());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flux: persistence: %zu writes failed: %s\n", writes.size(), e.what());
    for (const Write& w : writes) failed.emplace(owner_key(w.run_id(), w.fence), e.what());
  }
  return failed;
}

}  // namespace

caf::behavior persistence_actor(caf::event_based_actor* self, std::shared_ptr<Storage> storage,
                                std::shared_ptr<ActorJournal> journal) {
  self->set_default_handler(caf::drop);
  // Refusals are remembered until the run they belong to completes: a straggling write
  // of a failed run may be refused in one batch and the run complete in a later one.
  auto refused = std::make_shared<std::unordered_map<std::string, std::string>>();
  return {
      [storage, journal, refused](drain_atom) {
        ActorJournal::mark_persistence_thread();  // before any completion runs user code
        ActorJournal::Batch batch = journal->take();
        for (auto& [key, why] : apply_writes(*storage, batch.writes)) refused->emplace(key, why);
        for (Completion& c : batch.completions) {
          auto it = refused->find(owner_key(c.run_id, c.fence));
          if (it == refused->end()) {
            c.done(nullptr);
          } else {
            std::string why = std::move(it->second);
            refused->erase(it);
            c.done(&why);
          }
        }
      },
  };
}

}  // namespace flux::detail
