#pragma once
/// \file
/// `flux::node(name, callable)`: a named function that becomes an actor.
///
/// ```cpp
/// auto inc   = flux::node("inc", [](std::int64_t x) { return x + 1; });
/// auto log   = flux::node("log", [](const std::string& s, flux::Context& ctx) {
///   ctx.save("msg", s);                                      // void: the output is null
/// });
/// auto fetch = flux::node("fetch", [](std::string url) {     // async: awaited off the scheduler
///   return std::async(std::launch::async, http_get, url);
/// });
/// auto disk  = flux::node("disk", [](std::string path) { return read_file(path); }).blocking();
/// ```
///
/// - Parameters of type `flux::Context&` are injected wherever they appear.
///   With one other parameter, it receives the whole input; with several, the
///   input must be a list of that many values (a parallel's outputs) and they
///   are spread over the parameters in order; with none, the input is ignored.
/// - A node may start child runs with `ctx.start(pipeline, input)` and return the
///   `flux::ChildRun`: its output is then the child's, awaited without holding a thread.
/// - A `void` result is recorded as null. A `std::future<T>` result makes the
///   node asynchronous: Flux waits for it off the actor scheduler.
/// - `.blocking()` runs the function on a separate thread pool, so that code
///   that sleeps or does blocking I/O never stalls other actors.
/// - `.retry({...})` executes a failed step again (README, "Control"); `.timeout(d)` bounds
///   one attempt: an async or blocking attempt is abandoned when it expires, a sync one is
///   told through `ctx.cancelled()` / `ctx.deadline()` and failed when it returns late.
/// - `.compensate(fn)` undoes a completed step when its run fails later (README,
///   "Compensation"): a saga.
///
/// Thread safety: a Node is immutable and may be used by any number of
/// pipelines and concurrent runs; its callable is invoked concurrently, so it
/// must not mutate unsynchronised captured state.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "flux/codec.hpp"
#include "flux/context.hpp"
#include "flux/error.hpp"
#include "flux/value.hpp"

