#pragma once
/// \file
/// `flux::Value`: the data that flows between nodes and into the store.
///
/// A Value is one of null, bool, int64, float64, string (UTF-8 text), bytes,
/// list of Values, or map from string to Value — exactly the cases of the
/// Cap'n Proto schema's `Value`, so anything a node returns can be recorded and
/// sent to another machine.
///
/// ```cpp
/// flux::Value v = flux::Value::Map{{"n", 42}, {"tags", flux::Value::List{"a", "b"}}};
/// std::int64_t n = v.at("n").as_int();      // 42
/// std::string s = v.to_string();            // {"n": 42, "tags": ["a", "b"]}
/// ```
///
/// Thread safety: a Value is a plain value type. Concurrent reads are safe;
/// concurrent writes to one Value need external synchronisation.
///
/// Depth: a Value may nest lists and maps at most `k_max_value_depth` (60) levels deep
/// wherever it enters Flux (see there). Building, copying, comparing, printing and destroying
/// a deeper Value is still safe -- none of them recurses -- so a too-deep value is refused with
/// an error, never a stack overflow.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "flux/error.hpp"

namespace flux {

/// The deepest nesting of lists and maps a Value may have where it enters Flux: a run's input,
/// a node's output (also a parallel's gathered outputs), and what a node stores through
/// `Context::save` and `SharedState::set/update`. A scalar has depth 0, a list or map of
/// scalars (or an empty one) depth 1, `[[1]]` depth 2. A deeper value is refused where it
/// enters, with a `flux::Error` naming where (run input, node and step, key), its depth and
/// this limit; a run input is refused before anything runs.
///
/// Why 60: far deeper than real data (JSON documents rarely nest 20 levels), and small enough
/// that the recursive parts of Flux -- the record codec, user codecs -- stay a few kilobytes
/// of stack on any thread, and that the stored format reads every such value back: Cap'n
/// Proto spends up to three nesting levels per map, so the reader's nesting limit is 188.
/// One limit for every store, so a pipeline that works in memory works on Redis.
inline constexpr std::size_t k_max_value_depth = 60;

/// Raw binary data (not text). Encoded as the schema's `Data`.
using Bytes = std::vector<std::byte>;

/// The cases of a Value, in schema order.
enum class Kind : std::uint8_t { null, boolean, int64, float64, string, bytes, list, map };

/// Returns the schema name of `kind`: "null", "bool", "int64", "float64", "string", "bytes",
/// "list" or "map".
const char* to_string(Kind kind) noexcept;

class Value {
 public:
  using List = std::vector<Value>;
  /// Keys are ordered, so equal maps print and serialize identically.
  using Map = std::map<std::string, Value, std::less<>>;

  Value() noexcept = default;  ///< null
  Value(std::nullptr_t) noexcept {}
  Value(bool b) noexcept : v_(b) {}
  /// Any integer type except bool; unsigned values above INT64_MAX throw TypeError.
  template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool> &&
                                          !std::is_same_v<I, char>,
                                      int> = 0>
  Value(I i) : v_(to_int64(i)) {}
  Value(double d) noexcept : v_(d) {}
  Value(float f) noexcept : v_(static_cast<double>(f)) {}
  Value(std::string s) noexcept : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(Bytes b) noexcept : v_(std::move(b)) {}
  Value(List l) noexcept : v_(std::move(l)) {}
  Value(Map m) noexcept : v_(std::move(m)) {}

