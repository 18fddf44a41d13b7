#pragma once
/// \file
/// `flux::codec<T>`: conversion between C++ types and `flux::Value`.
///
/// Every type a node takes or returns needs a codec. Provided: bool, all integer
/// types (range-checked), float and double, std::string (and string_view /
/// const char* for encoding), flux::Bytes, flux::Value itself, std::vector<T>,
/// std::map / std::unordered_map with string keys, std::optional<T> (null when
/// empty), std::tuple and std::pair (as lists), std::monostate (null), and user
/// structs declared with FLUX_STRUCT:
///
/// ```cpp
/// struct Order { std::string id; std::int64_t qty; };
/// FLUX_STRUCT(Order, id, qty)   // at namespace scope; encodes as {"id": ..., "qty": ...}
/// ```
///
/// Or specialise `flux::codec<T>` with the four static members below. A
/// decoding mismatch throws `flux::TypeError` whose text names the expected
/// and the actual type ("expected int64, got string \"abc\"").

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "flux/value.hpp"

namespace flux {

/// What is statically known about the Values of a C++ type; used to check
/// pipelines at composition time. `kind == nullopt` means "any Value".
struct TypeInfo {
  TypeInfo() = default;
  TypeInfo(std::optional<Kind> k, std::string n) : kind(k), name(std::move(n)) {}

  std::optional<Kind> kind;                 ///< nullopt: any kind (flux::Value)
  std::string name;                         ///< for messages: "int64", "list<string>", "Order"
  bool nullable = false;                    ///< also accepts null (std::optional)
  bool is_struct = false;                   ///< a FLUX_STRUCT: a map with fixed fields
  std::shared_ptr<const TypeInfo> element;  ///< list element / map value type, if known
  /// The outputs of a parallel, one per branch (then kind == list).
  std::vector<TypeInfo> branches;

  static TypeInfo any() { return TypeInfo{std::nullopt, "value"}; }
  static TypeInfo of(Kind k) { return TypeInfo{k, to_string(k)}; }
};

/// Whether a value described by `produced` can be decoded as `expected`
/// (conservative: returns true whenever it cannot be sure).
bool compatible(const TypeInfo& produced, const TypeInfo& expected) noexcept;

/// The primary template is undefined: a type without a codec fails to compile here.
template <class T, class Enable = void>
struct codec;

template <>
struct codec<Value> {
  static Value encode(const Value& v) { return v; }
  static Value decode(const Value& v) { return v; }
  static TypeInfo type() { return TypeInfo::any(); }
};

template <>
struct codec<std::monostate> {
  static Value encode(std::monostate) { return {}; }
  static std::monostate decode(const Value& v) {
    if (!v.is_null()) throw TypeError(describe_mismatch("null", v));
    return {};
  }
  static TypeInfo type() { return TypeInfo::of(Kind::null); }
};

template <>
struct codec<bool> {
  static Value encode(bool b) { return b; }
  static bool decode(const Value& v) { return v.as_bool(); }
  static TypeInfo type() { return TypeInfo::of(Kind::boolean); }
};

template <class I>
struct codec<I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>>> {
  static Value encode(I i) {
    return Value(
        static_cast<std::conditional_t<std::is_signed_v<I>, std::int64_t, std::uint64_t>>(i));
  }
  static I decode(const Value& v) {
    std::int64_t x = v.as_int();
    if constexpr (!std::is_same_v<I, std::int64_t>) {
      bool fits = std::is_signed_v<I>
                      ? (x >= static_cast<std::int64_t>(std::numeric_limits<I>::min()) &&
                         x <= static_cast<std::int64_t>(std::numeric_limits<I>::max()))
                      : (x >= 0 && static_cast<std::uint64_t>(x) <=
                                       static_cast<std::uint64_t>(std::numeric_limits<I>::max()));
      if (!fits) throw_out_of_range(x, sizeof(I), std::is_signed_v<I>);
    }
    return static_cast<I>(x);
  }
  static TypeInfo type() { return TypeInfo::of(Kind::int64); }

