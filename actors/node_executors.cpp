#include "node_executors.hpp"

#include <algorithm>

namespace flux::detail {

NodeExecutors::NodeExecutors(caf::actor_system& system, const NodeDef* def, std::size_t count) {
  count = std::max<std::size_t>(count, 1);
  actors_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    actors_.push_back(system.spawn(node_actor, def, this, i));
    idle_.push_back(count - 1 - i);  // executor 0 first: a quiet node keeps to one actor
  }
}

NodeExecutors::~NodeExecutors() {
  for (auto& a : actors_) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

void NodeExecutors::submit(ExecRequest req) {
  std::unique_lock lock(mu_);
  if (idle_.empty()) {
    queue_.push_back(std::move(req));
    return;
  }
  const std::size_t index = idle_.back();
  idle_.pop_back();
  lock.unlock();
  caf::anon_send(actors_[index], exec_atom::value, std::move(req));
}

void NodeExecutors::finished(std::size_t index) {
  std::unique_lock lock(mu_);
  if (queue_.empty()) {
    idle_.push_back(index);
    return;
  }
  ExecRequest next = std::move(queue_.front());
  queue_.pop_front();
  lock.unlock();
  // Through the mailbox rather than a loop: the scheduler thread gets to run other actors
  // between two executions.
  caf::anon_send(actors_[index], exec_atom::value, std::move(next));
}

}  // namespace flux::detail
