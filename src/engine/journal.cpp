#include "engine/journal.hpp"

#include "engine/run_driver.hpp"
#include "metrics/metrics.hpp"

namespace flux::detail {
namespace {
thread_local bool t_persistence_thread = false;
}  // namespace

void ActorJournal::mark_persistence_thread() { t_persistence_thread = true; }

void ActorJournal::attach(caf::actor persistence) {
  std::lock_guard lock(mu_);
  persistence_ = std::move(persistence);
}

void ActorJournal::detach() {
  {
    std::lock_guard lock(mu_);
    persistence_ = nullptr;
  }
  drained_.notify_all();
}

template <class F>
void ActorJournal::push(F&& add, bool urgent) {
  caf::actor wake;
  {
    std::unique_lock lock(mu_);
    if (!t_persistence_thread && queue_.writes.size() >= k_max_queued && persistence_) {
      // Backpressure (see the header); the drain it waits for is already on its way.
      drained_.wait(lock, [this] { return queue_.writes.size() < k_max_queued || !persistence_; });
    }
    auto now = std::chrono::steady_clock::now();
    if (queue_.writes.empty() && queue_.completions.empty()) oldest_ = now;
    add(queue_);
    urgent = urgent || queue_.writes.size() >= k_flush_now_at || now - oldest_ >= k_max_wait;
    if (urgent && !scheduled_) {
      scheduled_ = true;
      wake = persistence_;
    }
  }
  if (wake) caf::anon_send(wake, drain_atom::value);
}

void ActorJournal::write(Write w) {
  push(
      [&](Batch& q) {
        q.writes.push_back(std::move(w));
        metrics::persistence_queued(1);  // under the lock, as take()'s decrement
      },
      false);
}

void ActorJournal::complete(Completion c) {
  push([&](Batch& q) { q.completions.push_back(std::move(c)); }, true);
}

void ActorJournal::nudge() {
  caf::actor wake;
  {
    std::lock_guard lock(mu_);
    if (scheduled_ || (queue_.writes.empty() && queue_.completions.empty())) return;
    scheduled_ = true;
    wake = persistence_;
  }
  if (wake) caf::anon_send(wake, drain_atom::value);
}

bool ActorJournal::flush(std::chrono::milliseconds bound) {
  struct Signal {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  };
  auto signal = std::make_shared<Signal>();
  // A completion of no run: it is called once the batch it lands in has been applied.
  complete(Completion{"", 0, [signal](const std::string*) {
                        {
                          std::lock_guard lock(signal->mu);
                          signal->done = true;
                        }
                        signal->cv.notify_all();
                      }});
  std::unique_lock lock(signal->mu);
  return signal->cv.wait_for(lock, bound, [&] { return signal->done; });
}

ActorJournal::Batch ActorJournal::take() {
  Batch out;
  {
    std::lock_guard lock(mu_);
    scheduled_ = false;
    std::swap(out, queue_);
    metrics::persistence_queued(-static_cast<std::int64_t>(out.writes.size()));
    queue_.writes.reserve(out.writes.size());  // the next batch is likely as large
  }
  drained_.notify_all();
  return out;
}

}  // namespace flux::detail