namespace flux {

/// The wait before a failed step's next attempt: `initial` after the first failure,
/// multiplied by `multiplier` after each further one, never more than `max`.
struct Backoff {
  std::chrono::milliseconds initial{100};
  double multiplier = 2.0;
  std::chrono::milliseconds max{10000};
  /// The wait after failed attempt `attempt` (1-based), without jitter.
  std::chrono::milliseconds after(std::uint32_t attempt) const noexcept;
};
/// `initial`, then ×`multiplier` per failure, capped at `max`: `exponential(100ms, 2, 10s)`.
inline Backoff exponential(std::chrono::milliseconds initial, double multiplier = 2.0,
                           std::chrono::milliseconds max = std::chrono::seconds(10)) {
  return Backoff{initial, multiplier, max};
}
/// The same wait before every retry.
inline Backoff fixed(std::chrono::milliseconds wait) { return Backoff{wait, 1.0, wait}; }

/// One failed attempt of a step, as a retry policy's `retry_on` sees it.
struct AttemptFailure {
  std::string node;
  std::string step;
  std::uint32_t attempt = 1;
  std::string message;         ///< as recorded in the attempt's history entry
  bool timed_out = false;      ///< the attempt exceeded the node's `.timeout`
  bool type_mismatch = false;  ///< the input could not be decoded (a retry cannot help)
};

/// How often, and after how long, a failed step is executed again. Each attempt is its own
/// history entry (attempt 1, 2, ...) with its own error; the wait between attempts holds
/// no thread (a timer of the actor system continues the run). The run fails with the last
/// attempt's error once `attempts` are spent, or when `retry_on` says no.
struct RetryPolicy {
  /// Attempts in all, the first included: 1 never retries.
  std::uint32_t attempts = 1;
  Backoff backoff{};
  /// Waits a random 50–100 % of the backoff instead of all of it, so that steps that failed
  /// together (an outage) do not all retry at the same moment.
  bool jitter = false;
  /// Whether a failure is worth another attempt; unset: every failure except a type
  /// mismatch (the same input would fail the same way). Called on a Flux thread: keep it
  /// quick and free of side effects; an exception from it counts as "no".
  std::function<bool(const AttemptFailure&)> retry_on{};
};

namespace detail {

/// A node's compensation (Node::compensate), type-erased. Immutable once built.
struct CompensationDef {
  /// Undoes one completed step, given its recorded output and input: decodes them into the
  /// compensation's parameters, calls it, waits for its future if it returns one, and encodes
  /// its result. Called on Flux's blocking-work pool.
  std::function<Value(const Value& output, const Value& input, Context& ctx)> call;
  std::vector<TypeInfo> params;  ///< the non-Context parameters: (output) or (output, input)
  RetryPolicy retry;             ///< its own; one attempt unless given
};

/// How a node's function is run.
enum class NodeMode : std::uint8_t { sync, async, blocking, child };

/// The type-erased definition of a node. Immutable once built.
struct NodeDef {
  std::string name;
  std::vector<TypeInfo> params;  ///< the non-Context parameters, in order
  TypeInfo result;
  NodeMode mode = NodeMode::sync;
  /// Decodes the input, calls the function, encodes the result. For async nodes the
  /// returned function waits for the future (call it off the scheduler).
  std::function<Value(const Value& input, Context& ctx)> call;
  std::function<std::function<Value()>(const Value& input, Context& ctx)> call_async;
  /// For nodes returning a ChildRun: starts the child; the node's output is the child's.
  std::function<ChildRun(const Value& input, Context& ctx)> call_child;
  /// `.retry(...)`; unset: Config::retry.
  std::optional<RetryPolicy> retry;
  /// `.timeout(d)`: the bound of one attempt; zero: none.
  std::chrono::milliseconds timeout{0};
  /// `.compensate(fn)`: how a completed step of this node is undone; null: it is not.
  std::shared_ptr<const CompensationDef> compensation;
};

template <class T>
struct is_future : std::false_type {};
template <class T>
struct is_future<std::future<T>> : std::true_type {
  using value_type = T;
};

template <class F>
struct callable_traits : callable_traits<decltype(&std::decay_t<F>::operator())> {};
template <class R, class... A>
struct callable_traits<R (*)(A...)> {
  using result = R;
  using args = std::tuple<A...>;
  static constexpr bool is_mutable = false;  ///< a non-const operator() (a `mutable` lambda)
};
template <class R, class... A>
struct mutable_call : callable_traits<R (*)(A...)> {
  static constexpr bool is_mutable = true;
};
template <class R, class... A>
struct callable_traits<R (*)(A...) noexcept> : callable_traits<R (*)(A...)> {};
template <class R, class... A>
struct callable_traits<R(A...)> : callable_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...) const> : callable_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...) const noexcept> : callable_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...)> : mutable_call<R, A...> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...) noexcept> : mutable_call<R, A...> {};

/// Whether the parameter types of `F` can be read: a function pointer, or a class with
/// exactly one operator() that is not a template (a generic lambda's is a template).
template <class F>
concept has_readable_signature =
    (std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>) || requires {
  &F::operator();
};

template <class A>
inline constexpr bool is_context_v = std::is_same_v<std::remove_cvref_t<A>, Context>;

/// For each parameter: its index among the non-Context parameters (unused for Context ones).
template <class... A>
constexpr std::array<std::size_t, sizeof...(A) + 1> value_slots() {
  std::array<std::size_t, sizeof...(A) + 1> slots{};
  std::size_t next = 0, i = 0;
  ((slots[i++] = is_context_v<A> ? 0 : next++), ...);
  slots[sizeof...(A)] = next;  // the count of value parameters
  return slots;
}

/// The input of a node could not be decoded into its parameters. Distinct from a
/// TypeError thrown by the node's own code, so that it is reported as a mismatch
/// between the producing and the consuming step.
class InputError : public TypeError {
 public:
  using TypeError::TypeError;
};

/// Throws the error for an input that cannot be spread over `count` parameters.
[[noreturn]] void throw_arity_mismatch(const Value& input, std::size_t count);
/// Rethrows a TypeError from decoding parameter `index` with the parameter named.
[[noreturn]] void throw_param_mismatch(const TypeError& e, std::size_t index, std::size_t count);

