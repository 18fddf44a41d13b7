// flux::Value and flux::codec<T>: round trips, range checks, mismatch texts,
// renderings, equality and the composition-time type compatibility check.

#include <gtest/gtest.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <flux/flux.hpp>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace valuetest {

struct Order {
  std::string id;
  std::int64_t qty = 0;
};

struct Line {
  std::string sku;
  std::int64_t qty = 0;
};

struct Invoice {
  std::string id;
  std::vector<Line> lines;
  std::optional<std::string> note;
};

}  // namespace valuetest

FLUX_STRUCT(valuetest::Order, id, qty)
FLUX_STRUCT(valuetest::Line, sku, qty)
FLUX_STRUCT(valuetest::Invoice, id, lines, note)

namespace {

using flux::Value;

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

struct Caught {
  flux::Errc code;
  std::string what;
};

/// Runs `f` and returns the code and text of the `E` it throws (nullopt if it throws nothing).
template <class E = flux::Error, class F>
std::optional<Caught> catch_error(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return Caught{e.code(), e.what()};
  }
  return std::nullopt;
}

template <class T>
T round_trip(const T& x) {
  return Value::from(x).template as<T>();
}

// ---------------------------------------------------------------- kinds and scalars

TEST(Value, DefaultConstructedValueIsNull) {
  Value v;
  EXPECT_TRUE(v.is_null());
  EXPECT_EQ(v.kind(), flux::Kind::null);
  EXPECT_EQ(Value(nullptr), v);
  EXPECT_EQ(v.to_string(), "null");
}

TEST(Value, EachConstructorProducesItsKind) {
  EXPECT_EQ(Value(true).kind(), flux::Kind::boolean);
  EXPECT_EQ(Value(42).kind(), flux::Kind::int64);
  EXPECT_EQ(Value(std::uint8_t{7}).kind(), flux::Kind::int64);
  EXPECT_EQ(Value(1.5).kind(), flux::Kind::float64);
  EXPECT_EQ(Value(1.5f).kind(), flux::Kind::float64);
  EXPECT_EQ(Value("abc").kind(), flux::Kind::string);
  EXPECT_EQ(Value(std::string("abc")).kind(), flux::Kind::string);
  EXPECT_EQ(Value(std::string_view("abc")).kind(), flux::Kind::string);
  EXPECT_EQ(Value(flux::Bytes{std::byte{1}}).kind(), flux::Kind::bytes);
  EXPECT_EQ(Value(Value::List{}).kind(), flux::Kind::list);
  EXPECT_EQ(Value(Value::Map{}).kind(), flux::Kind::map);
}

TEST(Value, KindNamesAreTheSchemaNames) {
  EXPECT_STREQ(flux::to_string(flux::Kind::null), "null");
  EXPECT_STREQ(flux::to_string(flux::Kind::boolean), "bool");
  EXPECT_STREQ(flux::to_string(flux::Kind::int64), "int64");
  EXPECT_STREQ(flux::to_string(flux::Kind::float64), "float64");
  EXPECT_STREQ(flux::to_string(flux::Kind::string), "string");
  EXPECT_STREQ(flux::to_string(flux::Kind::bytes), "bytes");
  EXPECT_STREQ(flux::to_string(flux::Kind::list), "list");
  EXPECT_STREQ(flux::to_string(flux::Kind::map), "map");
}

TEST(Value, ErrorCodeNamesAreStableLowerCase) {
  EXPECT_STREQ(flux::to_string(flux::Errc::invalid_argument), "invalid_argument");
  EXPECT_STREQ(flux::to_string(flux::Errc::type_mismatch), "type_mismatch");
  EXPECT_STREQ(flux::to_string(flux::Errc::node_failed), "node_failed");
  EXPECT_STREQ(flux::to_string(flux::Errc::not_found), "not_found");
  EXPECT_STREQ(flux::to_string(flux::Errc::storage), "storage");
}

