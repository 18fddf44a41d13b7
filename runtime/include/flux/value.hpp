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

  /// A compact, JSON-like rendering for logs and error messages; strings are quoted and
  /// escaped, bytes print as b"hex". Output longer than `max_chars` is cut with "...".
  std::string to_string(std::size_t max_chars = std::string::npos) const;

  friend bool operator==(const Value& a, const Value& b) noexcept { return a.v_ == b.v_; }

 private:
  template <class I>
  static std::int64_t to_int64(I i) {
    if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
      if (i > static_cast<I>(INT64_MAX)) throw_unsigned_overflow(static_cast<std::uint64_t>(i));
    }
    return static_cast<std::int64_t>(i);
  }
  [[noreturn]] static void throw_unsigned_overflow(std::uint64_t v);

  std::variant<std::monostate, bool, std::int64_t, double, std::string, Bytes, List, Map> v_;
};

/// "expected <expected>, got <kind> <short rendering of actual>": the text of a TypeError.
std::string describe_mismatch(std::string_view expected, const Value& actual);

}  // namespace flux
