#include "engine/timers.hpp"

#include <mutex>
#include <unordered_map>

namespace flux::detail {
namespace {
using fire_atom = caf::atom_constant<caf::atom("fire")>;
}  // namespace

struct Timers::State {
  std::mutex mu;  // guards pending and next
  std::unordered_map<std::uint64_t, std::function<void()>> pending;
  std::uint64_t next = 1;

  void fire(std::uint64_t id) {
    std::function<void()> f;
    {
      std::lock_guard lock(mu);
      auto it = pending.find(id);
      if (it == pending.end()) return;  // cancelled, or the Timers are gone
      f = std::move(it->second);
      pending.erase(it);
    }
    f();
  }
};

namespace {
// The state comes as an argument, not a capture: CAF 0.17 dereferences a null argument tuple
// when it starts an actor spawned without arguments (undefined behaviour, UBSan reports it).
caf::behavior timer_actor(caf::event_based_actor* self, std::shared_ptr<Timers::State> state) {
  self->set_default_handler(caf::drop);
  return {[state](fire_atom, std::uint64_t id) { state->fire(id); }};
}
}  // namespace

Timers::Timers(caf::actor_system& system) : state_(std::make_shared<State>()) {
  actor_ = system.spawn(timer_actor, state_);
}

Timers::~Timers() {
  std::unordered_map<std::uint64_t, std::function<void()>> dropped;
  {
    std::lock_guard lock(state_->mu);
    dropped.swap(state_->pending);
  }
  caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
  actor_ = nullptr;
}  // `dropped` is destroyed here, outside the lock: a callback's captures may be large

std::uint64_t Timers::after(std::chrono::nanoseconds delay, std::function<void()> f) {
  std::uint64_t id;
  {
    std::lock_guard lock(state_->mu);
    id = state_->next++;
    state_->pending.emplace(id, std::move(f));
  }
  if (delay.count() < 0) delay = std::chrono::nanoseconds(0);
  caf::delayed_anon_send(actor_, delay, fire_atom::value, id);
  return id;
}

bool Timers::cancel(std::uint64_t id) {
  if (id == 0) return false;
  std::function<void()> dropped;  // destroyed after the lock: its captures may be large
  std::lock_guard lock(state_->mu);
  auto it = state_->pending.find(id);
  if (it == state_->pending.end()) return false;
  dropped = std::move(it->second);
  state_->pending.erase(it);
  return true;
}

}  // namespace flux::detail