TEST(Codec, SignedAndUnsignedIntegersRoundTripAtTheirLimits) {
  EXPECT_EQ(round_trip<std::int64_t>(0), 0);
  EXPECT_EQ(round_trip<std::int64_t>(-42), -42);
  EXPECT_EQ(round_trip<std::int64_t>(std::numeric_limits<std::int64_t>::max()),
            std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(round_trip<std::int64_t>(std::numeric_limits<std::int64_t>::min()),
            std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(round_trip<std::int32_t>(-2147483647 - 1), -2147483647 - 1);
  EXPECT_EQ(round_trip<std::int8_t>(-128), -128);
  EXPECT_EQ(round_trip<std::uint8_t>(255), 255);
  EXPECT_EQ(round_trip<std::uint16_t>(65535), 65535);
  EXPECT_EQ(round_trip<std::uint32_t>(4294967295u), 4294967295u);
  EXPECT_EQ(round_trip<std::uint64_t>(9223372036854775807ull), 9223372036854775807ull);
  EXPECT_EQ(round_trip<int>(12345), 12345);
  EXPECT_EQ(Value::from(std::uint16_t{513}), Value(513));
  EXPECT_EQ(Value(7).as<std::int64_t>(), 7);
  EXPECT_EQ(Value(7).as_int(), 7);
}

TEST(Codec, IntegerOutOfRangeForTheTargetTypeThrowsTypeErrorNamingValueAndType) {
  auto e = catch_error<flux::TypeError>([] { (void)Value(300).as<std::uint8_t>(); });
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, flux::Errc::type_mismatch);
  EXPECT_TRUE(Contains(e->what, "300"));
  EXPECT_TRUE(Contains(e->what, "uint8"));

  e = catch_error<flux::TypeError>([] { (void)Value(-129).as<std::int8_t>(); });
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(Contains(e->what, "-129"));
  EXPECT_TRUE(Contains(e->what, "int8"));

  e = catch_error<flux::TypeError>([] { (void)Value(-1).as<std::uint32_t>(); });
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(Contains(e->what, "-1"));
  EXPECT_TRUE(Contains(e->what, "uint32"));

  e = catch_error<flux::TypeError>([] { (void)Value(65536).as<std::uint16_t>(); });
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(Contains(e->what, "65536"));
  EXPECT_TRUE(Contains(e->what, "uint16"));
}

TEST(Codec, UnsignedValueAboveInt64MaxCannotBecomeAValue) {
  auto e =
      catch_error<flux::TypeError>([] { (void)Value(std::numeric_limits<std::uint64_t>::max()); });
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, flux::Errc::type_mismatch);
  EXPECT_TRUE(Contains(e->what, "18446744073709551615"));
  // INT64_MAX itself still fits.
  EXPECT_EQ(Value(static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())).as_int(),
            std::numeric_limits<std::int64_t>::max());
}

TEST(Codec, FloatingPointRoundTripsAndIntegersWidenToFloat) {
  EXPECT_DOUBLE_EQ(round_trip<double>(3.25), 3.25);
  EXPECT_DOUBLE_EQ(round_trip<double>(-0.5), -0.5);
  EXPECT_DOUBLE_EQ(round_trip<double>(0.0), 0.0);
  EXPECT_FLOAT_EQ(round_trip<float>(1.5f), 1.5f);
  EXPECT_DOUBLE_EQ(Value(3).as<double>(), 3.0);
  EXPECT_DOUBLE_EQ(Value(3).as_float(), 3.0);
  EXPECT_TRUE(Value::from(2.0).is_float());
}

TEST(Codec, FloatIsNotAcceptedWhereAnInt64IsExpected) {
  auto e = catch_error<flux::TypeError>([] { (void)Value(2.5).as<std::int64_t>(); });
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(Contains(e->what, "expected int64"));
  EXPECT_TRUE(Contains(e->what, "float64"));
}

TEST(Codec, BooleansRoundTripAndFalseIsNotNullOrZero) {
  EXPECT_TRUE(round_trip<bool>(true));
  EXPECT_FALSE(round_trip<bool>(false));
  Value f = Value::from(false);
  EXPECT_TRUE(f.is_bool());
  EXPECT_FALSE(f.is_null());
  EXPECT_FALSE(f.as_bool());
  EXPECT_NE(f, Value(0));
  EXPECT_NE(f, Value());
  auto e = catch_error<flux::TypeError>([] { (void)Value(1).as<bool>(); });
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(Contains(e->what, "expected bool"));
  EXPECT_TRUE(Contains(e->what, "int64"));
}