 private:
  [[noreturn]] static void throw_out_of_range(std::int64_t x, std::size_t bytes, bool is_signed) {
    throw TypeError("integer " + std::to_string(x) + " does not fit in " +
                    (is_signed ? "int" : "uint") + std::to_string(bytes * 8));
  }
};

template <class F>
struct codec<F, std::enable_if_t<std::is_floating_point_v<F>>> {
  static Value encode(F f) { return Value(static_cast<double>(f)); }
  static F decode(const Value& v) { return static_cast<F>(v.as_float()); }
  static TypeInfo type() { return TypeInfo::of(Kind::float64); }
};

template <>
struct codec<std::string> {
  static Value encode(const std::string& s) { return s; }
  static std::string decode(const Value& v) { return v.as_string(); }
  static TypeInfo type() { return TypeInfo::of(Kind::string); }
};

/// Encode-only: a node may return a string_view or a C string literal; it is copied.
template <>
struct codec<std::string_view> {
  static Value encode(std::string_view s) { return Value(s); }
  static TypeInfo type() { return TypeInfo::of(Kind::string); }
};
template <>
struct codec<const char*> {
  static Value encode(const char* s) { return Value(s); }
  static TypeInfo type() { return TypeInfo::of(Kind::string); }
};

/// Encode-only: string literals, as in `ctx.save("k", "text")` or `rt.run(p, "text")`.
template <std::size_t N>
struct codec<char[N]> {
  static Value encode(const char (&s)[N]) { return Value(std::string_view(s, N ? N - 1 : 0)); }
  static TypeInfo type() { return TypeInfo::of(Kind::string); }
};

template <>
struct codec<Bytes> {
  static Value encode(const Bytes& b) { return b; }
  static Bytes decode(const Value& v) { return v.as_bytes(); }
  static TypeInfo type() { return TypeInfo::of(Kind::bytes); }
};

namespace detail {
/// Whether `codec<T>` exists and can decode a Value into a T (string_view and const char*
/// can only be encoded: they would point into a Value that is gone after the call).
template <class T>
concept has_decoder = requires(const Value& v) {
  codec<T>::decode(v);
};
/// Whether `codec<T>` exists and can encode a T.
template <class T>
concept has_encoder = requires(const T& x) {
  codec<T>::encode(x);
};

template <class T>
inline constexpr bool is_integer_v = std::is_integral_v<T> && !std::is_same_v<T, bool>;

/// The name of integer type `I` as a user wrote it in a signature, for messages: "int",
/// "unsigned", "char", else by width ("int16", "uint8"; "int64" for std::int64_t).
/// A codec's TypeInfo says "int64" for every integer, which is what a Value holds.
template <class I>
constexpr const char* integer_name() {
  static_assert(is_integer_v<I>);
  constexpr std::size_t width = sizeof(I) == 1 ? 0 : sizeof(I) == 2 ? 1 : sizeof(I) == 4 ? 2 : 3;
  constexpr const char* signed_names[] = {"int8", "int16", "int32", "int64"};
  constexpr const char* unsigned_names[] = {"uint8", "uint16", "uint32", "uint64"};
  if constexpr (std::is_same_v<I, int>) {
    return "int";
  } else if constexpr (std::is_same_v<I, unsigned>) {
    return "unsigned";
  } else if constexpr (std::is_same_v<I, char>) {
    return "char";
  } else {
    return std::is_signed_v<I> ? signed_names[width] : unsigned_names[width];
  }
}

template <class T>
TypeInfo container_type(Kind k, const char* prefix) {
  TypeInfo elem = codec<T>::type();
  TypeInfo t{k, std::string(prefix) + "<" + elem.name + ">"};
  t.element = std::make_shared<const TypeInfo>(std::move(elem));
  return t;
}
/// Prefixes a TypeError from a nested decode with where it happened ("[3]: ", "key \"a\": ").
[[noreturn]] void rethrow_nested(const TypeError& e, const std::string& where);
}  // namespace detail

template <class T, class A>
struct codec<std::vector<T, A>, std::enable_if_t<!std::is_same_v<T, std::byte>>> {
  static Value encode(const std::vector<T, A>& xs) {
    Value::List out;
    out.reserve(xs.size());
    for (const auto& x : xs) out.push_back(codec<T>::encode(x));
    return out;
  }
  static std::vector<T, A> decode(const Value& v) {
    const auto& list =
        v.is_list() ? v.as_list() : throw TypeError(describe_mismatch(type().name, v));
    std::vector<T, A> out;
    out.reserve(list.size());
    for (std::size_t i = 0; i < list.size(); ++i) {
      try {
        out.push_back(codec<T>::decode(list[i]));
      } catch (const TypeError& e) {
        detail::rethrow_nested(e, "[" + std::to_string(i) + "]");
      }
    }
    return out;
  }
  static TypeInfo type() { return detail::container_type<T>(Kind::list, "list"); }
};

template <class M>
struct map_codec {
  using T = typename M::mapped_type;
  static Value encode(const M& m) {
    Value::Map out;
    for (const auto& [k, x] : m) out.emplace(k, codec<T>::encode(x));
    return out;
  }
  static M decode(const Value& v) {
    const auto& map = v.is_map() ? v.as_map() : throw TypeError(describe_mismatch(type().name, v));
    M out;
    for (const auto& [k, x] : map) {
      try {
        out.emplace(k, codec<T>::decode(x));
      } catch (const TypeError& e) {
        detail::rethrow_nested(e, "key \"" + k + "\"");
      }
    }
    return out;
  }
  static TypeInfo type() { return detail::container_type<T>(Kind::map, "map"); }
};
template <class T, class C, class A>
struct codec<std::map<std::string, T, C, A>> : map_codec<std::map<std::string, T, C, A>> {};
template <class T, class H, class E, class A>
struct codec<std::unordered_map<std::string, T, H, E, A>>
    : map_codec<std::unordered_map<std::string, T, H, E, A>> {};

template <class T>
struct codec<std::optional<T>> {
  static Value encode(const std::optional<T>& x) { return x ? codec<T>::encode(*x) : Value{}; }
  static std::optional<T> decode(const Value& v) {
    if (v.is_null()) return std::nullopt;
    return codec<T>::decode(v);
  }
  static TypeInfo type() {
    TypeInfo t = codec<T>::type();
    t.nullable = true;
    t.name = "optional<" + t.name + ">";
    return t;
  }
};

template <class... Ts>
struct codec<std::tuple<Ts...>> {
  static Value encode(const std::tuple<Ts...>& t) {
    return std::apply(
        [](const auto&... x) {
          return Value(Value::List{codec<std::decay_t<decltype(x)>>::encode(x)...});
        },
        t);
  }
  static std::tuple<Ts...> decode(const Value& v) {
    if (!v.is_list() || v.as_list().size() != sizeof...(Ts)) {
      throw TypeError(describe_mismatch(type().name, v));
    }
    return decode_items(v.as_list(), std::index_sequence_for<Ts...>{});
  }
  static TypeInfo type() {
    TypeInfo t{Kind::list, "tuple<"};
    std::size_t i = 0;
    ((t.name += (i++ ? ", " : "") + codec<Ts>::type().name), ...);
    t.name += ">";
    return t;
  }

