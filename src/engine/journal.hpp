#pragma once
// Internal: the queue between a process's runs and its persistence actor.
//
// Writers (node and parallel actors, pool threads, user threads) append under a mutex,
// and everything appended until the persistence actor drains goes in one batch — group
// commit: one message and one store round trip per batch, not per record, however many
// runs write. Waking the persistence thread for every record would cost a thread wake-up
// per node, so a record only wakes it when it is urgent: a run ended (its caller waits),
// `k_flush_now_at` records wait, or the oldest waiting record is `k_max_wait` old. A
// record can otherwise wait for the next one; `nudge()` — called before a node leaves the
// scheduler for slow work, and by the lease keeper's periodic tick — bounds that wait.
//
// Backpressure: when `k_max_queued` records wait, writers block until the persistence
// actor takes them, so a pipeline faster than its store cannot run arbitrarily far ahead
// of its records (what a crash would make it repeat). The persistence thread itself
// never blocks here (an observer called from it may start runs).

#include <caf/all.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "flux/storage.hpp"
#include "run/run_state.hpp"

namespace flux::detail {

/// Called once the run's records are in the store (store_error null), or the store
/// refused some of them (store_error says why).
struct Completion {
  std::string run_id;
  std::uint64_t fence = 0;
  std::function<void(const std::string* store_error)> done;
  /// The run's end (a refusal is reported once, here) or a step waiting for its records
  /// (a refusal is reported and kept for the run's end).
  bool final = true;
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
  /// Wakes the persistence actor if anything waits.
  void nudge();
  /// Blocks until everything queued before the call has been applied (or refused) by the
  /// store, or `bound` has passed; returns whether it was applied. Never call it from the
  /// persistence thread or a scheduler thread.
  bool flush(std::chrono::milliseconds bound);
  /// Everything queued so far (called by the persistence actor, on its thread).
  Batch take();
  /// Marks the calling thread as the persistence actor's, which must never block in push.
  static void mark_persistence_thread();

 private:
  template <class F>
  void push(F&& add, bool urgent);

  static constexpr std::chrono::microseconds k_max_wait{1000};
  static constexpr std::size_t k_flush_now_at = 256;
  static constexpr std::size_t k_max_queued = 1024;

  std::mutex mu_;
  std::condition_variable drained_;  // signalled by take()
  Batch queue_;
  std::chrono::steady_clock::time_point oldest_{};  // of the records waiting
  bool scheduled_ = false;                          // a drain_atom is on its way
  caf::actor persistence_;
};

}  // namespace flux::detail