TEST(Codec, ZeroAndEmptyStringAreValuesNotNull) {
  Value zero = Value::from(std::int64_t{0});
  EXPECT_TRUE(zero.is_int());
  EXPECT_EQ(zero.as<std::int64_t>(), 0);
  EXPECT_NE(zero, Value());
  Value empty = Value::from(std::string());
  EXPECT_TRUE(empty.is_string());
  EXPECT_EQ(empty.as<std::string>(), "");
  EXPECT_NE(empty, Value());
  EXPECT_EQ(empty.to_string(), "\"\"");
}

TEST(Codec, StringsRoundTripIncludingUnicodeAndVeryLongText) {
  const std::string unicode = "héllo wörld ✓ 日本語 🚀";
  EXPECT_EQ(round_trip(unicode), unicode);
  EXPECT_EQ(Value(unicode).as_string().size(), unicode.size());

  const std::string long_text(100000, 'z');
  Value v = Value::from(long_text);
  EXPECT_EQ(v.as<std::string>().size(), 100000u);
  EXPECT_EQ(v.as<std::string>(), long_text);

  EXPECT_EQ(Value("abc"), Value(std::string("abc")));
  EXPECT_EQ(Value::from(std::string_view("sv")), Value("sv"));
  const char* c = "cstr";
  EXPECT_EQ(Value::from(c), Value("cstr"));
}

TEST(Codec, BytesRoundTripAndAreDistinctFromStrings) {
  flux::Bytes raw{std::byte{0x00}, std::byte{0xff}, std::byte{0x10}};
  EXPECT_EQ(round_trip(raw), raw);
  Value v = Value::from(raw);
  EXPECT_TRUE(v.is_bytes());
  EXPECT_EQ(v.as_bytes().size(), 3u);
  EXPECT_NE(v, Value(std::string("\x00\xff\x10", 3)));
  auto e = catch_error<flux::TypeError>([] { (void)Value("text").as<flux::Bytes>(); });
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(Contains(e->what, "expected bytes"));
}

TEST(Codec, MismatchTextNamesExpectedAndActualType) {
  auto e = catch_error<flux::TypeError>([] { (void)Value("abc").as<std::int64_t>(); });
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, flux::Errc::type_mismatch);
  EXPECT_TRUE(Contains(e->what, "expected int64"));
  EXPECT_TRUE(Contains(e->what, "string"));
  EXPECT_EQ(e->what, "expected int64, got string \"abc\"");

  EXPECT_EQ(flux::describe_mismatch("int64", Value("abc")), "expected int64, got string \"abc\"");

  auto accessor = catch_error<flux::TypeError>([] { (void)Value("abc").as_int(); });
  ASSERT_TRUE(accessor.has_value());
  EXPECT_EQ(accessor->what, "expected int64, got string \"abc\"");

  auto list = catch_error<flux::TypeError>([] { (void)Value(Value::List{1}).as_map(); });
  ASSERT_TRUE(list.has_value());
  EXPECT_TRUE(Contains(list->what, "expected map"));
  EXPECT_TRUE(Contains(list->what, "list"));

  auto null = catch_error<flux::TypeError>([] { (void)Value().as<std::string>(); });
  ASSERT_TRUE(null.has_value());
  EXPECT_TRUE(Contains(null->what, "expected string"));
  EXPECT_TRUE(Contains(null->what, "null"));
}

// ---------------------------------------------------------------- containers

TEST(Codec, VectorsRoundTripAsLists) {
  std::vector<std::int64_t> xs{3, 1, 2};
  EXPECT_EQ(round_trip(xs), xs);
  EXPECT_EQ(Value::from(xs), Value(Value::List{3, 1, 2}));
  std::vector<std::string> names{"a", "", "c"};
  EXPECT_EQ(round_trip(names), names);
  EXPECT_TRUE(round_trip(std::vector<std::int64_t>{}).empty());
  EXPECT_EQ(Value::from(std::vector<std::int64_t>{}), Value(Value::List{}));
}

