#pragma once
// Internal: the queue between a process's runs and its persistence actor.
//
// Writers (node actors, run actors, pool threads, user threads) append under a mutex;
// the first append after a drain sends the persistence actor one drain_atom, and
// everything appended until it drains goes in the same batch — group commit: one
// message and one store round trip per batch, not per record, however many runs write.

#include <caf/all.hpp>

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "flux/storage.hpp"
#include "run_state.hpp"

namespace flux::detail {

/// Called once the run's records are in the store (store_error null), or the store
/// refused some of them (store_error says why).
struct Completion {
  std::string run_id;
  std::uint64_t fence = 0;
  std::function<void(const std::string* store_error)> done;
};

class ActorJournal final : public Journal {
 public:
  struct Batch {
    std::vector<Write> writes;
    std::vector<Completion> completions;  // to call after `writes` are applied
  };

  /// The actor to wake; set once, right after it is spawned, and dropped at shutdown.
  void attach(caf::actor persistence);
  void detach();

  void write(Write w) override;
  void complete(Completion c);
  /// Everything queued so far (called by the persistence actor).
  Batch take();

 private:
  template <class F>
  void push(F&& add);

  std::mutex mu_;
  Batch queue_;
  bool scheduled_ = false;  // a drain_atom is on its way
  caf::actor persistence_;
};

}  // namespace flux::detail