 private:
  template <std::size_t... I>
  static std::tuple<Ts...> decode_items(const Value::List& l, std::index_sequence<I...>) {
    return std::tuple<Ts...>{decode_item<Ts>(l, I)...};
  }
  template <class T>
  static T decode_item(const Value::List& l, std::size_t i) {
    try {
      return codec<T>::decode(l[i]);
    } catch (const TypeError& e) {
      detail::rethrow_nested(e, "[" + std::to_string(i) + "]");
    }
  }
};

template <class A, class B>
struct codec<std::pair<A, B>> {
  static Value encode(const std::pair<A, B>& p) {
    return Value::List{codec<A>::encode(p.first), codec<B>::encode(p.second)};
  }
  static std::pair<A, B> decode(const Value& v) {
    auto t = codec<std::tuple<A, B>>::decode(v);
    return {std::move(std::get<0>(t)), std::move(std::get<1>(t))};
  }
  static TypeInfo type() { return codec<std::tuple<A, B>>::type(); }
};

template <class T>
T Value::as() const {
  return codec<T>::decode(*this);
}
template <class T>
Value Value::from(const T& x) {
  return codec<T>::encode(x);
}

namespace detail {
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

/// Helpers behind FLUX_STRUCT; not for direct use.
template <class T>
void encode_field(Value::Map& m, const char* name, const T& field) {
  m.emplace(name, codec<T>::encode(field));
}
template <class T>
void decode_field(const Value::Map& m, const char* type, const char* name, T& field) {
  auto it = m.find(std::string_view(name));
  if (it == m.end()) {
    if constexpr (is_optional<T>::value) {
      field = std::nullopt;
      return;
    } else {
      throw TypeError(std::string(type) + ": missing field \"" + name + "\"");
    }
  }
  try {
    field = codec<T>::decode(it->second);
  } catch (const TypeError& e) {
    rethrow_nested(e, std::string(type) + "." + name);
  }
}
}  // namespace detail

/// The input of a run started with `input...`: the value for one argument, the list of them
/// for several (spread over the first node's parameters), null for none.
template <class... In>
Value encode_arguments(const In&... input) {
  if constexpr (sizeof...(In) == 0) {
    return Value{};
  } else if constexpr (sizeof...(In) == 1) {
    return codec<In...>::encode(input...);
  } else {
    return Value(Value::List{codec<In>::encode(input)...});
  }
}

}  // namespace flux

#define FLUX_DETAIL_EXPAND(x) x
#define FLUX_DETAIL_FOR_EACH_1(m, x) m(x)
#define FLUX_DETAIL_FOR_EACH_2(m, x, ...) \
  m(x) FLUX_DETAIL_EXPAND(FLUX_DETAIL_FOR_EACH_1(m, __VA_ARGS__))
#define FLUX_DETAIL_FOR_EACH_3(m, x, ...) \
  m(x) FLUX_DETAIL_EXPAND(FLUX_DETAIL_FOR_EACH_2(m, __VA_ARGS__))
