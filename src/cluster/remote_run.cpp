#include "cluster/remote_run.hpp"

#include "flux/error.hpp"
#include "format/record_codec.hpp"

namespace flux::detail {

RemoteRun::RemoteRun(caf::actor_system& system, caf::actor owner, const wire::StepRequest& request,
                     std::chrono::milliseconds timeout)
    : system_(system),
      owner_(std::move(owner)),
      run_id_(request.run_id),
      fence_(request.fence),
      dispatch_(request.dispatch),
      where_("node '" + request.node + "' (step " + request.step + ") of run " + request.run_id),
      timeout_(timeout) {}

wire::ContextReply RemoteRun::call(wire::ContextOp op, Scope scope, std::string_view key,
                                   std::string value, const std::optional<Value>* expected) const {
  wire::ContextCall c;
  c.dispatch = dispatch_;
  c.run_id = run_id_;
  c.fence = fence_;
  c.op = static_cast<std::uint8_t>(op);
  c.scope = static_cast<std::uint8_t>(scope);
  c.key = std::string(key);
  c.value = std::move(value);
  if (expected && *expected) {
    c.has_expected = true;
    c.expected = encode_value(**expected);
  }
  wire::ContextReply reply;
  std::optional<std::string> failure;
  caf::scoped_actor self{system_};
  self->request(owner_, timeout_, std::move(c))
      .receive([&](wire::ContextReply& r) { reply = std::move(r); },
               [&](caf::error& e) { failure = caf::to_string(e); });
  if (failure) {
    throw Error(Errc::unavailable, where_ +
                                       ": the run's owner did not answer a context call within " +
                                       std::to_string(timeout_.count()) + " ms (" + *failure + ")");
  }
  if (!reply.ok) throw Error(Errc::invalid_argument, where_ + ": " + reply.error);
  return reply;
}

void RemoteRun::put(Scope scope, std::string_view key, Value value) {
  check_depth(scope, key, value);
  call(wire::ContextOp::put, scope, key, encode_value(value));
}

std::optional<Value> RemoteRun::get(Scope scope, std::string_view key) const {
  auto reply = call(wire::ContextOp::get, scope, key);
  if (!reply.found) return std::nullopt;
  return decode_value(reply.value, "context reply for key \"" + std::string(key) + "\"");
}

bool RemoteRun::erase(Scope scope, std::string_view key) {
  return call(wire::ContextOp::erase, scope, key).found;
}

Value RemoteRun::update(Scope scope, std::string_view key,
                        const std::function<Value(const Value&)>& fn) {
  std::optional<Value> current = get(scope, key);
  // Each failed commit returns the newer value, so a retry costs one round trip.
  for (;;) {
    Value next = fn(current ? *current : Value{});  // may throw: nothing changed then
    check_depth(scope, key, next);
    auto reply = call(wire::ContextOp::compare_and_set, scope, key, encode_value(next), &current);
    if (reply.found) return next;
    if (reply.value.empty()) {
      current.reset();
    } else {
      current = decode_value(reply.value, "context reply for key \"" + std::string(key) + "\"");
    }
  }
}

Value::Map RemoteRun::snapshot(Scope scope) const {
  auto reply = call(wire::ContextOp::snapshot, scope, "");
  Value all = decode_value(reply.value, "context reply (snapshot)");
  return all.is_map() ? all.as_map() : Value::Map{};
}

std::vector<HistoryEntry> RemoteRun::history() const {
  auto reply = call(wire::ContextOp::history, Scope::kv, "");
  std::vector<HistoryEntry> out;
  out.reserve(reply.items.size());
  for (std::size_t i = 0; i < reply.items.size(); ++i) {
    out.push_back(decode_history(reply.items[i], "context reply (history)", i));
  }
  return out;
}

}  // namespace flux::detail