TEST(Codec, NestedMismatchNamesThePathToTheBadElement) {
  Value v = Value::List{1, "x"};
  auto e = catch_error<flux::TypeError>([&] { (void)v.as<std::vector<std::int64_t>>(); });
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(Contains(e->what, "[1]"));
  EXPECT_TRUE(Contains(e->what, "expected int64"));
  EXPECT_TRUE(Contains(e->what, "string"));

  Value m = Value::Map{{"good", 1}, {"bad", Value::List{}}};
  auto em =
      catch_error<flux::TypeError>([&] { (void)m.as<std::map<std::string, std::int64_t>>(); });
  ASSERT_TRUE(em.has_value());
  EXPECT_TRUE(Contains(em->what, "bad"));
  EXPECT_TRUE(Contains(em->what, "expected int64"));

  auto not_list =
      catch_error<flux::TypeError>([] { (void)Value(5).as<std::vector<std::int64_t>>(); });
  ASSERT_TRUE(not_list.has_value());
  EXPECT_TRUE(Contains(not_list->what, "list<int64>"));
  EXPECT_TRUE(Contains(not_list->what, "int64"));
}

TEST(Codec, OrderedAndUnorderedMapsRoundTripAsMaps) {
  std::map<std::string, std::int64_t> m{{"b", 2}, {"a", 1}};
  EXPECT_EQ(round_trip(m), m);
  EXPECT_EQ(Value::from(m), Value(Value::Map{{"a", 1}, {"b", 2}}));

  std::unordered_map<std::string, std::string> u{{"x", "1"}, {"y", "2"}};
  EXPECT_EQ(round_trip(u), u);
  Value uv = Value::from(u);
  ASSERT_TRUE(uv.is_map());
  EXPECT_EQ(uv.at("x"), Value("1"));
  EXPECT_EQ(uv.at("y"), Value("2"));

  std::map<std::string, Value> any{{"n", 1}, {"s", "t"}};
  EXPECT_EQ(round_trip(any), any);
  EXPECT_TRUE(round_trip(std::map<std::string, std::int64_t>{}).empty());
}

TEST(Codec, OptionalEncodesEmptyAsNullAndDecodesNullAsEmpty) {
  EXPECT_TRUE(Value::from(std::optional<std::int64_t>{}).is_null());
  EXPECT_EQ(Value::from(std::optional<std::int64_t>{5}), Value(5));
  EXPECT_EQ(Value().as<std::optional<std::int64_t>>(), std::nullopt);
  EXPECT_EQ(Value(5).as<std::optional<std::int64_t>>(), std::optional<std::int64_t>{5});
  EXPECT_EQ(round_trip(std::optional<std::string>{"s"}), std::optional<std::string>{"s"});
  auto e = catch_error<flux::TypeError>([] { (void)Value("x").as<std::optional<std::int64_t>>(); });
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(Contains(e->what, "expected int64"));
}

TEST(Codec, TuplesAndPairsRoundTripAsLists) {
  std::tuple<std::int64_t, std::string, bool> t{1, "a", true};
  EXPECT_EQ(Value::from(t), Value(Value::List{1, "a", true}));
  EXPECT_EQ(round_trip(t), t);

  std::pair<std::string, double> p{"pi", 3.5};
  EXPECT_EQ(Value::from(p), Value(Value::List{"pi", 3.5}));
  EXPECT_EQ(round_trip(p), p);

  auto wrong_size = catch_error<flux::TypeError>([] {
    (void)Value(Value::List{1, "a"}).as<std::tuple<std::int64_t, std::string, bool>>();
  });
  ASSERT_TRUE(wrong_size.has_value());
  EXPECT_TRUE(Contains(wrong_size->what, "tuple<int64, string, bool>"));

  auto wrong_item = catch_error<flux::TypeError>([] {
    (void)Value(Value::List{1, 2}).as<std::pair<std::int64_t, std::string>>();
  });
  ASSERT_TRUE(wrong_item.has_value());
  EXPECT_TRUE(Contains(wrong_item->what, "[1]"));
  EXPECT_TRUE(Contains(wrong_item->what, "expected string"));
}

TEST(Codec, FluxStructEncodesAsAMapOfItsFields) {
  valuetest::Order o{"A-1", 3};
  Value v = Value::from(o);
  EXPECT_EQ(v, Value(Value::Map{{"id", "A-1"}, {"qty", 3}}));
  auto back = v.as<valuetest::Order>();
  EXPECT_EQ(back.id, "A-1");
  EXPECT_EQ(back.qty, 3);

  // Extra keys are ignored so records can gain fields.
  Value wider = Value::Map{{"id", "B"}, {"qty", 9}, {"extra", true}};
  EXPECT_EQ(wider.as<valuetest::Order>().qty, 9);

  flux::TypeInfo t = flux::codec<valuetest::Order>::type();
  EXPECT_TRUE(t.is_struct);
  EXPECT_EQ(t.kind, flux::Kind::map);
  EXPECT_TRUE(Contains(t.name, "Order"));
}

