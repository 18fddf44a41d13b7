#include "engine/node_executors.hpp"

#include <algorithm>

namespace flux::detail {

NodeExecutors::NodeExecutors(caf::actor_system& system, const NodeDef* def, std::size_t count)
    : system_(system), def_(def), max_executors_(std::max<std::size_t>(count, 1)) {
  std::lock_guard lock(mu_);
  spawn_executor();
  idle_.push_back(0);
}

caf::actor NodeExecutors::spawn_executor() {
  handed_.push_back(std::make_unique<Slot>());
  actors_.push_back(system_.spawn(node_actor, def_, this, actors_.size(), handed_.back().get()));
  return actors_.back();
}

NodeExecutors::~NodeExecutors() {
  std::lock_guard lock(mu_);
  for (auto& a : actors_) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

void NodeExecutors::submit(ExecRequest req) {
  std::unique_lock lock(mu_);
  std::size_t index;
  if (!idle_.empty()) {
    index = idle_.back();
    idle_.pop_back();
  } else if (actors_.size() < max_executors_) {
    index = actors_.size();
    spawn_executor();  // busy: one more executor, up to the limit
  } else {
    queue_.push_back(std::move(req));
    return;
  }
  *handed_[index] = std::move(req);
  caf::actor target = actors_[index];
  lock.unlock();
  caf::anon_send(target, exec_atom::value);
}

void NodeExecutors::finished(std::size_t index) {
  std::unique_lock lock(mu_);
  if (queue_.empty()) {
    idle_.push_back(index);
    return;
  }
  *handed_[index] = std::move(queue_.front());
  queue_.pop_front();
  caf::actor self = actors_[index];
  lock.unlock();
  // Through the mailbox rather than a loop: the scheduler thread gets to run other actors
  // between two executions.
  caf::anon_send(self, exec_atom::value);
}

}  // namespace flux::detail
