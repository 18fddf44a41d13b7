#include "flux/context.hpp"

#include <algorithm>
#include <string_view>

#include "run/run_state.hpp"

namespace flux {
namespace detail {

// What a node stores must be storable: refused here, in the node that stores it, rather than
// when the persistence actor writes it (after the run may have moved on).
void check_depth(Scope scope, std::string_view key, const Value& value) {
  if (const std::size_t depth = value.depth(); depth > k_max_value_depth) {
    throw Error(Errc::invalid_argument,
                std::string(scope == Scope::kv ? "kv" : "shared") + " key \"" + std::string(key) +
                    "\": the value is nested " + std::to_string(depth) +
                    " levels deep (lists/maps); the limit is " + std::to_string(k_max_value_depth) +
                    " (flux::k_max_value_depth)");
  }
}

namespace {
thread_local const Context* t_executing = nullptr;
}  // namespace

const Context* executing_node() noexcept { return t_executing; }
ExecutingNode::ExecutingNode(const Context& ctx) noexcept : outer_(t_executing) {
  t_executing = &ctx;
}
ExecutingNode::~ExecutingNode() { t_executing = outer_; }

void RunState::put(Scope scope, std::string_view key, Value value) {
  check_depth(scope, key, value);
  std::lock_guard lock(mu_);
  auto& m = space(scope);
  auto it = m.find(key);
  if (it == m.end()) it = m.emplace(std::string(key), Value{}).first;
  it->second = value;
  journal(Write{Write::PutKey{run_id_, scope, std::string(key), std::move(value)}});
}

std::optional<Value> RunState::get(Scope scope, std::string_view key) const {
  std::lock_guard lock(mu_);
  const auto& m = space(scope);
  auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

bool RunState::erase(Scope scope, std::string_view key) {
  std::lock_guard lock(mu_);
  auto& m = space(scope);
  auto it = m.find(key);
  if (it == m.end()) return false;
  m.erase(it);
  journal(Write{Write::EraseKey{run_id_, scope, std::string(key)}});
  return true;
}

Value RunState::update(Scope scope, std::string_view key,
                       const std::function<Value(const Value&)>& fn) {
  std::lock_guard lock(mu_);
  auto& m = space(scope);
  auto it = m.find(key);
  Value next = fn(it == m.end() ? Value{} : it->second);  // may throw: nothing changed then
  check_depth(scope, key, next);
  if (it == m.end()) it = m.emplace(std::string(key), Value{}).first;
  it->second = next;
  journal(Write{Write::PutKey{run_id_, scope, std::string(key), next}});
  return next;
}

std::optional<std::optional<Value>> RunState::compare_and_set(Scope scope, std::string_view key,
                                                              const std::optional<Value>& expected,
                                                              Value value) {
  check_depth(scope, key, value);
  std::lock_guard lock(mu_);
  auto& m = space(scope);
  auto it = m.find(key);
  const bool matches = it == m.end() ? !expected : expected && *expected == it->second;
  if (!matches) {
    return std::optional<std::optional<Value>>(it == m.end() ? std::nullopt
                                                             : std::optional<Value>(it->second));
  }
  if (it == m.end()) it = m.emplace(std::string(key), Value{}).first;
  it->second = value;
  journal(Write{Write::PutKey{run_id_, scope, std::string(key), std::move(value)}});
  return std::nullopt;
}

Value::Map RunState::snapshot(Scope scope) const {
  std::lock_guard lock(mu_);
  return space(scope);
}

void RunState::journal_run(const RunInfo& info) {
  auto record = std::make_shared<const RunInfo>(info);  // before the lock
  std::lock_guard lock(mu_);
  journal(Write{Write::PutRun{std::move(record)}});
}

void RunState::journal_claim(const std::string& owner, std::chrono::milliseconds ttl) {
  std::lock_guard lock(mu_);
  journal(Write{Write::ClaimLease{run_id_, owner, ttl}});
}

void RunState::journal_release(const std::string& owner) {
  std::lock_guard lock(mu_);
  journal(Write{Write::ReleaseLease{run_id_, owner}});
}

void RunState::append(HistoryEntry entry) {
  std::lock_guard lock(mu_);
  entry.seq = history_.size();
  auto shared = std::make_shared<const HistoryEntry>(std::move(entry));
  history_.push_back(shared);
  journal(Write{Write::AppendHistory{run_id_, std::move(shared)}});
}

std::vector<HistoryEntry> RunState::history() const {
  std::lock_guard lock(mu_);
  std::vector<HistoryEntry> out;
  out.reserve(history_.size());
  for (const auto& e : history_) out.push_back(*e);
  return out;
}

std::uint32_t distinct_steps(std::vector<std::string_view> steps) {
  // Sorted views, not a set of strings: called once per run end, over the whole history.
  std::sort(steps.begin(), steps.end());
  return static_cast<std::uint32_t>(std::unique(steps.begin(), steps.end()) - steps.begin());
}

std::uint32_t RunState::completed_steps() const {
  std::vector<std::string_view> steps;
  std::lock_guard lock(mu_);
  steps.reserve(history_.size());
  for (const auto& e : history_) {
    if (e->type == HistoryEntry::Type::node && e->ok()) steps.emplace_back(e->step);
  }
  return distinct_steps(std::move(steps));  // views into entries history_ keeps alive
}

bool RunState::cancel(const std::string& by, const std::string& reason, bool compensate) {
  std::string message = "run " + run_id_ + " was cancelled";
  if (by == "deadline") {
    message += ": " + reason;
  } else {
    message += " by " + by + (reason.empty() ? std::string() : ": " + reason);
  }
  std::map<std::uint64_t, std::function<void()>> callbacks;
  {
    std::lock_guard lock(mu_);
    if (cancellation_ || ended_) return false;
    cancellation_.emplace(by, reason);
    callbacks.swap(on_cancel_);
  }
  HistoryEntry mark;
  mark.type = HistoryEntry::Type::cancel;
  mark.node = "cancel";
  mark.start = mark.end =
      std::chrono::time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now());
  Value::Map input{{"by", by}, {"reason", reason}};
  if (compensate) input.emplace("compensate", true);
  mark.input = std::move(input);
  compensate_ = compensate;  // before the callbacks: the run may end in one of them
  append(std::move(mark));
  stop(std::move(message));
  cancelled_ = true;
  // Newest first: executions (registered after the parallel that started them) record their
  // abandoned attempts before that parallel concludes and the run ends.
  for (auto it = callbacks.rbegin(); it != callbacks.rend(); ++it) it->second();
  return true;
}

void RunState::shut_down(std::string why) {
  std::map<std::uint64_t, std::function<void()>> callbacks;
  {
    std::lock_guard lock(mu_);
    if (ended_ || shut_down_) return;
    shut_down_ = true;  // under the lock: on_cancel calls later callbacks at once
    callbacks.swap(on_cancel_);
  }
  stop(std::move(why));
  for (auto it = callbacks.rbegin(); it != callbacks.rend(); ++it) it->second();
}

std::optional<std::pair<std::string, std::string>> RunState::cancellation() const {
  std::lock_guard lock(mu_);
  return cancellation_;
}

std::uint64_t RunState::on_cancel(std::function<void()> f) {
  {
    std::lock_guard lock(mu_);
    if (ended_) return 0;  // nothing will cancel it: `f` is not needed
    if (!cancellation_ && !shut_down_) {
      const std::uint64_t id = next_on_cancel_++;
      on_cancel_.emplace(id, std::move(f));
      return id;
    }
  }
  f();
  return 0;
}

void RunState::mark_ended() {
  std::map<std::uint64_t, std::function<void()>> dropped;
  std::lock_guard lock(mu_);
  ended_ = true;
  dropped.swap(on_cancel_);
  // `dropped` goes after the lock: a callback's captures may own this RunState.
}

void RunState::off_cancel(std::uint64_t id) {
  if (id == 0) return;
  std::function<void()> dropped;  // destroyed after the lock: its captures may own this
  std::lock_guard lock(mu_);
  auto it = on_cancel_.find(id);
  if (it == on_cancel_.end()) return;
  dropped = std::move(it->second);
  on_cancel_.erase(it);
}

}  // namespace detail

bool Context::cancelled() const noexcept {
  if (abandoned_ && abandoned_->load(std::memory_order_relaxed)) return true;
  if (run_->cancelled()) return true;
  return deadline_ && std::chrono::system_clock::now() >= *deadline_;
}

ChildRun Context::start_value(const Pipeline& pipeline, Value input) {
  detail::ChildStarter* starter = run_->child_starter();
  if (!starter) {
    throw Error(Errc::invalid_argument,
                "node '" + *node_ + "' (step " + *step_ + "): this run cannot start child runs");
  }
  ChildRun child = starter->start_child(pipeline, std::move(input), run_->run_id(), *step_);
  children_.push_back(child.run_id());
  return child;
}

Context::Context(std::shared_ptr<detail::RunAccess> run, const std::string& node,
                 const std::string& step, std::uint32_t attempt) noexcept
    : run_(std::move(run)), node_(&node), step_(&step), attempt_(attempt), shared_(*run_) {}

const std::string& Context::run_id() const noexcept { return run_->run_id(); }
void Context::save(std::string_view key, Value value) {
  run_->put(Scope::kv, key, std::move(value));
}
std::optional<Value> Context::get(std::string_view key) const { return run_->get(Scope::kv, key); }
bool Context::contains(std::string_view key) const { return get(key).has_value(); }
bool Context::erase(std::string_view key) { return run_->erase(Scope::kv, key); }
std::vector<std::string> Context::keys() const {
  std::vector<std::string> out;
  for (auto& [k, v] : run_->snapshot(Scope::kv)) out.push_back(k);
  return out;
}
std::vector<HistoryEntry> Context::history() const { return run_->history(); }

void SharedState::set(std::string_view key, Value value) {
  run_->put(Scope::shared, key, std::move(value));
}
std::optional<Value> SharedState::get(std::string_view key) const {
  return run_->get(Scope::shared, key);
}
bool SharedState::contains(std::string_view key) const { return get(key).has_value(); }
bool SharedState::erase(std::string_view key) { return run_->erase(Scope::shared, key); }
Value SharedState::update(std::string_view key, const std::function<Value(const Value&)>& fn) {
  return run_->update(Scope::shared, key, fn);
}
std::int64_t SharedState::add(std::string_view key, std::int64_t delta) {
  return update(key,
                [&](const Value& old) {
                  if (old.is_null()) return Value(delta);
                  if (!old.is_int()) {
                    throw TypeError("shared key \"" + std::string(key) +
                                    "\": " + describe_mismatch("int64", old));
                  }
                  return Value(old.as_int() + delta);
                })
      .as_int();
}
Value::Map SharedState::snapshot() const { return run_->snapshot(Scope::shared); }

}  // namespace flux
