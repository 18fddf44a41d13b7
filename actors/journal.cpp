#include "journal.hpp"

#include "internal.hpp"

namespace flux::detail {

void ActorJournal::attach(caf::actor persistence) {
  std::lock_guard lock(mu_);
  persistence_ = std::move(persistence);
}

void ActorJournal::detach() {
  std::lock_guard lock(mu_);
  persistence_ = nullptr;
}

template <class F>
void ActorJournal::push(F&& add) {
  caf::actor wake;
  {
    std::lock_guard lock(mu_);
    add(queue_);
    if (!scheduled_) {
      scheduled_ = true;
      wake = persistence_;
    }
  }
  if (wake) caf::anon_send(wake, drain_atom::value);
}

void ActorJournal::write(Write w) {
  push([&](Batch& q) { q.writes.push_back(std::move(w)); });
}

void ActorJournal::complete(Completion c) {
  push([&](Batch& q) { q.completions.push_back(std::move(c)); });
}

ActorJournal::Batch ActorJournal::take() {
  std::lock_guard lock(mu_);
  scheduled_ = false;
  Batch out;
  std::swap(out, queue_);
  return out;
}

}  // namespace flux::detail