TEST(Codec, FluxStructMissingFieldNamesTheField) {
  Value v = Value::Map{{"id", "A-1"}};
  auto e = catch_error<flux::TypeError>([&] { (void)v.as<valuetest::Order>(); });
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(Contains(e->what, "missing field"));
  EXPECT_TRUE(Contains(e->what, "qty"));
  EXPECT_TRUE(Contains(e->what, "Order"));

  auto not_map = catch_error<flux::TypeError>([] { (void)Value(1).as<valuetest::Order>(); });
  ASSERT_TRUE(not_map.has_value());
  EXPECT_TRUE(Contains(not_map->what, "Order"));
  EXPECT_TRUE(Contains(not_map->what, "int64"));
}

TEST(Codec, FluxStructWithNestedStructsAndOptionalFieldsRoundTrips) {
  valuetest::Invoice inv{"INV-7", {{"apple", 2}, {"pear", 5}}, std::nullopt};
  Value v = Value::from(inv);
  EXPECT_EQ(v.at("lines").at(std::size_t{1}).at("sku"), Value("pear"));
  EXPECT_TRUE(v.at("note").is_null());
  auto back = v.as<valuetest::Invoice>();
  EXPECT_EQ(back.id, "INV-7");
  ASSERT_EQ(back.lines.size(), 2u);
  EXPECT_EQ(back.lines[0].sku, "apple");
  EXPECT_EQ(back.lines[1].qty, 5);
  EXPECT_FALSE(back.note.has_value());

  // An absent optional field decodes as empty.
  Value no_note = Value::Map{{"id", "X"}, {"lines", Value::List{}}};
  auto x = no_note.as<valuetest::Invoice>();
  EXPECT_FALSE(x.note.has_value());
  EXPECT_TRUE(x.lines.empty());

  // A mismatch deep inside names the way there.
  Value bad =
      Value::Map{{"id", "X"}, {"lines", Value::List{Value::Map{{"sku", "a"}, {"qty", "many"}}}}};
  auto e = catch_error<flux::TypeError>([&] { (void)bad.as<valuetest::Invoice>(); });
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(Contains(e->what, "lines"));
  EXPECT_TRUE(Contains(e->what, "[0]"));
  EXPECT_TRUE(Contains(e->what, "qty"));
  EXPECT_TRUE(Contains(e->what, "expected int64"));
}

TEST(Codec, NestedStructuresRoundTrip) {
  using Nested = std::vector<std::map<std::string, std::vector<std::int64_t>>>;
  Nested n{{{"a", {1, 2}}, {"b", {}}}, {}, {{"c", {3}}}};
  EXPECT_EQ(round_trip(n), n);
  Value v = Value::from(n);
  EXPECT_EQ(v.to_string(), "[{\"a\": [1, 2], \"b\": []}, {}, {\"c\": [3]}]");
  EXPECT_EQ(v.at(std::size_t{2}).at("c").at(std::size_t{0}), Value(3));
}

TEST(Codec, TwoHundredLevelsOfNestedListsKeepTheirShape) {
  Value v = Value::List{7};
  for (int i = 1; i < 200; ++i) v = Value::List{v};
  Value copy = v;
  EXPECT_EQ(copy, v);

  int depth = 0;
  const Value* cur = &v;
  while (cur->is_list()) {
    ++depth;
    ASSERT_EQ(cur->as_list().size(), 1u);
    cur = &cur->as_list()[0];
  }
  EXPECT_EQ(depth, 200);
  EXPECT_EQ(*cur, Value(7));
  EXPECT_EQ(v.to_string(), std::string(200, '[') + "7" + std::string(200, ']'));

  Value other = Value::List{8};
  for (int i = 1; i < 200; ++i) other = Value::List{other};
  EXPECT_NE(other, v);
}

TEST(Codec, EmptyContainersRoundTrip) {
  EXPECT_EQ(Value(Value::List{}).to_string(), "[]");
  EXPECT_EQ(Value(Value::Map{}).to_string(), "{}");
  EXPECT_TRUE(round_trip(std::vector<std::string>{}).empty());
  EXPECT_TRUE(round_trip(std::unordered_map<std::string, std::int64_t>{}).empty());
  EXPECT_TRUE(round_trip(flux::Bytes{}).empty());
  EXPECT_NE(Value(Value::List{}), Value(Value::Map{}));
  EXPECT_NE(Value(Value::List{}), Value());
}

