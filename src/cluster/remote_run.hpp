#pragma once
// Internal: a run seen from a worker. Every Context call of a step executing on a worker goes
// to the run's owner (the driver's dispatcher), which applies it to the run's state in its
// order; nothing about a run is decided on a worker.

#include <caf/all.hpp>
#include <chrono>
#include <string>

#include "cluster/wire.hpp"
#include "run/run_state.hpp"

namespace flux::detail {

class RemoteRun final : public RunAccess {
 public:
  /// For the step of `request`, whose owner is `owner`. A call unanswered after `timeout`
  /// throws Error(unavailable); one the owner refuses (the step is no longer its: failed
  /// over, the run lost) throws Error(invalid_argument) with the owner's reason.
  RemoteRun(caf::actor_system& system, caf::actor owner, const wire::StepRequest& request,
            std::chrono::milliseconds timeout);

  const std::string& run_id() const noexcept override { return run_id_; }
  void put(Scope scope, std::string_view key, Value value) override;
  std::optional<Value> get(Scope scope, std::string_view key) const override;
  bool erase(Scope scope, std::string_view key) override;
  /// Optimistic: reads the value, computes `fn(old)` here and commits it if the value is
  /// still `old` at the owner; otherwise calls `fn` again on the newer value. So `fn` may run
  /// more than once (it must have no side effects besides its result).
  Value update(Scope scope, std::string_view key,
               const std::function<Value(const Value&)>& fn) override;
  Value::Map snapshot(Scope scope) const override;
  std::vector<HistoryEntry> history() const override;
  /// A worker cannot start child runs (yet): nullptr, and Context::start says so.
  ChildStarter* child_starter() const noexcept override { return nullptr; }

 private:
  wire::ContextReply call(wire::ContextOp op, Scope scope, std::string_view key,
                          std::string value = {},
                          const std::optional<Value>* expected = nullptr) const;

  caf::actor_system& system_;
  const caf::actor owner_;
  const std::string run_id_;
  const std::uint64_t fence_;
  const std::uint64_t dispatch_;
  const std::string where_;  // "node 'x' (step 1) of run R"
  const std::chrono::milliseconds timeout_;
};

}  // namespace flux::detail
