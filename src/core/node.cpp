#include "flux/node.hpp"

#include <algorithm>
#include <cmath>

namespace flux {

std::chrono::milliseconds Backoff::after(std::uint32_t attempt) const noexcept {
  double ms = static_cast<double>(initial.count());
  for (std::uint32_t i = 1; i < attempt && ms < static_cast<double>(max.count()); ++i) {
    ms *= multiplier;
  }
  ms = std::min(ms, static_cast<double>(max.count()));
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::max(ms, 0.0)));
}
namespace detail {

void check_node_args(const std::string& name, bool callable_is_null) {
  if (name.empty()) throw Error(Errc::invalid_argument, "flux::node: the name must not be empty");
  if (callable_is_null) {
    throw Error(Errc::invalid_argument, "flux::node(\"" + name + "\"): the callable is null");
  }
}

void throw_arity_mismatch(const Value& input, std::size_t count) {
  std::string got = input.is_list() ? "a list of " + std::to_string(input.as_list().size())
                                    : std::string("a single ") + to_string(input.kind());
  throw InputError("takes " + std::to_string(count) +
                   " parameters, so its input must be a list of " + std::to_string(count) +
                   " values, got " + got + " " + input.to_string(80));
}

void throw_param_mismatch(const TypeError& e, std::size_t index, std::size_t count) {
  if (count == 1) throw InputError(std::string("input: ") + e.what());
  throw InputError("parameter " + std::to_string(index + 1) + " of " + std::to_string(count) +
                   ": " + e.what());
}

}  // namespace detail

Node Node::blocking() const {
  if (def_->mode == detail::NodeMode::async) {
    throw Error(
        Errc::invalid_argument,
        "node \"" + def_->name + "\" is async; its future is already awaited off the scheduler");
  }
  if (def_->mode == detail::NodeMode::child) {
    throw Error(Errc::invalid_argument, "node \"" + def_->name +
                                            "\" returns a child run, which is awaited without "
                                            "holding any thread; it cannot be made blocking");
  }
  auto def = std::make_shared<detail::NodeDef>(*def_);
  def->mode = detail::NodeMode::blocking;
  return Node(std::move(def));
}

namespace detail {
void check_retry_policy(const RetryPolicy& policy, const std::string& name) {
  const std::string where = name + ": retry policy: ";
  if (policy.attempts == 0) {
    throw Error(Errc::invalid_argument, where + "attempts must be at least 1 (1: no retry)");
  }
  if (policy.backoff.initial.count() < 0 || policy.backoff.max.count() < 0) {
    throw Error(Errc::invalid_argument, where + "the backoff's waits must not be negative");
  }
  if (!(policy.backoff.multiplier >= 1.0) || !std::isfinite(policy.backoff.multiplier)) {
    throw Error(Errc::invalid_argument, where + "the backoff's multiplier must be at least 1");
  }
}
}  // namespace detail

Node Node::retry(RetryPolicy policy) const {
  detail::check_retry_policy(policy, "node \"" + def_->name + "\"");
  auto def = std::make_shared<detail::NodeDef>(*def_);
  def->retry = std::move(policy);
  return Node(std::move(def));
}

Node Node::timeout(std::chrono::milliseconds limit) const {
  if (limit.count() <= 0) {
    throw Error(Errc::invalid_argument, "node \"" + def_->name +
                                            "\": the timeout must be positive, got " +
                                            std::to_string(limit.count()) + " ms");
  }
  auto def = std::make_shared<detail::NodeDef>(*def_);
  def->timeout = limit;
  return Node(std::move(def));
}

Node Node::with_compensation(std::shared_ptr<detail::CompensationDef> comp, bool is_null) const {
  const std::string where = "node \"" + def_->name + "\": compensate: ";
  if (is_null) throw Error(Errc::invalid_argument, where + "the callable is null");
  detail::check_retry_policy(comp->retry, "node \"" + def_->name + "\" compensation");
  // The output and input it is given are the step's: checked here, as a pipeline checks
  // that one step's output fits the next step's input.
  if (!comp->params.empty() && !compatible(def_->result, comp->params[0])) {
    throw Error(Errc::type_mismatch, where + "its first parameter (" + comp->params[0].name +
                                         ") cannot take the node's output (" +
                                         def_->result.name + ")");
  }
  if (comp->params.size() == 2 && def_->params.size() == 1 &&
      !compatible(def_->params[0], comp->params[1])) {
    throw Error(Errc::type_mismatch, where + "its second parameter (" + comp->params[1].name +
                                         ") cannot take the node's input (" +
                                         def_->params[0].name + ")");
  }
  auto def = std::make_shared<detail::NodeDef>(*def_);
  def->compensation = std::move(comp);
  return Node(std::move(def));
}

}  // namespace flux