template <class Arg, std::size_t Slot, std::size_t Count>
decltype(auto) make_arg(const Value& input, Context& ctx) {
  if constexpr (is_context_v<Arg>) {
    return static_cast<Context&>(ctx);
  } else {
    using T = std::remove_cvref_t<Arg>;
    const Value& in = Count == 1 ? input : input.as_list()[Slot];
    try {
      if constexpr (is_integer_v<T>) {
        // Named as the signature has it ("expected int"), not as the codec does ("int64").
        if (!in.is_int()) throw TypeError(describe_mismatch(integer_name<T>(), in));
      }
      return codec<T>::decode(in);
    } catch (const TypeError& e) {
      throw_param_mismatch(e, Slot, Count);
    }
  }
}

template <class R>
Value encode_result(R&& r) {
  return codec<std::remove_cvref_t<R>>::encode(std::forward<R>(r));
}

template <class F, class... A, std::size_t... I>
decltype(auto) invoke_with(F& f, const Value& input, Context& ctx, std::tuple<A...>*,
                           std::index_sequence<I...>) {
  constexpr auto slots = value_slots<A...>();
  constexpr std::size_t count = slots[sizeof...(A)];
  if constexpr (count >= 2) {
    if (!input.is_list() || input.as_list().size() != count) throw_arity_mismatch(input, count);
  }
  return f(make_arg<A, slots[I], count>(input, ctx)...);
}

/// The TypeInfo of a parameter or result type `T` as the node's signature has it: the
/// codec's, but an integer is named by its C++ type ("int", not "int64"), so that a
/// composition error names the type the user wrote.
template <class T>
TypeInfo signature_type() {
  TypeInfo t = codec<T>::type();
  if constexpr (is_integer_v<T>) t.name = integer_name<T>();
  return t;
}

template <class A>
void add_param_type(std::vector<TypeInfo>& params) {
  if constexpr (!is_context_v<A>) params.push_back(signature_type<std::remove_cvref_t<A>>());
}

template <class T>
struct is_std_function : std::false_type {};
template <class Sig>
struct is_std_function<std::function<Sig>> : std::true_type {};

template <class R>
TypeInfo result_type() {
  if constexpr (std::is_void_v<R>) {
    return TypeInfo::of(Kind::null);
  } else if constexpr (is_future<R>::value) {
    return result_type<typename is_future<R>::value_type>();
  } else if constexpr (std::is_same_v<std::remove_cvref_t<R>, ChildRun>) {
    return TypeInfo::any();  // whatever the child's pipeline produces
  } else {
    return signature_type<std::remove_cvref_t<R>>();
  }
}

// ---- Compile-time checks of a node's signature --------------------------------------
// Why: without them, a mistake in a callable surfaces as an error deep inside these
// templates ("incomplete type flux::codec<Plain, void>", "decltype cannot resolve
// address of overloaded function"). Each check below fails with one static_assert
// saying what to do, and flux::node() instantiates nothing else when one fails.

template <class>
inline constexpr bool always_false_v = false;

enum class ParamProblem : std::uint8_t { none, string_view, non_const_ref, no_codec };

template <class A>
constexpr ParamProblem param_problem() {
  using T = std::remove_cvref_t<A>;
  if constexpr (is_context_v<A>) {
    return ParamProblem::none;
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    return ParamProblem::string_view;
  } else if constexpr (std::is_lvalue_reference_v<A> &&
                       !std::is_const_v<std::remove_reference_t<A>>) {
    return ParamProblem::non_const_ref;
  } else if constexpr (!has_decoder<T>) {
    return ParamProblem::no_codec;
  } else {
    return ParamProblem::none;
  }
}

/// The first problem among the parameters `A...`, or none.
template <class... A>
constexpr ParamProblem first_param_problem(std::tuple<A...>*) {
  ParamProblem found = ParamProblem::none;
  ((found = found == ParamProblem::none ? param_problem<A>() : found), ...);
  return found;
}

template <class R>
constexpr bool result_has_codec() {
  if constexpr (std::is_void_v<R> || std::is_same_v<std::remove_cvref_t<R>, ChildRun>) {
    return true;
  } else if constexpr (is_future<R>::value) {
    return result_has_codec<typename is_future<R>::value_type>();
  } else {
    return has_encoder<std::remove_cvref_t<R>>;
  }
}

