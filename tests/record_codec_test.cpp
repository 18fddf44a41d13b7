// The durable record format (src/format/record_codec.hpp): exact round trips of Values,
// history entries and run records; every way a record can be corrupt is a flux::Error(storage)
// naming the key and the cause; records from a newer writer (unknown union cases / enum values)
// are refused, not guessed; a fuzz run of mutated records never crashes and never throws
// anything else; record sizes (packed vs flat Cap'n Proto) are printed.

#include "format/record_codec.hpp"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize-packed.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>
#include <kj/io.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <flux/error.hpp>
#include <flux/record.hpp>
#include <flux/value.hpp>
#include <functional>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "schema/flux.capnp.h"

// ---------------------------------------------------------------------------------------------
// Counting allocator: bytes held through operator new (the C++ library, Cap'n Proto's kj
// arrays), and their peak, so that tests can measure what decoding a record allocates.

namespace alloc_count {
std::atomic<std::int64_t> held{0};
std::atomic<std::int64_t> peak{0};

void* take(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  const std::int64_t now =
      held.fetch_add(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed) +
      static_cast<std::int64_t>(malloc_usable_size(p));
  std::int64_t seen = peak.load(std::memory_order_relaxed);
  while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
  return p;
}

void give(void* p) noexcept {
  if (p == nullptr) return;
  held.fetch_sub(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}
}  // namespace alloc_count

void* operator new(std::size_t n) { return alloc_count::take(n); }
void operator delete(void* p) noexcept { alloc_count::give(p); }
void operator delete(void* p, std::size_t) noexcept { alloc_count::give(p); }

namespace recordcodectest {

// The most bytes held through operator new while `f` ran, above what was held before.
template <class F>
std::int64_t peak_allocation(F&& f) {
  const std::int64_t base = alloc_count::held.load();
  alloc_count::peak.store(base);
  f();
  return alloc_count::peak.load() - base;
}

using flux::Errc;
using flux::Error;
using flux::HistoryEntry;
using flux::RunInfo;
using flux::Timestamp;
using flux::Value;
using flux::detail::RecordKind;
namespace d = flux::detail;
namespace w = flux::wire;
using namespace std::chrono_literals;

constexpr std::string_view kKey = "flux:{r1}:h:7";
// What decode_error expects of hand-built records: run "r1"'s record, history entry 0.
constexpr std::string_view kRunId = "r1";
constexpr std::uint64_t kSeq = 0;

// ---------------------------------------------------------------------------------------------
// helpers

flux::Bytes bytes_of(std::string_view s) {
  flux::Bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

Value nested_lists(std::size_t depth, Value leaf = Value(1)) {
  Value v = std::move(leaf);
  for (std::size_t i = 0; i < depth; ++i) v = Value(Value::List{std::move(v)});
  return v;
}

Value nested_maps(std::size_t depth, Value leaf = Value(1)) {
  Value v = std::move(leaf);
  for (std::size_t i = 0; i < depth; ++i) v = Value(Value::Map{{"k", std::move(v)}});
  return v;
}

// A Value with every kind, nested.
Value rich_value() {
  return Value::Map{
      {"null", nullptr},
      {"t", true},
      {"f", false},
      {"min", std::numeric_limits<std::int64_t>::min()},
      {"max", std::numeric_limits<std::int64_t>::max()},
      {"pi", 3.141592653589793},
      {"neg0", -0.0},
      {"s", "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"},
      {"b", bytes_of(std::string_view("\0\1\2\xff", 4))},
      {"l", Value::List{1, "two", 3.0, Value::List{}, Value::Map{}}},
      {"m", Value::Map{{"", Value::List{nullptr, Value::Map{{"x", -1}}}}}},
  };
}

constexpr std::uint64_t kSampleSeq = 42;
constexpr std::string_view kSampleRunId = "run-0123456789abcdef";

HistoryEntry sample_history(bool with_error) {
  HistoryEntry e;
  e.seq = kSampleSeq;
  e.type = HistoryEntry::Type::parallel;
  e.node = "parallel";
  e.step = "1.0.2";
  e.attempt = 3;
  e.start = Timestamp(1'700'000'000'123'456'789ns);
  e.end = Timestamp(1'700'000'000'223'456'789ns);
  e.duration = 99'999'123ns;
  e.input = Value::List{1, "a", rich_value()};
  if (with_error) {
    e.error = "node \"inc\" (step 1.0.2) threw: boom \xE2\x9C\x97";
  } else {
    e.output = Value::Map{{"sum", 24}, {"blob", bytes_of(std::string_view("\0x\0", 3))}};
  }
  return e;
}

RunInfo sample_run(bool finished_failed) {
  RunInfo r;
  r.id = kSampleRunId;
  r.pipeline = "inc | parallel(dbl, sq) | add";
  r.fingerprint = "9f86d081884c7d659a2feaa0c55ad015";
  r.status = finished_failed ? flux::RunStatus::failed : flux::RunStatus::running;
  r.created = Timestamp(1'700'000'000'000'000'001ns);
  r.updated = Timestamp(1'700'000'000'500'000'002ns);
  r.input = 3;
  if (finished_failed) {
    r.finished = Timestamp(1'700'000'001'000'000'003ns);
    r.error = flux::RunFailure{"add", "2", "node \"add\" (step 2) threw: overflow"};
  } else {
    r.output = rich_value();
  }
  return r;
}

// Packs a message built with the generated API into payload bytes.
std::string packed_payload(capnp::MessageBuilder& mb) {
  kj::VectorOutputStream out;
  capnp::writePackedMessage(out, mb);
  auto a = out.getArray();
  return std::string(reinterpret_cast<const char*>(a.begin()), a.size());
}

std::string payload_of(const std::string& record) { return record.substr(d::k_envelope_size); }

std::uint32_t le32(const std::string& s, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

void set_le32(std::string& s, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

// Decodes `bytes` as `kind`; returns the error message ("" if it decoded).
std::string decode_error(RecordKind kind, std::string_view bytes, std::string_view key = kKey,
                         std::string_view run_id = kRunId, std::uint64_t seq = kSeq) {
  try {
    switch (kind) {
      case RecordKind::value:
        (void)d::decode_value(bytes, key);
        break;
      case RecordKind::history:
        (void)d::decode_history(bytes, key, seq);
        break;
      case RecordKind::run:
        (void)d::decode_run(bytes, key, run_id);
        break;
      case RecordKind::worker_card:  // worker cards are tested in worker_directory_test.cpp
        ADD_FAILURE() << "no worker cards here";
        break;
    }
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::storage) << e.what();
    return e.what();
  }
  return "";
}

#define EXPECT_CORRUPT(kind, bytes, cause)                                                         \
  do {                                                                                             \
    const std::string msg_ = decode_error(kind, bytes);                                            \
    EXPECT_NE(msg_, "") << "decoded without error";                                                \
    EXPECT_NE(msg_.find("corrupt record at key \"" + std::string(kKey) + "\""), std::string::npos) \
        << msg_;                                                                                   \
    EXPECT_NE(msg_.find(cause), std::string::npos)                                                 \
        << "cause \"" << (cause) << "\" not in: " << msg_;                                         \
  } while (0)

// Bit-exact double comparison (distinguishes -0.0 from 0.0, compares NaN payloads).
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// ---------------------------------------------------------------------------------------------
// envelope basics

TEST(RecordCodec, Crc32cMatchesKnownVectors) {
  EXPECT_EQ(d::crc32c(""), 0x00000000u);
  EXPECT_EQ(d::crc32c("123456789"), 0xE3069283u);            // the standard CRC-32C check value
  EXPECT_EQ(d::crc32c(std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720 B.4
  EXPECT_EQ(d::crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  // Incremental use gives the same result.
  EXPECT_EQ(d::crc32c("6789", d::crc32c("12345")), 0xE3069283u);
}

TEST(RecordCodec, EnvelopeLayout) {
  const std::string rec = d::encode_value(Value(7));
  ASSERT_GE(rec.size(), d::k_envelope_size);
  EXPECT_EQ(rec.substr(0, 4), "FLUX");
  EXPECT_EQ(rec[4], 1);
  EXPECT_EQ(rec[5], static_cast<char>(RecordKind::value));
  EXPECT_EQ(rec[6], 0);
  EXPECT_EQ(rec[7], 0);
  EXPECT_EQ(le32(rec, 8), rec.size() - d::k_envelope_size);
  EXPECT_EQ(le32(rec, 12), d::crc32c(payload_of(rec)));
  EXPECT_EQ(d::encode_history(sample_history(false))[5], static_cast<char>(RecordKind::history));
  EXPECT_EQ(d::encode_run(sample_run(false))[5], static_cast<char>(RecordKind::run));
}

// ---------------------------------------------------------------------------------------------
// round trips

void expect_value_round_trip(const Value& v) {
  const std::string rec = d::encode_value(v);
  const Value back = d::decode_value(rec, kKey);
  EXPECT_EQ(back, v) << "sent " << v.to_string(200) << "\ngot  " << back.to_string(200);
  EXPECT_EQ(d::encode_value(back), rec) << "encoding is not deterministic";
}

TEST(RecordCodec, ValueRoundTripsScalars) {
  expect_value_round_trip(Value());
  expect_value_round_trip(Value(true));
  expect_value_round_trip(Value(false));
  for (std::int64_t i : {std::int64_t{0}, std::int64_t{1}, std::int64_t{-1}, std::int64_t{255},
                         std::int64_t{1} << 40, std::numeric_limits<std::int64_t>::min(),
                         std::numeric_limits<std::int64_t>::max()}) {
    expect_value_round_trip(Value(i));
  }
  for (double x : {0.0, 1.5, -2.25, 1e308, -1e308, 1.7976931348623157e308, 5e-324, 1e-300,
                   std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity(), 9007199254740993.0}) {
    expect_value_round_trip(Value(x));
  }
  // -0.0 == 0.0 for operator==, so check the sign bit itself.
  const Value neg0 = d::decode_value(d::encode_value(Value(-0.0)), kKey);
  ASSERT_TRUE(neg0.is_float());
  EXPECT_TRUE(std::signbit(neg0.as_float()));
  EXPECT_TRUE(same_bits(neg0.as_float(), -0.0));
  // NaN != NaN for operator==: compare bits.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Value back = d::decode_value(d::encode_value(Value(nan)), kKey);
  ASSERT_TRUE(back.is_float());
  EXPECT_TRUE(same_bits(back.as_float(), nan));
  // An int stays an int, a float stays a float.
  EXPECT_TRUE(d::decode_value(d::encode_value(Value(3)), kKey).is_int());
  EXPECT_TRUE(d::decode_value(d::encode_value(Value(3.0)), kKey).is_float());
}

TEST(RecordCodec, ValueRoundTripsStringsAndBytes) {
  expect_value_round_trip(Value(""));
  expect_value_round_trip(Value("hello"));
  expect_value_round_trip(
      Value("h\xC3\xA9llo w\xC3\xB6rld \xE2\x82\xAC \xF0\x9F\x98\x80 \xE4\xB8\xAD"));
  expect_value_round_trip(Value(std::string("a\0b\0", 4)));  // embedded NULs in a string
  std::string big(100'000, 'x');
  for (std::size_t i = 0; i < big.size(); i += 7) big[i] = static_cast<char>('a' + i % 26);
  expect_value_round_trip(Value(big));
  expect_value_round_trip(Value(std::string(100'000, '\xE2')));  // not UTF-8: kept byte-exact
  expect_value_round_trip(Value(flux::Bytes{}));
  expect_value_round_trip(Value(bytes_of(std::string_view("\0", 1))));
  expect_value_round_trip(Value(bytes_of(std::string_view("\0\0a\0b\0\0", 7))));
  flux::Bytes all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<std::byte>(i);
  expect_value_round_trip(Value(all));
  // Text and bytes with the same content are different Values and stay so.
  const Value t = d::decode_value(d::encode_value(Value("ab")), kKey);
  const Value b = d::decode_value(d::encode_value(Value(bytes_of("ab"))), kKey);
  EXPECT_TRUE(t.is_string());
  EXPECT_TRUE(b.is_bytes());
}

TEST(RecordCodec, ValueRoundTripsContainers) {
  expect_value_round_trip(Value(Value::List{}));
  expect_value_round_trip(Value(Value::Map{}));
  expect_value_round_trip(Value(Value::List{Value::List{}, Value::Map{}, Value()}));
  expect_value_round_trip(Value(Value::Map{
      {"", Value()}, {"\xC3\xA9t\xC3\xA9", Value::List{}}, {std::string("k\0ey", 4), 1}}));
  expect_value_round_trip(rich_value());
  expect_value_round_trip(
      Value(Value::List{rich_value(), rich_value(), Value::List{rich_value()}}));
  Value::List many;
  for (int i = 0; i < 10'000; ++i)
    many.push_back(i % 3 == 0 ? Value(i) : Value("s" + std::to_string(i)));
  expect_value_round_trip(Value(std::move(many)));
  Value::Map wide;
  for (int i = 0; i < 5'000; ++i) wide.emplace("key" + std::to_string(i), Value(i * 0.5));
  expect_value_round_trip(Value(std::move(wide)));
}

// Packing compresses zero words up to ~1000:1, so the traversal limit must come from the
// unpacked size; a long list of nulls (all-zero words) must still be readable.
TEST(RecordCodec, HighlyCompressibleValuesRoundTrip) {
  const Value nulls(Value::List(200'000));
  const std::string rec = d::encode_value(nulls);
  std::printf("[ sizes    ] 200000 nulls: record %zu bytes (~%zu unpacked)\n", rec.size(),
              std::size_t{200'000} * 24);
  EXPECT_LT(rec.size(), 20'000u);
  EXPECT_EQ(d::decode_value(rec, kKey), nulls);
  const Value zeros(Value::List(100'000, Value(std::int64_t{0})));
  EXPECT_EQ(d::decode_value(d::encode_value(zeros), kKey), zeros);
  expect_value_round_trip(Value(flux::Bytes(1'000'000)));
}

TEST(RecordCodec, ValuesUpToTheDepthLimitRoundTrip) {
  EXPECT_EQ(flux::k_max_value_depth, 60u);
  // Maps cost Cap'n Proto two nesting levels each, lists one: both must work at the limit,
  // as a bare value and inside history and run records.
  std::vector<Value> deepest = {
      nested_lists(flux::k_max_value_depth), nested_maps(flux::k_max_value_depth),
      nested_maps(flux::k_max_value_depth - 1, Value(Value::Map{})),
      nested_lists(flux::k_max_value_depth - 1, Value(Value::List{})),
      nested_maps(flux::k_max_value_depth / 2,
                  nested_lists(flux::k_max_value_depth / 2, rich_value().at("b")))};
  for (const Value& v : deepest) {
    expect_value_round_trip(v);
    HistoryEntry e = sample_history(false);
    e.input = v;
    e.output = v;
    EXPECT_EQ(d::decode_history(d::encode_history(e), kKey, e.seq), e);
    RunInfo r = sample_run(false);
    r.input = v;
    r.output = v;
    EXPECT_EQ(d::decode_run(d::encode_run(r), kKey, r.id), r);
  }
}

TEST(RecordCodec, TooDeepValuesAreRefusedAtWriteTime) {
  const auto expect_refused = [](const std::function<void()>& f, const std::string& what) {
    try {
      f();
      ADD_FAILURE() << "encoded a Value nested deeper than the limit";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::invalid_argument);
      const std::string msg = e.what();
      EXPECT_NE(msg.find("levels deep (lists/maps); the limit is 60 (flux::k_max_value_depth)"),
                std::string::npos)
          << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  };
  const Value too_deep = nested_lists(flux::k_max_value_depth + 1);
  expect_refused([&] { d::encode_value(too_deep); }, "value record: value is nested 61 levels");
  expect_refused([&] { d::encode_value(nested_maps(flux::k_max_value_depth + 1)); },
                 "value record");
  expect_refused([&] { d::encode_value(nested_lists(1000)); }, "nested 1000 levels deep");
  HistoryEntry e = sample_history(false);
  e.output = too_deep;
  expect_refused([&] { d::encode_history(e); },
                 "history entry 42 (node \"parallel\", step \"1.0.2\"): its output");
  RunInfo r = sample_run(false);
  r.input = too_deep;
  expect_refused([&] { d::encode_run(r); }, "run \"run-0123456789abcdef\": its input");
}

TEST(RecordCodec, HistoryEntryRoundTripsAllFields) {
  for (bool with_error : {false, true}) {
    const HistoryEntry e = sample_history(with_error);
    const HistoryEntry back = d::decode_history(d::encode_history(e), kKey, 42);
    EXPECT_EQ(back, e);
    EXPECT_EQ(back.seq, 42u);
    EXPECT_EQ(back.type, HistoryEntry::Type::parallel);
    EXPECT_EQ(back.attempt, 3u);
    EXPECT_EQ(back.start, e.start);
    EXPECT_EQ(back.duration, 99'999'123ns);
    EXPECT_EQ(back.ok(), !with_error);
  }
  // Defaults, a node entry, an empty error message (failed, but with no text) and extreme times.
  HistoryEntry plain;
  EXPECT_EQ(d::decode_history(d::encode_history(plain), kKey, 0), plain);
  HistoryEntry odd = sample_history(true);
  odd.type = HistoryEntry::Type::node;
  odd.error = "";
  odd.seq = std::numeric_limits<std::uint64_t>::max();
  odd.attempt = std::numeric_limits<std::uint32_t>::max();
  odd.start = Timestamp(std::chrono::nanoseconds(std::numeric_limits<std::int64_t>::min()));
  odd.end = Timestamp(std::chrono::nanoseconds(std::numeric_limits<std::int64_t>::max()));
  odd.duration = std::chrono::nanoseconds(-1);
  const HistoryEntry back = d::decode_history(d::encode_history(odd), kKey, odd.seq);
  EXPECT_EQ(back, odd);
  ASSERT_TRUE(back.error.has_value());
  EXPECT_EQ(*back.error, "");
  EXPECT_FALSE(back.ok());
}

TEST(RecordCodec, RunInfoRoundTripsAllFields) {
  for (bool finished_failed : {false, true}) {
    const RunInfo r = sample_run(finished_failed);
    EXPECT_EQ(d::decode_run(d::encode_run(r), kKey, r.id), r);
  }
  RunInfo done = sample_run(false);
  done.status = flux::RunStatus::completed;
  done.finished = Timestamp(0ns);  // finished at exactly the epoch is still "finished"
  const RunInfo back = d::decode_run(d::encode_run(done), kKey, done.id);
  EXPECT_EQ(back, done);
  ASSERT_TRUE(back.finished.has_value());
  EXPECT_FALSE(back.error.has_value());
  // A failure that is not a node's (empty node and step).
  RunInfo store_failed = sample_run(true);
  store_failed.error = flux::RunFailure{"", "", ""};
  EXPECT_EQ(d::decode_run(d::encode_run(store_failed), kKey, store_failed.id), store_failed);
  // Every field at its default but the id, which a reader needs to match the key.
  RunInfo minimal;
  minimal.id = "r";
  EXPECT_EQ(d::decode_run(d::encode_run(minimal), kKey, "r"), minimal);
}

TEST(RecordCodec, RunRecordDoesNotStoreHistory) {
  RunInfo r = sample_run(true);
  const std::string without = d::encode_run(r);
  r.history = {sample_history(false), sample_history(true)};
  EXPECT_EQ(d::encode_run(r), without);
  const RunInfo back = d::decode_run(without, kKey, r.id);
  EXPECT_TRUE(back.history.empty());
}

// ---------------------------------------------------------------------------------------------
// corrupt records: every cause is named, with the key

TEST(RecordCodec, TooShortIsRejected) {
  EXPECT_CORRUPT(RecordKind::history, std::string_view("FLUX\1\2\0", 7),
                 "too short (7 bytes, need at least 16)");
  EXPECT_CORRUPT(RecordKind::value, "", "too short (0 bytes, need at least 16)");
}

TEST(RecordCodec, BadMagicIsRejected) {
  std::string rec = d::encode_history(sample_history(false));
  rec[0] = 'J';
  EXPECT_CORRUPT(RecordKind::history, rec, "bad magic");
  // A JSON document or a flat capnp message where a record should be.
  EXPECT_CORRUPT(RecordKind::run, "{\"id\": \"r1\", \"status\": \"running\"}", "bad magic");
}

TEST(RecordCodec, UnsupportedVersionIsRejected) {
  std::string rec = d::encode_history(sample_history(false));
  rec[4] = 9;
  EXPECT_CORRUPT(RecordKind::history, rec, "unsupported version 9");
  rec[4] = 0;
  EXPECT_CORRUPT(RecordKind::history, rec, "unsupported version 0");
}

TEST(RecordCodec, WrongKindIsRejected) {
  const std::string run = d::encode_run(sample_run(false));
  EXPECT_CORRUPT(RecordKind::history, run, "wrong kind (expected history, found run)");
  EXPECT_CORRUPT(RecordKind::value, run, "wrong kind (expected value, found run)");
  EXPECT_CORRUPT(RecordKind::run, d::encode_value(Value(1)),
                 "wrong kind (expected run, found value)");
  std::string odd = run;
  odd[5] = 77;
  EXPECT_CORRUPT(RecordKind::run, odd, "wrong kind (expected run, found unknown kind 77)");
}

TEST(RecordCodec, NonZeroReservedBytesAreRejected) {
  std::string rec = d::encode_value(Value(1));
  rec[7] = 1;
  EXPECT_CORRUPT(RecordKind::value, rec, "reserved header bytes are not zero");
}

TEST(RecordCodec, LengthMismatchIsRejected) {
  const std::string rec = d::encode_history(sample_history(false));
  const std::size_t payload = rec.size() - d::k_envelope_size;
  // Truncated in storage.
  EXPECT_CORRUPT(RecordKind::history, rec.substr(0, d::k_envelope_size + 40),
                 "length field says " + std::to_string(payload) + " bytes but 40 follow");
  // Something appended.
  EXPECT_CORRUPT(RecordKind::history, rec + "xyz",
                 "length field says " + std::to_string(payload) + " bytes but " +
                     std::to_string(payload + 3) + " follow");
  // Length field corrupted.
  std::string bad = rec;
  set_le32(bad, 8, 100);
  EXPECT_CORRUPT(RecordKind::history, bad,
                 "length field says 100 bytes but " + std::to_string(payload) + " follow");
  set_le32(bad, 8, 0xFFFFFFFFu);
  EXPECT_CORRUPT(RecordKind::history, bad, "length field says 4294967295 bytes");
}

TEST(RecordCodec, ChecksumMismatchIsRejected) {
  std::string rec = d::encode_history(sample_history(false));
  const std::uint32_t stored = le32(rec, 12);
  rec[rec.size() - 3] ^= 0x10;  // one flipped bit in the payload
  char expected[128];
  std::snprintf(expected, sizeof expected, "checksum mismatch (stored 0x%08x, computed 0x%08x)",
                static_cast<unsigned>(stored), static_cast<unsigned>(d::crc32c(payload_of(rec))));
  EXPECT_CORRUPT(RecordKind::history, rec, expected);
  // The checksum field itself corrupted.
  std::string rec2 = d::encode_run(sample_run(true));
  rec2[13] ^= 0x01;
  EXPECT_CORRUPT(RecordKind::run, rec2, "checksum mismatch (stored 0x");
}

TEST(RecordCodec, UndecodablePayloadIsRejected) {
  // A valid envelope (correct length and CRC) around bytes Cap'n Proto cannot read.
  EXPECT_CORRUPT(RecordKind::history, d::seal_record(RecordKind::history, ""), "undecodable: ");
  EXPECT_CORRUPT(RecordKind::history, d::seal_record(RecordKind::history, std::string(64, '\xff')),
                 "undecodable: ");
  // A packed message cut short (CRC recomputed, as if the writer had been cut off).
  const std::string payload = payload_of(d::encode_value(rich_value()));
  const std::string cut = payload.substr(0, payload.size() / 2);
  EXPECT_CORRUPT(RecordKind::value, d::seal_record(RecordKind::value, cut), "undecodable: ");
  // Garbage after a complete message.
  EXPECT_CORRUPT(RecordKind::value,
                 d::seal_record(RecordKind::value, payload + std::string(8, '\0')),
                 "bytes follow the end of the message");
}

TEST(RecordCodec, HugeSegmentClaimIsRefusedWithoutAllocating) {
  // Packed form of a segment table that claims one segment of 0x10000000 words (2 GiB):
  // tag 0x80 = only byte 7 of the first word is non-zero, and it is 0x10.
  const std::string payload("\x80\x10", 2);
  EXPECT_CORRUPT(RecordKind::value, d::seal_record(RecordKind::value, payload), "undecodable: ");
}

TEST(RecordCodec, ForeignMessageNestedBeyondTheLimitIsRejected) {
  // Another writer (not encode_*) nests lists or maps deeper than encode_* would: refused as
  // corrupt, so whatever decodes can be encoded again. At the limit itself it decodes.
  const auto lists = [](int depth) {
    capnp::MallocMessageBuilder mb;
    auto v = mb.initRoot<w::Value>();
    for (int i = 0; i < depth; ++i) v = v.initList(1)[0];
    v.setInt64(1);
    return d::seal_record(RecordKind::value, packed_payload(mb));
  };
  const auto maps = [](int depth) {
    capnp::MallocMessageBuilder mb;
    auto e = mb.initRoot<w::HistoryEntry>();
    auto v = e.initOutput();
    for (int i = 0; i < depth; ++i) {
      auto entry = v.initMap(1)[0];
      entry.setKey("k");
      v = entry.initValue();
    }
    v.setText("leaf");
    return d::seal_record(RecordKind::history, packed_payload(mb));
  };
  EXPECT_EQ(d::decode_value(lists(60), kKey), nested_lists(60));
  EXPECT_EQ(d::decode_history(maps(60), kKey, 0).output, nested_maps(60, Value("leaf")));
  EXPECT_CORRUPT(RecordKind::value, lists(61), "a Value is nested more than 60 levels deep");
  EXPECT_CORRUPT(RecordKind::value, lists(500), "a Value is nested more than 60 levels deep");
  EXPECT_CORRUPT(RecordKind::history, maps(61), "a Value is nested more than 60 levels deep");
}

TEST(RecordCodec, DuplicateMapKeysAreRejected) {
  capnp::MallocMessageBuilder mb;
  auto m = mb.initRoot<w::Value>().initMap(2);
  m[0].setKey("a");
  m[0].initValue().setInt64(1);
  m[1].setKey("a");
  m[1].initValue().setInt64(2);
  EXPECT_CORRUPT(RecordKind::value, d::seal_record(RecordKind::value, packed_payload(mb)),
                 "duplicate key \"a\"");
}

// What a newer writer may produce: union members and enum values this reader does not know.
// They are refused with a message naming the key, never decoded as something else.

// Sets the 16-bit slot `index` of `s`'s data section (a union tag or an enum field).
template <class StructBuilder>
void poke16(StructBuilder b, std::uint32_t index, std::uint16_t v) {
  auto data = capnp::AnyStruct::Builder(kj::mv(b)).getDataSection();
  ASSERT_LE((index + 1) * 2, data.size());
  data[index * 2] = static_cast<kj::byte>(v & 0xFF);
  data[index * 2 + 1] = static_cast<kj::byte>(v >> 8);
}

template <class T>
std::uint32_t discriminant_of() {
  return capnp::Schema::from<T>().getProto().getStruct().getDiscriminantOffset();
}

template <class T>
std::uint32_t slot_of(const char* field) {
  return capnp::Schema::from<T>().getFieldByName(field).getProto().getSlot().getOffset();
}

TEST(RecordCodec, UnknownUnionCaseFromNewerWriterIsRejected) {
  {  // a bare Value with case 9
    capnp::MallocMessageBuilder mb;
    auto v = mb.initRoot<w::Value>();
    v.setInt64(5);
    poke16(v, discriminant_of<w::Value>(), 9);
    EXPECT_CORRUPT(RecordKind::value, d::seal_record(RecordKind::value, packed_payload(mb)),
                   "unknown Value case 9 (written by a newer Flux?)");
  }
  {  // deep inside a history entry's input
    capnp::MallocMessageBuilder mb;
    auto e = mb.initRoot<w::HistoryEntry>();
    auto inner = e.initInput().initList(2)[1].initMap(1)[0].initValue();
    inner.setBool(true);
    poke16(inner, discriminant_of<w::Value>(), 200);
    EXPECT_CORRUPT(RecordKind::history, d::seal_record(RecordKind::history, packed_payload(mb)),
                   "unknown Value case 200");
  }
  {  // history error union
    capnp::MallocMessageBuilder mb;
    auto e = mb.initRoot<w::HistoryEntry>();
    e.getError().setMessage("x");
    poke16(e, discriminant_of<w::HistoryEntry::Error>(), 2);
    EXPECT_CORRUPT(RecordKind::history, d::seal_record(RecordKind::history, packed_payload(mb)),
                   "unknown history error case 2");
  }
  {  // run failure union
    capnp::MallocMessageBuilder mb;
    auto r = mb.initRoot<w::RunRecord>();
    r.setId(kRunId.data());
    r.getFailure().initFailed().setMessage("x");
    poke16(r, discriminant_of<w::RunRecord::Failure>(), 3);
    EXPECT_CORRUPT(RecordKind::run, d::seal_record(RecordKind::run, packed_payload(mb)),
                   "unknown run failure case 3");
  }
}

TEST(RecordCodec, UnknownEnumValueFromNewerWriterIsRejected) {
  {
    capnp::MallocMessageBuilder mb;
    auto r = mb.initRoot<w::RunRecord>();
    r.setId("r1");
    poke16(r, slot_of<w::RunRecord>("status"), 6);  // 5 is `compensationFailed`
    EXPECT_CORRUPT(RecordKind::run, d::seal_record(RecordKind::run, packed_payload(mb)),
                   "unknown run status 6 (written by a newer Flux?)");
  }
  {
    capnp::MallocMessageBuilder mb;
    auto e = mb.initRoot<w::HistoryEntry>();
    poke16(e, slot_of<w::HistoryEntry>("type"), 6);  // 5 is `compensate`
    EXPECT_CORRUPT(RecordKind::history, d::seal_record(RecordKind::history, packed_payload(mb)),
                   "unknown history entry type 6");
  }
}

TEST(RecordCodec, CancelledRunsCancelEntriesAndDeadlinesRoundTrip) {
  RunInfo r = sample_run(true);
  r.status = flux::RunStatus::cancelled;
  r.deadline = r.created + std::chrono::seconds(30);
  EXPECT_EQ(d::decode_run(d::encode_run(r), kKey, r.id), r);
  r.deadline.reset();  // a record without one (also every record written before deadlines)
  EXPECT_EQ(d::decode_run(d::encode_run(r), kKey, r.id), r);
  HistoryEntry e = sample_history(false);
  e.type = HistoryEntry::Type::cancel;
  e.input = Value::Map{{"by", "host:1:abc"}, {"reason", "why"}};
  EXPECT_EQ(d::decode_history(d::encode_history(e), kKey, e.seq), e);
}

TEST(RecordCodec, StepCountsRoundTripAndAnOlderRecordHasNone) {
  RunInfo r = sample_run(true);
  r.steps_total = 4;
  r.steps_done = 0;  // a run that failed at its first step: zero, which is not "unknown"
  RunInfo back = d::decode_run(d::encode_run(r), kKey, r.id);
  EXPECT_EQ(back.steps_total, std::optional<std::uint32_t>(4));
  EXPECT_EQ(back.steps_done, std::optional<std::uint32_t>(0));
  EXPECT_EQ(back, r);
  // A record written before the counts existed (no field set) reads as unknown.
  capnp::MallocMessageBuilder mb;
  auto old = mb.initRoot<w::RunRecord>();
  old.setId(r.id.c_str());
  old.setPipeline("p");
  RunInfo older = d::decode_run(d::seal_record(RecordKind::run, packed_payload(mb)), kKey, r.id);
  EXPECT_FALSE(older.steps_total.has_value());
  EXPECT_FALSE(older.steps_done.has_value());
}

TEST(RecordCodec, CompensationStatusesAndEntriesRoundTrip) {
  RunInfo r = sample_run(true);
  for (auto status : {flux::RunStatus::compensated, flux::RunStatus::compensation_failed}) {
    r.status = status;
    EXPECT_EQ(d::decode_run(d::encode_run(r), kKey, r.id), r);
  }
  HistoryEntry e = sample_history(false);
  e.type = HistoryEntry::Type::compensating;
  e.input = Value::Map{{"status", "failed"}, {"node", "pay"}, {"step", "3"}, {"message", "no"}};
  EXPECT_EQ(d::decode_history(d::encode_history(e), kKey, e.seq), e);
  e = sample_history(true);
  e.type = HistoryEntry::Type::compensate;
  e.attempt = 2;
  EXPECT_EQ(d::decode_history(d::encode_history(e), kKey, e.seq), e);
}

TEST(RecordCodec, FieldsUnknownToThisReaderAreIgnored) {
  // A newer writer's struct has more data and pointer words than this schema knows (fields
  // appended at the end); this reader reads the fields it knows and ignores the rest.
  const auto proto = capnp::Schema::from<w::HistoryEntry>().getProto().getStruct();
  capnp::MallocMessageBuilder mb;
  auto any = mb.getRoot<capnp::AnyPointer>().initAsAnyStruct(
      static_cast<std::uint16_t>(proto.getDataWordCount() + 3),
      static_cast<std::uint16_t>(proto.getPointerCount() + 2));
  auto e = any.as<w::HistoryEntry>();
  e.setSeq(5);
  e.setNode("inc");
  e.initInput().setInt64(7);
  e.getError().setMessage("boom");
  auto data = any.getDataSection();
  data[data.size() - 1] = 0xAB;  // a field this reader does not know
  any.getPointerSection()[proto.getPointerCount() + 1].setAs<capnp::Text>("newer field");
  const HistoryEntry back =
      d::decode_history(d::seal_record(RecordKind::history, packed_payload(mb)), kKey, 5);
  EXPECT_EQ(back.seq, 5u);
  EXPECT_EQ(back.node, "inc");
  EXPECT_EQ(back.input, Value(7));
  EXPECT_EQ(back.error, std::optional<std::string>("boom"));
}

TEST(RecordCodec, BinaryKeysAreEscapedInMessages) {
  const std::string key("flux:{r\"1}\n\x01", 12);
  try {
    (void)d::decode_value("nope", key);
    ADD_FAILURE() << "decoded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("corrupt record at key \"flux:{r\\\"1}\\x0a\\x01\""),
              std::string::npos)
        << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// forged records: a valid envelope and CRC around content crafted to do harm

// A packed message of one segment of zero words -- a null root, so every field at its default
// -- about `payload_bytes` long. Each "\0\xff" unpacks to 256 words: 1024 times its size.
std::string zero_payload(std::size_t payload_bytes) {
  const std::size_t runs = (payload_bytes - 6) / 2;
  const std::uint64_t words = std::uint64_t{runs} * 256;
  // The segment table word: segment count - 1 (0) in bytes 0-3, the segment's size in 4-7;
  // packed as a tag (which bytes are non-zero) followed by the non-zero bytes.
  std::string p(1, '\0');
  for (int i = 4; i < 8; ++i) {
    const auto b = static_cast<unsigned char>((words >> (8 * (i - 4))) & 0xFF);
    if (b != 0) {
      p[0] = static_cast<char>(static_cast<unsigned char>(p[0]) | (1u << i));
      p += static_cast<char>(b);
    }
  }
  for (std::size_t i = 0; i < runs; ++i) p += std::string("\0\xff", 2);
  return p;
}

// A record of `kind` whose Value claims a list (or map) of `n` zero-size elements -- a few
// bytes that claim n elements -- behind `pad_bytes` of zero bytes (in the record's output,
// for history and run records) that raise the traversal limit. Otherwise it is what the
// fuzz seeds are: history entry kSampleSeq, run kSampleRunId.
std::string claim_record(RecordKind kind, unsigned n, bool map, std::size_t pad_bytes) {
  capnp::MallocMessageBuilder mb;
  const auto claim = [&](w::Value::Builder v) {
    if (map) {
      v.initMap(0);
    } else {
      v.initList(0);
    }
    capnp::toAny(v).getPointerSection()[0].initAsListOfAnyStruct(0, 0, n);
  };
  switch (kind) {
    case RecordKind::value:
      claim(mb.initRoot<w::Value>());
      break;
    case RecordKind::history: {
      auto e = mb.initRoot<w::HistoryEntry>();
      e.setSeq(kSampleSeq);
      e.setNode("inc");
      claim(e.initInput());
      if (pad_bytes != 0) e.initOutput().initData(static_cast<unsigned>(pad_bytes));
      break;
    }
    case RecordKind::run: {
      auto r = mb.initRoot<w::RunRecord>();
      r.setId(std::string(kSampleRunId).c_str());
      claim(r.initInput());
      if (pad_bytes != 0) r.initOutput().initData(static_cast<unsigned>(pad_bytes));
      break;
    }
    case RecordKind::worker_card:  // worker cards are tested in worker_directory_test.cpp
      ADD_FAILURE() << "no worker cards here";
      break;
  }
  return d::seal_record(kind, packed_payload(mb));
}

// What reading a record with a payload of `payload_bytes` may allocate (record_codec.hpp), plus
// room for what the budget does not count (the reader object, error messages).
std::int64_t allowed_peak(std::size_t payload_bytes) {
  return static_cast<std::int64_t>(
      std::max<std::size_t>(d::k_read_memory_floor, d::k_read_memory_ratio * payload_bytes) +
      (64 << 10));
}

TEST(RecordCodec, ForgedRecordsOfZerosAreRefusedBeforeTheyUnpack) {
  // 1 MiB and 16 MiB of packed zeros would unpack to 1 GiB and 16 GiB (bad_alloc) and decode
  // as an all-default record; the unpacked size is now checked before anything is allocated.
  for (const std::size_t mib : {1, 16}) {
    for (const RecordKind kind : {RecordKind::value, RecordKind::history, RecordKind::run}) {
      const std::string rec = d::seal_record(kind, zero_payload(mib << 20));
      std::string msg;
      const std::int64_t peak = peak_allocation([&] { msg = decode_error(kind, rec); });
      EXPECT_NE(msg.find("corrupt record at key \"flux:{r1}:h:7\": implausible size: the "),
                std::string::npos)
          << msg;
      EXPECT_NE(msg.find("bytes, more than the " +
                         std::to_string(std::max(d::k_read_memory_floor,
                                                 d::k_read_memory_ratio * (rec.size() - 16))) +
                         " bytes a record of that size may use when read"),
                std::string::npos)
          << msg;
      EXPECT_LE(peak, 64 << 10) << msg;
      std::printf(
          "[ forged   ] %2zu MiB of zeros as a %-7s record: refused, %lld bytes allocated\n", mib,
          d::to_string(kind), static_cast<long long>(peak));
    }
  }
}

TEST(RecordCodec, ClaimedListLengthsAreCheckedBeforeAllocating) {
  // A list of 2 million zero-size elements costs Cap'n Proto one word of traversal each, and
  // 24 MB of packed zeros (24 KB on the wire) pay for that; but 2 million flux::Values would
  // need 112 MB. Refused when the list is reached, before reserving it.
  for (const RecordKind kind : {RecordKind::history, RecordKind::run}) {
    for (const bool map : {false, true}) {
      const std::string rec = claim_record(kind, 2'000'000, map, 24'000'000);
      std::string msg;
      const std::int64_t peak =
          peak_allocation([&] { msg = decode_error(kind, rec, kKey, kSampleRunId, kSampleSeq); });
      EXPECT_NE(
          msg.find(map ? "implausible size: a map of 2000000 entries would need 2000000 * "
                       : "implausible size: a list of 2000000 elements would need 2000000 * "),
          std::string::npos)
          << msg;
      EXPECT_LE(peak, allowed_peak(rec.size() - 16)) << msg;
      std::printf("[ forged   ] %-7s record of %zu bytes claiming a %s of 2e6: %lld bytes peak\n",
                  d::to_string(kind), rec.size(), map ? "map " : "list",
                  static_cast<long long>(peak));
    }
  }
  // Without the padding Cap'n Proto's traversal limit (the unpacked size) refuses the claim.
  const std::string tiny = claim_record(RecordKind::value, (1u << 29) - 1, false, 0);
  std::string msg;
  const std::int64_t peak = peak_allocation([&] { msg = decode_error(RecordKind::value, tiny); });
  EXPECT_NE(msg.find("corrupt record at key \"flux:{r1}:h:7\": undecodable: "), std::string::npos)
      << msg;
  EXPECT_LE(peak, 64 << 10);
}

TEST(RecordCodec, AllDefaultRecordsAreRefused) {
  capnp::MallocMessageBuilder run;
  run.initRoot<w::RunRecord>();
  EXPECT_CORRUPT(RecordKind::run, d::seal_record(RecordKind::run, packed_payload(run)),
                 "invalid content: the run id is empty");
  EXPECT_CORRUPT(RecordKind::run, d::seal_record(RecordKind::run, zero_payload(64)),
                 "invalid content: the run id is empty");
  capnp::MallocMessageBuilder history;
  history.initRoot<w::HistoryEntry>();
  EXPECT_NE(
      decode_error(RecordKind::history,
                   d::seal_record(RecordKind::history, packed_payload(history)), kKey, kRunId, 3)
          .find("invalid content: the entry says it is number 0 of its run's history but "
                "is stored as number 3"),
      std::string::npos);
  // encode refuses what decode would refuse.
  try {
    d::encode_run(RunInfo{});
    ADD_FAILURE() << "encoded a run without an id";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    EXPECT_STREQ(e.what(), "cannot encode run record: the run id is empty");
  }
}

TEST(RecordCodec, AnotherRunsRecordUnderThisRunsKeyIsRefused) {
  // Run B's valid record stored under run A's key: reading A must not return B (resuming A
  // would then write into B).
  RunInfo b = sample_run(false);
  b.id = "B";
  const std::string rec = d::encode_run(b);
  EXPECT_EQ(d::decode_run(rec, "flux:{B}:run", "B"), b);
  const std::string msg = decode_error(RecordKind::run, rec, "flux:{A}:run", "A");
  EXPECT_EQ(msg,
            "corrupt record at key \"flux:{A}:run\": invalid content: run id mismatch (the record "
            "is run \"B\"'s; the key is run \"A\"'s)");
  // A history entry moved to another position of the history.
  const std::string entry = d::encode_history(sample_history(false));
  EXPECT_NE(decode_error(RecordKind::history, entry, kKey, kRunId, 41)
                .find("the entry says it is number 42 of its run's history but is stored as "
                      "number 41"),
            std::string::npos);
}

TEST(RecordCodec, RecordsTooCompressibleToReadBackAreRefusedAtWriteTime) {
  // 2 million nulls: a 47 KB record that would take 160 MB to read. A reader refuses that (a
  // forged record could do the same), so the writer does, with the reason.
  try {
    d::encode_value(Value(Value::List(2'000'000)));
    ADD_FAILURE() << "encoded a record that cannot be read back";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cannot encode value record: reading its "), std::string::npos) << msg;
    EXPECT_NE(msg.find("the value is mostly nulls or zero bytes"), std::string::npos) << msg;
  }
  // What real data looks like stays far below the ratio, also beyond the floor.
  Value::List ints;
  for (std::int64_t i = 0; i < 1'000'000; ++i) ints.emplace_back(i % 100 == 0 ? 0 : i);
  expect_value_round_trip(Value(std::move(ints)));
  expect_value_round_trip(Value(Value::List(500'000, Value(false))));
}

// ---------------------------------------------------------------------------------------------
// sizes

TEST(RecordCodec, ReportsTypicalRecordSizes) {
  HistoryEntry e;
  e.seq = 3;
  e.type = HistoryEntry::Type::node;
  e.node = "tokenize_2";  // 10 characters
  e.step = "1";
  e.attempt = 1;
  e.start = Timestamp(1'717'171'717'123'456'789ns);
  e.end = e.start + 48'213ns;
  e.duration = 48'213ns;
  e.input = 41;
  e.output = 42;
  const std::string rec = d::encode_history(e);
  const std::string packed = payload_of(rec);
  // The flat (unpacked) form of the same message.
  kj::ArrayInputStream in(
      kj::arrayPtr(reinterpret_cast<const kj::byte*>(packed.data()), packed.size()));
  capnp::PackedMessageReader reader(in);
  capnp::MallocMessageBuilder copy;
  copy.setRoot(reader.getRoot<w::HistoryEntry>());
  const std::size_t flat = capnp::messageToFlatArray(copy).asBytes().size();
  std::printf(
      "[ sizes    ] history entry (node, 10-char name, int input/output): "
      "packed payload %zu bytes (record with envelope %zu), flat %zu bytes\n",
      packed.size(), rec.size(), flat);
  ::testing::Test::RecordProperty("history_packed_bytes", static_cast<int>(packed.size()));
  ::testing::Test::RecordProperty("history_record_bytes", static_cast<int>(rec.size()));
  ::testing::Test::RecordProperty("history_flat_bytes", static_cast<int>(flat));
  EXPECT_LT(packed.size(), flat);

  const std::string run = d::encode_run(sample_run(true));
  std::printf("[ sizes    ] failed run record: %zu bytes; value record of int 42: %zu bytes\n",
              run.size(), d::encode_value(Value(42)).size());
}

// ---------------------------------------------------------------------------------------------
// fuzz

struct FuzzStats {
  std::size_t inputs = 0, decoded = 0, rejected = 0;
  std::map<std::string, std::size_t> causes;
};

// Every input either decodes or is rejected with Error(storage) naming the key; anything
// decoded re-encodes deterministically. History entries are expected at position 42 and run
// records to be run kSampleRunId's, as the seeds are.
void fuzz_one(RecordKind kind, std::string_view bytes, FuzzStats& stats, const char* what,
              std::size_t index) {
  ++stats.inputs;
  try {
    std::string again;
    switch (kind) {
      case RecordKind::value: {
        const Value v = d::decode_value(bytes, kKey);
        try {
          again = d::encode_value(v);
        } catch (const Error& e) {  // a mutation can nest deeper than encode accepts
          EXPECT_EQ(e.code(), Errc::invalid_argument) << e.what();
          break;
        }
        EXPECT_EQ(d::encode_value(d::decode_value(again, kKey)), again) << what << " #" << index;
        break;
      }
      case RecordKind::history: {
        const HistoryEntry h = d::decode_history(bytes, kKey, kSampleSeq);
        try {
          again = d::encode_history(h);
        } catch (const Error& e) {
          EXPECT_EQ(e.code(), Errc::invalid_argument) << e.what();
          break;
        }
        EXPECT_EQ(d::encode_history(d::decode_history(again, kKey, kSampleSeq)), again)
            << what << " #" << index;
        break;
      }
      case RecordKind::run: {
        const RunInfo r = d::decode_run(bytes, kKey, kSampleRunId);
        try {
          again = d::encode_run(r);
        } catch (const Error& e) {
          EXPECT_EQ(e.code(), Errc::invalid_argument) << e.what();
          break;
        }
        EXPECT_EQ(d::encode_run(d::decode_run(again, kKey, kSampleRunId)), again)
            << what << " #" << index;
        break;
      }
      case RecordKind::worker_card:  // worker cards are tested in worker_directory_test.cpp
        ADD_FAILURE() << "no worker cards here";
        break;
    }
    ++stats.decoded;
  } catch (const Error& e) {
    ++stats.rejected;
    const std::string msg = e.what();
    if (e.code() != Errc::storage || msg.find(kKey) == std::string::npos) {
      ADD_FAILURE() << what << " #" << index << ": wrong error (" << flux::to_string(e.code())
                    << "): " << msg;
    }
    // Group by cause: the text after the key, up to the first '(' or digit.
    std::string cause = msg.substr(msg.find("\": ") + 3);
    cause = cause.substr(0, std::min(cause.find_first_of("(0123456789"), std::size_t{40}));
    ++stats.causes[cause];
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << " #" << index << ": non-flux exception: " << e.what();
  } catch (...) {
    ADD_FAILURE() << what << " #" << index << ": unknown exception";
  }
}

Value random_value(std::mt19937_64& rng, int depth) {
  std::uniform_int_distribution<int> kind(0, depth > 4 ? 5 : 7);
  switch (kind(rng)) {
    case 0:
      return Value();
    case 1:
      return Value(rng() % 2 == 0);
    case 2:
      return Value(static_cast<std::int64_t>(rng()));
    case 3: {
      const std::uint64_t bits = rng();
      double x;
      std::memcpy(&x, &bits, sizeof x);
      return Value(x);
    }
    case 4:
      return Value(std::string(rng() % 40, static_cast<char>('a' + rng() % 26)));
    case 5: {
      flux::Bytes b(rng() % 20);
      for (auto& c : b) c = static_cast<std::byte>(rng());
      return Value(std::move(b));
    }
    case 6: {
      Value::List l(rng() % 5);
      for (auto& e : l) e = random_value(rng, depth + 1);
      return Value(std::move(l));
    }
    default: {
      Value::Map m;
      for (std::size_t i = 0, n = rng() % 5; i < n; ++i)
        m.emplace("k" + std::to_string(rng() % 100), random_value(rng, depth + 1));
      return Value(std::move(m));
    }
  }
}

// A fixed seed keeps CI deterministic; for a longer exploratory run, rebuild with e.g.
// -DRECORD_CODEC_FUZZ_SEED=123 -DRECORD_CODEC_FUZZ_SCALE=10.
#ifndef RECORD_CODEC_FUZZ_SEED
#define RECORD_CODEC_FUZZ_SEED 0x5EEDF1u
#endif
#ifndef RECORD_CODEC_FUZZ_SCALE
#define RECORD_CODEC_FUZZ_SCALE 1
#endif

TEST(RecordCodec, FuzzedInputsDecodeOrFailCleanly) {
  std::mt19937_64 rng(RECORD_CODEC_FUZZ_SEED);
  const auto uniform = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };

  struct Seed {
    RecordKind kind;
    std::string record;
  };
  std::vector<Seed> seeds = {
      {RecordKind::value, d::encode_value(rich_value())},
      {RecordKind::value, d::encode_value(Value(42))},
      {RecordKind::value, d::encode_value(nested_maps(20, nested_lists(20)))},
      {RecordKind::history, d::encode_history(sample_history(false))},
      {RecordKind::history, d::encode_history(sample_history(true))},
      {RecordKind::run, d::encode_run(sample_run(false))},
      {RecordKind::run, d::encode_run(sample_run(true))},
  };
  for (int i = 0; i < 8; ++i) {
    seeds.push_back({RecordKind::value, d::encode_value(random_value(rng, 0))});
    HistoryEntry h = sample_history(i % 2 == 0);
    h.input = random_value(rng, 0);
    seeds.push_back({RecordKind::history, d::encode_history(h)});
  }
  const RecordKind kinds[] = {RecordKind::value, RecordKind::history, RecordKind::run};

  std::map<std::string, FuzzStats> stats;
  constexpr std::size_t kPerClass = 4'000 * RECORD_CODEC_FUZZ_SCALE;

  // 1. Random bytes of random length (sometimes behind a valid-looking header prefix).
  for (std::size_t i = 0; i < kPerClass; ++i) {
    std::string s(uniform(i % 4 == 0 ? 24 : 300), '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    if (i % 2 == 0 && s.size() >= 6) {
      std::memcpy(s.data(), "FLUX\1", 5);
      s[5] = static_cast<char>(1 + uniform(3));
    }
    fuzz_one(kinds[uniform(3)], s, stats["random bytes"], "random bytes", i);
  }
  // 2. Bit flips (1-4) at random positions of valid records.
  for (std::size_t i = 0; i < kPerClass; ++i) {
    const Seed& seed = seeds[uniform(seeds.size())];
    std::string s = seed.record;
    for (std::size_t n = 1 + uniform(4); n > 0; --n)
      s[uniform(s.size())] ^= static_cast<char>(1 << uniform(8));
    if (s == seed.record)
      s[uniform(s.size())] ^= static_cast<char>(1 << uniform(8));  // flips cancelled
    fuzz_one(seed.kind, s, stats["bit flips"], "bit flips", i);
  }
  // 3. Truncations (and a few extensions).
  for (std::size_t i = 0; i < kPerClass; ++i) {
    const Seed& seed = seeds[uniform(seeds.size())];
    std::string s = seed.record.substr(0, uniform(seed.record.size()));
    if (i % 10 == 0) s = seed.record + std::string(1 + uniform(16), static_cast<char>(rng()));
    fuzz_one(seed.kind, s, stats["truncations"], "truncations", i);
  }
  // 4. A valid envelope around a random payload.
  for (std::size_t i = 0; i < kPerClass; ++i) {
    std::string p(uniform(400), '\0');
    for (auto& c : p) c = static_cast<char>(i % 3 == 0 ? rng() % 4 : rng());  // some zero-heavy
    const RecordKind k = kinds[uniform(3)];
    fuzz_one(k, d::seal_record(k, p), stats["valid envelope, random payload"],
             "valid envelope, random payload", i);
  }
  // 5. A valid envelope with a recomputed CRC over a mutated payload: Cap'n Proto itself must
  //    reject or decode it (bit flips, byte overwrites, inserted/deleted bytes).
  for (std::size_t i = 0; i < 2 * kPerClass; ++i) {
    const Seed& seed = seeds[uniform(seeds.size())];
    std::string p = payload_of(seed.record);
    switch (i % 4) {
      case 0:
      case 1:
        for (std::size_t n = 1 + uniform(3); n > 0 && !p.empty(); --n)
          p[uniform(p.size())] ^= static_cast<char>(1 << uniform(8));
        break;
      case 2:
        if (!p.empty()) p[uniform(p.size())] = static_cast<char>(rng());
        break;
      default:
        if (rng() % 2 == 0 && !p.empty()) {
          p.erase(uniform(p.size()), 1 + uniform(4));
        } else {
          p.insert(uniform(p.size() + 1), std::string(1 + uniform(4), static_cast<char>(rng())));
        }
    }
    fuzz_one(seed.kind, d::seal_record(seed.kind, p), stats["valid envelope, mutated payload"],
             "valid envelope, mutated payload", i);
  }

  // 6. Forged: a valid envelope and CRC around content crafted to exhaust memory or to pass
  //    for another record -- packed zeros, huge claimed list/map lengths (with and without
  //    zero padding that raises the traversal limit), all-default records, another run's
  //    record, an entry at another position. Every one is refused, and no decode allocates
  //    more than a record of its size may use.
  std::int64_t worst_peak = 0;
  std::size_t worst_size = 0;
  const std::size_t kForged = 60 * RECORD_CODEC_FUZZ_SCALE;
  for (std::size_t i = 0; i < kForged; ++i) {
    RecordKind k = kinds[uniform(3)];
    std::string rec;
    switch (i % 5) {
      case 0:  // packed zeros; as a value record only where it is too big (a null is valid)
        if (k == RecordKind::value) {
          rec = d::seal_record(k, zero_payload((64 << 10) + uniform(2 << 20)));
        } else {
          rec = d::seal_record(k, zero_payload(16 + uniform(i % 2 == 0 ? 4096 : 2 << 20)));
        }
        break;
      case 1: {
        const std::size_t pads[] = {0, 1 << 20, 8 << 20, 24'000'000};
        k = i % 2 == 0 ? RecordKind::history : RecordKind::run;
        rec = claim_record(k, static_cast<unsigned>((1 << 16) + uniform((1u << 29) - (1 << 16))),
                           rng() % 2 == 0, pads[uniform(4)]);
        break;
      }
      case 2: {  // all defaults, but for a few random bytes of zero-heavy payload
        k = k == RecordKind::value ? RecordKind::run : k;
        capnp::MallocMessageBuilder mb;
        if (k == RecordKind::run) {
          mb.initRoot<w::RunRecord>().setOwner(std::string(uniform(8), 'x').c_str());
        } else {
          mb.initRoot<w::HistoryEntry>().setAttempt(static_cast<std::uint32_t>(rng()));
        }
        rec = d::seal_record(k, packed_payload(mb));
        break;
      }
      case 3: {  // another run's valid record
        k = RecordKind::run;
        RunInfo other = sample_run(i % 2 == 0);
        other.id = "run-" + std::to_string(rng());
        rec = d::encode_run(other);
        break;
      }
      default: {  // a valid entry at another position
        k = RecordKind::history;
        HistoryEntry h = sample_history(i % 2 == 0);
        h.seq = kSampleSeq + 1 + uniform(1000);
        rec = d::encode_history(h);
        break;
      }
    }
    const std::int64_t peak = peak_allocation(
        [&] { fuzz_one(k, rec, stats["forged, valid CRC"], "forged, valid CRC", i); });
    EXPECT_LE(peak, allowed_peak(rec.size() - d::k_envelope_size))
        << "forged #" << i << ": " << rec.size() << "-byte record";
    if (peak > worst_peak) {
      worst_peak = peak;
      worst_size = rec.size();
    }
  }
  std::printf("[ fuzz     ] forged: largest decode allocation %lld bytes (a %zu-byte record)\n",
              static_cast<long long>(worst_peak), worst_size);
  EXPECT_EQ(stats["forged, valid CRC"].decoded, 0u);

  std::size_t total = 0;
  for (const auto& [name, s] : stats) {
    total += s.inputs;
    std::printf("[ fuzz     ] %-32s %6zu inputs: %5zu decoded, %5zu rejected\n", name.c_str(),
                s.inputs, s.decoded, s.rejected);
    for (const auto& [cause, n] : s.causes)
      std::printf("[ fuzz     ]     %6zu  %s\n", n, cause.c_str());
  }
  EXPECT_GE(total, 20'000u);
  // Header fields are all checked and CRC-32C detects every 1-4 bit error in records of this
  // size, so no bit-flipped record may decode.
  EXPECT_EQ(stats["bit flips"].decoded, 0u);
  // The mutated-payload class must exercise Cap'n Proto's own validation, not just the envelope.
  const auto& mutated = stats["valid envelope, mutated payload"];
  EXPECT_GT(mutated.decoded, 0u);
  EXPECT_GT(mutated.rejected, 0u);
}

}  // namespace recordcodectest