TEST(Codec, ValueAndMonostateCodecsPassThroughAndRequireNull) {
  Value v = Value::Map{{"k", Value::List{1, "two"}}};
  EXPECT_EQ(Value::from(v), v);
  EXPECT_EQ(v.as<Value>(), v);
  EXPECT_TRUE(Value::from(std::monostate{}).is_null());
  EXPECT_NO_THROW((void)Value().as<std::monostate>());
  auto e = catch_error<flux::TypeError>([] { (void)Value(1).as<std::monostate>(); });
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(Contains(e->what, "expected null"));
}

// ---------------------------------------------------------------- access, rendering, equality

TEST(Value, AtLooksUpMapKeysAndListIndexesWithClearErrors) {
  Value v = Value::Map{{"n", 42}, {"tags", Value::List{"a", "b"}}};
  EXPECT_EQ(v.at("n").as_int(), 42);
  EXPECT_EQ(v.at("tags").at(std::size_t{1}).as_string(), "b");

  auto missing = catch_error([&] { (void)v.at("nope"); });
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->code, flux::Errc::not_found);
  EXPECT_TRUE(Contains(missing->what, "nope"));

  auto out_of_range = catch_error([&] { (void)v.at("tags").at(std::size_t{5}); });
  ASSERT_TRUE(out_of_range.has_value());
  EXPECT_EQ(out_of_range->code, flux::Errc::invalid_argument);

  auto not_a_map = catch_error<flux::TypeError>([] { (void)Value(5).at("k"); });
  ASSERT_TRUE(not_a_map.has_value());
  EXPECT_EQ(not_a_map->code, flux::Errc::type_mismatch);

  auto not_a_list = catch_error<flux::TypeError>([] { (void)Value("s").at(std::size_t{0}); });
  ASSERT_TRUE(not_a_list.has_value());
  EXPECT_EQ(not_a_list->code, flux::Errc::type_mismatch);
}

TEST(Value, ToStringRendersJsonLikeText) {
  EXPECT_EQ(Value().to_string(), "null");
  EXPECT_EQ(Value(true).to_string(), "true");
  EXPECT_EQ(Value(false).to_string(), "false");
  EXPECT_EQ(Value(42).to_string(), "42");
  EXPECT_EQ(Value(-7).to_string(), "-7");
  EXPECT_EQ(Value("a\"b").to_string(), "\"a\\\"b\"");
  EXPECT_EQ(Value("a\\b").to_string(), "\"a\\\\b\"");
  EXPECT_EQ(Value(Value::List{1, 2}).to_string(), "[1, 2]");
  EXPECT_EQ(Value(Value::Map{{"a", 1}}).to_string(), "{\"a\": 1}");
  EXPECT_EQ(Value(Value::Map{{"n", 42}, {"tags", Value::List{"a", "b"}}}).to_string(),
            "{\"n\": 42, \"tags\": [\"a\", \"b\"]}");
  // Keys are ordered, whatever the insertion order.
  Value::Map m;
  m.emplace("z", 1);
  m.emplace("a", 2);
  EXPECT_EQ(Value(m).to_string(), "{\"a\": 2, \"z\": 1}");
}

TEST(Value, ToStringPrintsBytesAsHex) {
  Value v = flux::Bytes{std::byte{0x00}, std::byte{0xff}};
  std::string s = v.to_string();
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(s, "b\"00ff\"");
}

TEST(Value, ToStringCutsLongOutputWithAnEllipsis) {
  Value v = std::string(1000, 'x');
  std::string full = v.to_string();
  EXPECT_EQ(full.size(), 1002u);
  std::string cut = v.to_string(20);
  EXPECT_LT(cut.size(), 30u);
  ASSERT_GE(cut.size(), 3u);
  EXPECT_EQ(cut.substr(cut.size() - 3), "...");
  EXPECT_EQ(cut.substr(0, 5), "\"xxxx");
  EXPECT_EQ(Value(42).to_string(20), "42");
}

