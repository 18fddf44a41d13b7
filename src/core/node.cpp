#include "flux/node.hpp"

namespace flux {
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

}  // namespace flux