/// True if `F` can be a node's callable; otherwise fails one static_assert naming the fix.
template <class F>
constexpr bool check_callable() {
  if constexpr (!has_readable_signature<F>) {
    static_assert(always_false_v<F>,
                  "flux::node: cannot read the callable's parameter types; give every "
                  "parameter an explicit type (no `auto`, no overloaded operator())");
    return false;
  } else {
    using traits = callable_traits<F>;
    constexpr ParamProblem problem =
        first_param_problem(static_cast<typename traits::args*>(nullptr));
    static_assert(!traits::is_mutable,
                  "flux::node: the callable must not be `mutable`: one node runs in many runs "
                  "at once; keep changing state in flux::Context or behind a mutex");
    static_assert(problem != ParamProblem::string_view,
                  "flux::node: take `std::string` or `const std::string&`, not "
                  "`std::string_view`: the view would outlive the decoded input");
    static_assert(problem != ParamProblem::non_const_ref,
                  "flux::node: a parameter cannot be a non-const reference (only flux::Context& "
                  "can); take it by value or by const reference");
    static_assert(problem != ParamProblem::no_codec,
                  "flux::node: a parameter type has no flux::codec; for your struct add "
                  "FLUX_STRUCT(Type, field, ...) at global scope, or specialise flux::codec");
    static_assert(result_has_codec<typename traits::result>(),
                  "flux::node: the result type has no flux::codec; for your struct add "
                  "FLUX_STRUCT(Type, field, ...) at global scope, or specialise flux::codec");
    return !traits::is_mutable && problem == ParamProblem::none &&
           result_has_codec<typename traits::result>();
  }
}

template <class F>
std::shared_ptr<NodeDef> make_node_def(std::string name, F f) {
  using traits = callable_traits<F>;
  using R = typename traits::result;
  using Args = typename traits::args;
  constexpr std::size_t arity = std::tuple_size_v<Args>;
  auto def = std::make_shared<NodeDef>();
  def->name = std::move(name);
  def->result = result_type<R>();
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (add_param_type<std::tuple_element_t<I, Args>>(def->params), ...);
  }
  (std::make_index_sequence<arity>{});

  auto fn = std::make_shared<F>(std::move(f));
  auto call = [fn](const Value& input, Context& ctx) -> decltype(auto) {
    return invoke_with(*fn, input, ctx, static_cast<Args*>(nullptr),
                       std::make_index_sequence<arity>{});
  };
  if constexpr (std::is_same_v<std::remove_cvref_t<R>, ChildRun>) {
    def->mode = NodeMode::child;
    def->call_child = [call](const Value& input, Context& ctx) -> ChildRun {
      return call(input, ctx);
    };
  } else if constexpr (is_future<R>::value) {
    using T = typename is_future<R>::value_type;
    def->mode = NodeMode::async;
    def->call_async = [call](const Value& input, Context& ctx) -> std::function<Value()> {
      auto fut = std::make_shared<std::future<T>>(call(input, ctx));
      return [fut]() -> Value {
        if constexpr (std::is_void_v<T>) {
          fut->get();
          return Value{};
        } else {
          return encode_result(fut->get());
        }
      };
    };
  } else {
    def->call = [call](const Value& input, Context& ctx) -> Value {
      if constexpr (std::is_void_v<R>) {
        call(input, ctx);
        return Value{};
      } else {
        return encode_result(call(input, ctx));
      }
    };
  }
  return def;
}