  // The special members never recurse into nested lists/maps (they walk them with an explicit
  // stack), so a Value of any depth -- even one far beyond k_max_value_depth that a user built
  // -- is copied, assigned and destroyed without overflowing the thread's stack.
  // Scalars, strings and bytes take the inline fast path: most Values a pipeline moves
  // around are those, and these members run several times per step.
  Value(const Value& other) {
    if (other.kind() < Kind::list) {
      v_ = other.v_;
    } else {
      copy_containers(other);
    }
  }
  Value(Value&& other) noexcept = default;  // takes the containers over: no recursion
  Value& operator=(const Value& other);
  /// Also safe when `other` lives inside `*this` (`v = std::move(v.as_list()[0])`).
  Value& operator=(Value&& other) noexcept {
    if (kind() < Kind::list && this != &other) {
      v_ = std::move(other.v_);  // the old contents own nothing `other` could live in
      return *this;
    }
    return move_assign_slow(std::move(other));
  }
  ~Value() {
    if (kind() >= Kind::list && holds_nested_containers()) dismantle();
    // What is left is a scalar, or a list/map of scalars and empty containers: the variant's
    // destructor frees it without going deeper than one level.
  }

  Kind kind() const noexcept { return static_cast<Kind>(v_.index()); }
  bool is_null() const noexcept { return kind() == Kind::null; }
  bool is_bool() const noexcept { return kind() == Kind::boolean; }
  bool is_int() const noexcept { return kind() == Kind::int64; }
  bool is_float() const noexcept { return kind() == Kind::float64; }
  bool is_string() const noexcept { return kind() == Kind::string; }
  bool is_bytes() const noexcept { return kind() == Kind::bytes; }
  bool is_list() const noexcept { return kind() == Kind::list; }
  bool is_map() const noexcept { return kind() == Kind::map; }

  /// Accessors: each throws TypeError ("expected int64, got string \"abc\"") on another kind.
  bool as_bool() const;
  std::int64_t as_int() const;
  /// Accepts int64 as well (widened), since JSON-like data rarely distinguishes them.
  double as_float() const;
  const std::string& as_string() const;
  const Bytes& as_bytes() const;
  const List& as_list() const;
  const Map& as_map() const;
  List& as_list();
  Map& as_map();

  /// Map lookup; throws Error(not_found) naming the key if it is absent, TypeError if not a map.
  const Value& at(std::string_view key) const;
  /// List element; throws Error(invalid_argument) if out of range, TypeError if not a list.
  const Value& at(std::size_t index) const;

  /// Converts to T through `flux::codec<T>` (include <flux/codec.hpp>).
  template <class T>
  T as() const;
  /// Converts from T through `flux::codec<T>` (include <flux/codec.hpp>).
  template <class T>
  static Value from(const T& x);

  /// Levels of nested lists and maps: 0 for a scalar, 1 for a list or map whose elements are
  /// scalars (or that is empty), and so on. Iterative: safe for any depth.
  std::size_t depth() const;

  /// A compact, JSON-like rendering for logs and error messages; strings are quoted and
  /// escaped, bytes print as b"hex". Output longer than `max_chars` is cut with "...".
  std::string to_string(std::size_t max_chars = std::string::npos) const;

  /// Deep equality (kinds and contents; float64 compares as double, so NaN != NaN).
  /// Iterative: safe for any depth. Not noexcept: it allocates its work stack.
  friend bool operator==(const Value& a, const Value& b);

 private:
  template <class I>
  static std::int64_t to_int64(I i) {
    if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
      if (i > static_cast<I>(INT64_MAX)) throw_unsigned_overflow(static_cast<std::uint64_t>(i));
    }
    return static_cast<std::int64_t>(i);
  }
  [[noreturn]] static void throw_unsigned_overflow(std::uint64_t v);
  // The copy constructor's and move assignment's paths for lists and maps (value.cpp).
  void copy_containers(const Value& other);
  Value& move_assign_slow(Value&& other) noexcept;
  // True if this is a list or map holding a non-empty list or map: destroying it by the
  // containers' own destructors would recurse.
  bool holds_nested_containers() const noexcept;
  // Destroys the nested containers bottom-up with an explicit stack (see ~Value).
  void dismantle() noexcept;

  std::variant<std::monostate, bool, std::int64_t, double, std::string, Bytes, List, Map> v_;
};

/// "expected <expected>, got <kind> <short rendering of actual>": the text of a TypeError.
std::string describe_mismatch(std::string_view expected, const Value& actual);

}  // namespace flux