#define FLUX_DETAIL_FOR_EACH_4(m, x, ...) \
  m(x) FLUX_DETAIL_EXPAND(FLUX_DETAIL_FOR_EACH_3(m, __VA_ARGS__))
#define FLUX_DETAIL_FOR_EACH_5(m, x, ...) \
  m(x) FLUX_DETAIL_EXPAND(FLUX_DETAIL_FOR_EACH_4(m, __VA_ARGS__))
#define FLUX_DETAIL_FOR_EACH_6(m, x, ...) \
  m(x) FLUX_DETAIL_EXPAND(FLUX_DETAIL_FOR_EACH_5(m, __VA_ARGS__))
#define FLUX_DETAIL_FOR_EACH_7(m, x, ...) \
  m(x) FLUX_DETAIL_EXPAND(FLUX_DETAIL_FOR_EACH_6(m, __VA_ARGS__))
#define FLUX_DETAIL_FOR_EACH_8(m, x, ...) \
  m(x) FLUX_DETAIL_EXPAND(FLUX_DETAIL_FOR_EACH_7(m, __VA_ARGS__))
#define FLUX_DETAIL_FOR_EACH_9(m, x, ...) \
  m(x) FLUX_DETAIL_EXPAND(FLUX_DETAIL_FOR_EACH_8(m, __VA_ARGS__))
#define FLUX_DETAIL_FOR_EACH_10(m, x, ...) \
  m(x) FLUX_DETAIL_EXPAND(FLUX_DETAIL_FOR_EACH_9(m, __VA_ARGS__))
#define FLUX_DETAIL_FOR_EACH_11(m, x, ...) \
  m(x) FLUX_DETAIL_EXPAND(FLUX_DETAIL_FOR_EACH_10(m, __VA_ARGS__))
#define FLUX_DETAIL_FOR_EACH_12(m, x, ...) \
  m(x) FLUX_DETAIL_EXPAND(FLUX_DETAIL_FOR_EACH_11(m, __VA_ARGS__))
#define FLUX_DETAIL_PICK(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, NAME, ...) NAME
#define FLUX_DETAIL_FOR_EACH(m, ...)                                                          \
  FLUX_DETAIL_EXPAND(FLUX_DETAIL_PICK(                                                        \
      __VA_ARGS__, FLUX_DETAIL_FOR_EACH_12, FLUX_DETAIL_FOR_EACH_11, FLUX_DETAIL_FOR_EACH_10, \
      FLUX_DETAIL_FOR_EACH_9, FLUX_DETAIL_FOR_EACH_8, FLUX_DETAIL_FOR_EACH_7,                 \
      FLUX_DETAIL_FOR_EACH_6, FLUX_DETAIL_FOR_EACH_5, FLUX_DETAIL_FOR_EACH_4,                 \
      FLUX_DETAIL_FOR_EACH_3, FLUX_DETAIL_FOR_EACH_2, FLUX_DETAIL_FOR_EACH_1)(m, __VA_ARGS__))
#define FLUX_DETAIL_ENCODE_FIELD(f) ::flux::detail::encode_field(m, #f, x.f);
#define FLUX_DETAIL_DECODE_FIELD(f) ::flux::detail::decode_field(m, type_name, #f, x.f);

/// Declares `flux::codec<Type>` for a struct with up to 12 public fields, encoded as a map
/// from field name to value. Use at global namespace scope with the fully qualified type.
/// Decoding a map that lacks a non-optional field throws TypeError naming the field;
/// unknown extra keys are ignored (so records can gain fields).
#define FLUX_STRUCT(Type, ...)                                                       \
  template <>                                                                        \
  struct flux::codec<Type> {                                                         \
    static ::flux::Value encode(const Type& x) {                                     \
      ::flux::Value::Map m;                                                          \
      FLUX_DETAIL_FOR_EACH(FLUX_DETAIL_ENCODE_FIELD, __VA_ARGS__)                    \
      return m;                                                                      \
    }                                                                                \
    static Type decode(const ::flux::Value& v) {                                     \
      static constexpr const char* type_name = #Type;                                \
      if (!v.is_map()) throw ::flux::TypeError(::flux::describe_mismatch(#Type, v)); \
      const auto& m = v.as_map();                                                    \
      Type x{};                                                                      \
      FLUX_DETAIL_FOR_EACH(FLUX_DETAIL_DECODE_FIELD, __VA_ARGS__)                    \
      return x;                                                                      \
    }                                                                                \
    static ::flux::TypeInfo type() {                                                 \
      ::flux::TypeInfo t{::flux::Kind::map, #Type};                                  \
      t.is_struct = true;                                                            \
      return t;                                                                      \
    }                                                                                \
  };