/// True if `F` can be a node's compensation; otherwise fails one static_assert naming the fix.
template <class F>
constexpr bool check_compensation() {
  if constexpr (!has_readable_signature<F>) {
    static_assert(always_false_v<F>,
                  "flux::Node::compensate: cannot read the callable's parameter types; give every "
                  "parameter an explicit type (no `auto`, no overloaded operator())");
    return false;
  } else {
    using traits = callable_traits<F>;
    using Args = typename traits::args;
    constexpr std::size_t values = []<class... A>(std::tuple<A...>*) {
      return value_slots<A...>()[sizeof...(A)];
    }(static_cast<Args*>(nullptr));
    constexpr ParamProblem problem = first_param_problem(static_cast<Args*>(nullptr));
    static_assert(values <= 2,
                  "flux::Node::compensate: the compensation takes the step's output, optionally "
                  "followed by the step's input, and any flux::Context& -- at most two other "
                  "parameters");
    static_assert(!traits::is_mutable,
                  "flux::Node::compensate: the callable must not be `mutable`: it runs for many "
                  "runs at once; keep changing state in flux::Context or behind a mutex");
    static_assert(problem != ParamProblem::string_view,
                  "flux::Node::compensate: take `std::string` or `const std::string&`, not "
                  "`std::string_view`");
    static_assert(problem != ParamProblem::non_const_ref,
                  "flux::Node::compensate: a parameter cannot be a non-const reference (only "
                  "flux::Context& can); take it by value or by const reference");
    static_assert(problem != ParamProblem::no_codec,
                  "flux::Node::compensate: a parameter type has no flux::codec; for your struct "
                  "add FLUX_STRUCT(Type, field, ...) at global scope, or specialise flux::codec");
    using R = typename traits::result;
    static_assert(!std::is_same_v<std::remove_cvref_t<R>, ChildRun>,
                  "flux::Node::compensate: a compensation cannot return a child run");
    static_assert(result_has_codec<R>(),
                  "flux::Node::compensate: the result type has no flux::codec; return void or a "
                  "type with a codec");
    return values <= 2 && !traits::is_mutable && problem == ParamProblem::none &&
           !std::is_same_v<std::remove_cvref_t<R>, ChildRun> && result_has_codec<R>();
  }
}

template <class F>
std::shared_ptr<CompensationDef> make_compensation_def(F f) {
  using traits = callable_traits<F>;
  using R = typename traits::result;
  using Args = typename traits::args;
  constexpr std::size_t arity = std::tuple_size_v<Args>;
  constexpr std::size_t values = []<class... A>(std::tuple<A...>*) {
    return value_slots<A...>()[sizeof...(A)];
  }(static_cast<Args*>(nullptr));
  auto def = std::make_shared<CompensationDef>();
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (add_param_type<std::tuple_element_t<I, Args>>(def->params), ...);
  }
  (std::make_index_sequence<arity>{});
  auto fn = std::make_shared<F>(std::move(f));
  def->call = [fn](const Value& output, const Value& input, Context& ctx) -> Value {
    // Spread as a node's input is: one value parameter gets the output, two get both.
    const Value arg = values == 2 ? Value(Value::List{output, input}) : output;
    auto call = [&]() -> decltype(auto) {
      return invoke_with(*fn, arg, ctx, static_cast<Args*>(nullptr),
                         std::make_index_sequence<arity>{});
    };
    if constexpr (std::is_void_v<R>) {
      call();
      return Value{};
    } else if constexpr (is_future<R>::value) {
      auto fut = call();
      if constexpr (std::is_void_v<typename is_future<R>::value_type>) {
        fut.get();
        return Value{};
      } else {
        return encode_result(fut.get());
      }
    } else {
      return encode_result(call());
    }
  };
  return def;
}

/// Throws Error(invalid_argument), naming `where`, for a policy that cannot work.
void check_retry_policy(const RetryPolicy& policy, const std::string& where);

/// Throws Error(invalid_argument) for an empty name or a null callable.
void check_node_args(const std::string& name, bool callable_is_null);

}  // namespace detail

/// A named node. Cheap to copy (shares one immutable definition).
class Node {
 public:
  explicit Node(std::shared_ptr<const detail::NodeDef> def) noexcept : def_(std::move(def)) {}

  const std::string& name() const noexcept { return def_->name; }
  bool is_async() const noexcept { return def_->mode == detail::NodeMode::async; }
  bool is_blocking() const noexcept { return def_->mode == detail::NodeMode::blocking; }
  /// The types of the parameters fed from the input (Context parameters excluded).
  const std::vector<TypeInfo>& parameter_types() const noexcept { return def_->params; }
  const TypeInfo& result_type() const noexcept { return def_->result; }

  /// A copy of this node whose function runs on Flux's blocking-work pool instead of the
  /// actor scheduler. Use for code that sleeps, waits on locks or does blocking I/O.
  /// Throws Error(invalid_argument) for an async node (its future is already awaited off
  /// the scheduler).
  Node blocking() const;