TEST(Value, EqualityComparesKindAndContents) {
  EXPECT_EQ(Value(1), Value(std::int64_t{1}));
  EXPECT_NE(Value(1), Value(1.0));
  EXPECT_NE(Value(1), Value("1"));
  EXPECT_NE(Value(true), Value(1));
  EXPECT_EQ(Value(Value::List{1, "a"}), Value(Value::List{1, "a"}));
  EXPECT_NE(Value(Value::List{1, 2}), Value(Value::List{2, 1}));
  Value::Map m1;
  m1.emplace("a", 1);
  m1.emplace("b", 2);
  Value::Map m2;
  m2.emplace("b", 2);
  m2.emplace("a", 1);
  EXPECT_EQ(Value(m1), Value(m2));
  EXPECT_NE(Value(m1), Value(Value::Map{{"a", 1}}));
}

TEST(Value, MutableListAndMapAccessorsEditInPlace) {
  Value v = Value::List{1};
  v.as_list().push_back(2);
  EXPECT_EQ(v, Value(Value::List{1, 2}));
  Value m = Value::Map{};
  m.as_map()["k"] = Value("v");
  EXPECT_EQ(m.at("k"), Value("v"));
}

// ---------------------------------------------------------------- TypeInfo

TEST(TypeInfo, CodecTypesHaveReadableNames) {
  EXPECT_EQ(flux::codec<std::int64_t>::type().name, "int64");
  EXPECT_EQ(flux::codec<std::uint8_t>::type().name, "int64");
  EXPECT_EQ(flux::codec<double>::type().name, "float64");
  EXPECT_EQ(flux::codec<bool>::type().name, "bool");
  EXPECT_EQ(flux::codec<std::string>::type().name, "string");
  EXPECT_EQ(flux::codec<flux::Bytes>::type().name, "bytes");
  EXPECT_EQ(flux::codec<std::vector<std::string>>::type().name, "list<string>");
  EXPECT_EQ((flux::codec<std::map<std::string, std::int64_t>>::type().name), "map<int64>");
  EXPECT_EQ((flux::codec<std::unordered_map<std::string, bool>>::type().name), "map<bool>");
  EXPECT_EQ(flux::codec<std::optional<std::int64_t>>::type().name, "optional<int64>");
  EXPECT_TRUE(flux::codec<std::optional<std::int64_t>>::type().nullable);
  EXPECT_EQ((flux::codec<std::tuple<std::int64_t, std::string>>::type().name),
            "tuple<int64, string>");
  EXPECT_FALSE(flux::codec<Value>::type().kind.has_value());
  ASSERT_TRUE(flux::codec<std::vector<std::string>>::type().element != nullptr);
  EXPECT_EQ(flux::codec<std::vector<std::string>>::type().element->name, "string");
}

TEST(TypeInfo, CompatibleAcceptsWhatCanDecodeAndRejectsWhatCannot) {
  using flux::codec;
  using flux::compatible;
  using flux::TypeInfo;
  EXPECT_TRUE(compatible(codec<std::int64_t>::type(), codec<double>::type()));
  EXPECT_FALSE(compatible(codec<std::string>::type(), codec<std::int64_t>::type()));
  EXPECT_TRUE(compatible(codec<std::string>::type(), TypeInfo::any()));
  EXPECT_TRUE(compatible(codec<std::vector<std::int64_t>>::type(), codec<Value>::type()));
  EXPECT_TRUE(
      compatible(TypeInfo::of(flux::Kind::null), codec<std::optional<std::int64_t>>::type()));
  EXPECT_FALSE(compatible(codec<std::vector<std::int64_t>>::type(),
                          codec<std::vector<std::string>>::type()));
  EXPECT_TRUE(compatible(codec<std::vector<std::int64_t>>::type(),
                         codec<std::vector<std::int64_t>>::type()));
  EXPECT_TRUE(compatible(codec<std::int64_t>::type(), codec<std::int64_t>::type()));
  EXPECT_TRUE(compatible(codec<std::string>::type(), codec<std::optional<std::string>>::type()));
  EXPECT_TRUE(compatible(codec<valuetest::Order>::type(), codec<valuetest::Order>::type()));
  // "Any" produced values can only be checked at run time.
  EXPECT_TRUE(compatible(TypeInfo::any(), codec<std::int64_t>::type()));
  EXPECT_FALSE(compatible(codec<double>::type(), codec<std::int64_t>::type()));
  EXPECT_FALSE(compatible(codec<bool>::type(), codec<std::string>::type()));
}

}  // namespace
