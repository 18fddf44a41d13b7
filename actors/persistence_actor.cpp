// The persistence actor: the only writer to the store in a process.
//
// It runs detached (its own thread), so a slow or blocking store never stalls the
// scheduler. Writes are buffered and applied in batches: the first write of a batch
// schedules a flush_atom to itself, which is queued behind every write already in the
// mailbox, so one `Storage::apply` call takes all of them (in arrival order, hence in
// order per run). A sync request is answered after everything before it is applied.

#include <cstdio>

#include "internal.hpp"

namespace flux::detail {
namespace {

std::string owner_key(const std::string& run_id, std::uint64_t fence) {
  return run_id + "/" + std::to_string(fence);
}

void flush(caf::stateful_actor<PersistenceState>* self, Storage& storage) {
  auto& st = self->state;
  st.flush_scheduled = false;
  if (st.buffer.empty()) return;
  try {
    storage.apply(st.buffer);
  } catch (const Error& e) {
    if (e.code() == Errc::run_owned) {
      // Some run lost its ownership: apply the writes one by one (applying twice is
      // harmless) so that only the runs whose writes are refused fail.
      for (const Write& w : st.buffer) {
        try {
          storage.apply(std::span<const Write>(&w, 1));
        } catch (const std::exception& one) {
          st.failed_runs.emplace(owner_key(w.run_id(), w.fence), one.what());
        }
      }
    } else {
      std::fprintf(stderr, "flux: persistence: %zu writes failed: %s\n", st.buffer.size(),
                   e.what());
      for (const Write& w : st.buffer) st.failed_runs.emplace(owner_key(w.run_id(), w.fence), e.what());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flux: persistence: %zu writes failed: %s\n", st.buffer.size(), e.what());
    for (const Write& w : st.buffer) st.failed_runs.emplace(owner_key(w.run_id(), w.fence), e.what());
  }
  st.buffer.clear();
}

}  // namespace

caf::behavior persistence_actor(caf::stateful_actor<PersistenceState>* self,
                                std::shared_ptr<Storage> storage) {
  self->set_default_handler(caf::drop);
  return {
      [self](write_atom, Write& w) {
        self->state.buffer.push_back(std::move(w));
        if (!self->state.flush_scheduled) {
          self->state.flush_scheduled = true;
          self->send(self, flush_atom::value);
        }
      },
      [self, storage](flush_atom) { flush(self, *storage); },
      [self, storage](sync_atom, const std::string& run_id,
                      std::uint64_t fence) -> caf::result<void> {
        flush(self, *storage);
        auto it = self->state.failed_runs.find(owner_key(run_id, fence));
        if (it == self->state.failed_runs.end()) return caf::unit;
        auto err = make_failure(flux_errc::storage, "", "",
                                "run " + run_id + ": the store failed: " + it->second);
        self->state.failed_runs.erase(it);
        return err;
      },
  };
}

}  // namespace flux::detail