  /// A copy of this node whose failed steps are executed again as `policy` says
  /// (`attempts` in all, waiting `backoff` in between), instead of as `Config::retry` says.
  /// ```cpp
  /// using namespace std::chrono_literals;
  /// auto fetch = flux::node("fetch", [](std::string url) { return http_get(url); })
  ///                  .retry({.attempts = 5, .backoff = flux::exponential(100ms, 2, 10s),
  ///                          .jitter = true});
  /// ```
  /// Throws Error(invalid_argument) for `attempts` 0, a negative wait or a multiplier below 1.
  Node retry(RetryPolicy policy) const;
  /// A copy of this node whose every attempt is bounded by `limit`. An async or
  /// `.blocking()` attempt that exceeds it is abandoned: recorded as failed (`node 'x'
  /// (step 0) timed out after 2.000 s`), retried if a retry policy says so, and its late
  /// result ignored (never recorded). A sync node cannot be preempted: it sees the limit in
  /// `ctx.deadline()` and `ctx.cancelled()`, and fails as timed out when it returns late.
  /// Throws Error(invalid_argument) unless `limit` is positive.
  Node timeout(std::chrono::milliseconds limit) const;
  /// A copy of this node whose completed steps are undone by `fn` when their run fails
  /// later, or is cancelled with `CancelOptions{.compensate = true}` (README, "Compensation").
  /// `fn` takes the step's recorded output, optionally followed by the step's input, and
  /// `flux::Context&` anywhere (the run's kv and shared state; `ctx.attempt()`):
  /// ```cpp
  /// auto reserve = flux::node("reserve", [](std::int64_t seats) { return seats * 100; })
  ///                    .compensate([](std::int64_t booking, std::int64_t seats,
  ///                                   flux::Context& ctx) {
  ///                      ctx.save("released", flux::Value::List{booking, seats});
  ///                    }, {.attempts = 3});
  /// ```
  /// The compensations of a failed run's completed steps run one at a time, newest first,
  /// on the blocking-work pool (a `std::future` result is waited for there); each attempt is
  /// a `compensate` history entry; a failed one is retried as `retry` says (one attempt
  /// unless given; its own policy, not the node's). A run whose compensations all succeed
  /// ends `compensated`; one whose compensation fails for good ends `compensation_failed`.
  /// Throws Error(type_mismatch) at composition time, naming the node, when the first
  /// parameter cannot take the node's result (or the second its input), and
  /// Error(invalid_argument) for a retry policy that cannot work. A callable that cannot be
  /// a compensation fails to compile with one `static_assert` saying what to change.
  template <class F>
  Node compensate(F fn, RetryPolicy retry = {}) const {
    if constexpr (detail::check_compensation<F>()) {
      bool is_null = false;
      if constexpr (std::is_pointer_v<F> || detail::is_std_function<F>::value) is_null = !fn;
      auto def = detail::make_compensation_def(std::move(fn));
      def->retry = std::move(retry);
      return with_compensation(std::move(def), is_null);
    } else {
      return *this;  // not instantiated past the failed static_assert
    }
  }
  /// The node's compensation (`compensate`), or null.
  const detail::CompensationDef* compensation() const noexcept { return def_->compensation.get(); }

  /// The node's own retry policy (unset: Config::retry applies) and timeout (0: none).
  const std::optional<RetryPolicy>& retry_policy() const noexcept { return def_->retry; }
  std::chrono::milliseconds timeout_limit() const noexcept { return def_->timeout; }

  const std::shared_ptr<const detail::NodeDef>& def() const noexcept { return def_; }

 private:
  /// Checks `def` against this node's types and returns the copy that has it.
  Node with_compensation(std::shared_ptr<detail::CompensationDef> def, bool is_null) const;

  std::shared_ptr<const detail::NodeDef> def_;
};

/// Makes a node from any callable whose parameter and result types have codecs.
/// Throws Error(invalid_argument) if `name` is empty or `f` is a null function pointer
/// or an empty std::function.
///
/// A callable that cannot be a node fails to compile with one `static_assert` saying
/// what to change: a generic lambda (`auto` parameters), a `mutable` lambda, a
/// `std::string_view` or non-const reference parameter, a type without a codec.
template <class F>
Node node(std::string name, F f) {
  if constexpr (detail::check_callable<F>()) {
    bool is_null = false;
    if constexpr (std::is_pointer_v<F> || detail::is_std_function<F>::value) is_null = !f;
    detail::check_node_args(name, is_null);
    return Node(detail::make_node_def(std::move(name), std::move(f)));
  } else {
    // Not instantiated past the failed static_assert, so that it is the only error.
    return Node(nullptr);
  }
}

}  // namespace flux
