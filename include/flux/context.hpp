#pragma once
/// \file
/// `flux::Context`: what a node sees of its run.
///
/// Declare a `flux::Context&` parameter anywhere in a node's signature and Flux
/// passes it in; every other parameter comes from the input.
///
/// ```cpp
/// auto add = flux::node("add", [](std::int64_t a, std::int64_t b, flux::Context& ctx) {
///   ctx.save("last_sum", a + b);                          // per-run key/value store
///   ctx.shared().add("calls", 1);                         // atomic across parallel branches
///   return a + b;
/// });
/// ```
///
/// Thread safety: a Context is handed to one node execution; the run's kv store
/// and shared state behind it are shared by all nodes of the run, including
/// parallel branches running at the same time, and every operation on them is
/// atomic. Writes are recorded in the run's store (in order per run).
/// Lifetime: valid until the node's function returns (for an async node, until
/// its future is ready).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flux/codec.hpp"
#include "flux/record.hpp"
#include "flux/value.hpp"

namespace flux {

class Pipeline;
namespace detail {
class RunAccess;
struct RunCompletion;
}  // namespace detail

/// A run started by a node (`Context::start`): a *child* of the node's run. Return it from
/// the node and the node's output is the child's output — awaited without holding any
/// thread, so nodes may start children (which start children...) to any depth and number
/// without risk of deadlock. A child that fails fails the node with the child's error.
/// The child's `RunInfo::parent_run_id` / `parent_step` name the parent, and the parent's
/// history entry for the step lists the child in `children`.
///
/// ```cpp
/// auto price = flux::node("price", [](std::int64_t qty) { return qty * 3; });
/// auto order = flux::node("order", [price](std::int64_t qty, flux::Context& ctx) {
///   return ctx.start(price, qty);  // the node's output is the child's output
/// });
/// ```
///
/// Waiting for a run from inside a node (`Runtime::run`, `RunHandle::wait`) is refused with
/// an error saying so: it would hold a thread the child may need.
class ChildRun {
 public:
  ChildRun(std::string run_id, std::shared_ptr<detail::RunCompletion> completion) noexcept
      : run_id_(std::move(run_id)), completion_(std::move(completion)) {}
  const std::string& run_id() const noexcept { return run_id_; }
  /// For Flux: where the child's outcome is delivered.
  const std::shared_ptr<detail::RunCompletion>& completion() const noexcept { return completion_; }

 private:
  std::string run_id_;
  std::shared_ptr<detail::RunCompletion> completion_;
};

/// State shared by every node of one run. Each call is atomic.
class SharedState {
 public:
  explicit SharedState(detail::RunAccess& run) noexcept : run_(&run) {}

  /// Throws Error(invalid_argument) naming the key if `value` nests deeper than
  /// `flux::k_max_value_depth`; nothing is stored then. So does `update` for its result.
  void set(std::string_view key, Value value);
  template <class T>
  void set(std::string_view key, const T& value) {
    set(key, codec<T>::encode(value));
  }
  std::optional<Value> get(std::string_view key) const;
  template <class T>
  T get(std::string_view key, T fallback) const {
    auto v = get(key);
    return v ? codec<T>::decode(*v) : std::move(fallback);
  }
  bool contains(std::string_view key) const;
  /// Returns whether the key existed.
  bool erase(std::string_view key);
  /// Atomically replaces the value at `key` (null if absent) by `fn(old)`; returns the new value.
  /// On a cluster worker the update is optimistic — `fn` runs there and is committed only if
  /// the value did not change meanwhile — so `fn` may run more than once: keep it free of
  /// side effects.
  Value update(std::string_view key, const std::function<Value(const Value&)>& fn);
  /// Atomically adds `delta` to the integer at `key` (0 if absent); returns the new value.
  std::int64_t add(std::string_view key, std::int64_t delta);
  /// A copy of all shared state.
  Value::Map snapshot() const;

 private:
  detail::RunAccess* run_;
};

class Context {
 public:
  /// Made by Flux for each node execution; users receive it by reference. `node` and
  /// `step` must outlive the Context (they belong to the compiled pipeline).
  Context(std::shared_ptr<detail::RunAccess> run, const std::string& node, const std::string& step,
          std::uint32_t attempt) noexcept;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const std::string& run_id() const noexcept;
  const std::string& node_name() const noexcept { return *node_; }
  const std::string& step_id() const noexcept { return *step_; }
  std::uint32_t attempt() const noexcept { return attempt_; }

  /// Per-run key/value store. Throws Error(invalid_argument) naming the key if `value` nests
  /// deeper than `flux::k_max_value_depth`; nothing is stored then.
  void save(std::string_view key, Value value);
  template <class T>
  void save(std::string_view key, const T& value) {
    save(key, codec<T>::encode(value));
  }
  std::optional<Value> get(std::string_view key) const;
  /// The value at `key` decoded as T, or `fallback` if absent; TypeError (naming the key)
  /// if present with another type.
  template <class T>
  T get(std::string_view key, T fallback) const {
    auto v = get(key);
    if (!v) return fallback;
    try {
      return codec<T>::decode(*v);
    } catch (const TypeError& e) {
      throw TypeError("kv key \"" + std::string(key) + "\": " + e.what());
    }
  }
  bool contains(std::string_view key) const;
  /// Removes `key`; returns whether it existed.
  bool erase(std::string_view key);
  std::vector<std::string> keys() const;

  /// State shared by all nodes of this run.
  SharedState& shared() noexcept { return shared_; }

  /// The run's history so far (completed executions, in order).
  std::vector<HistoryEntry> history() const;

  /// Starts a child run of `pipeline` on this run's Runtime (see ChildRun); the input is
  /// encoded as `Runtime::start` does. Return the ChildRun from the node to use the child's
  /// output; a child not returned runs on by itself (still linked to this run).
  template <class... In>
  ChildRun start(const Pipeline& pipeline, const In&... input) {
    return start_value(pipeline, encode_arguments(input...));
  }
  ChildRun start_value(const Pipeline& pipeline, Value input);
  /// The runs this execution started, in order (recorded in its history entry).
  const std::vector<std::string>& children() const noexcept { return children_; }

  /// Whether this execution should stop: its run was cancelled (`Runtime::cancel`,
  /// `RunHandle::cancel`), its run's deadline passed, or this attempt's `.timeout` expired
  /// (an abandoned async or blocking attempt keeps running until it returns, and its result
  /// is ignored). A sync node cannot be preempted: check this in long loops and return.
  /// Cheap (an atomic load and a clock read); any thread.
  bool cancelled() const noexcept;
  /// When this execution must be done by: the earlier of its attempt's timeout and its run's
  /// deadline (`RunOptions::deadline`, `Config::deadline`); nullopt if neither is set.
  std::optional<Timestamp> deadline() const noexcept { return deadline_; }

  /// For Flux: this attempt's deadline and the flag that says it was abandoned.
  void set_limits(std::optional<Timestamp> deadline,
                  std::shared_ptr<const std::atomic<bool>> abandoned) noexcept {
    deadline_ = deadline;
    abandoned_ = std::move(abandoned);
  }

 private:
  std::shared_ptr<detail::RunAccess> run_;
  const std::string* node_;
  const std::string* step_;
  std::uint32_t attempt_;
  SharedState shared_;
  std::vector<std::string> children_;
  std::optional<Timestamp> deadline_;
  std::shared_ptr<const std::atomic<bool>> abandoned_;
};

}  // namespace flux
