#include "format/record_codec.hpp"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "flux/error.hpp"
#include "format/worker_card.hpp"  // its encoding lives here, with the other records
#include "schema/flux.capnp.h"

namespace flux::detail {

namespace w = flux::wire;

const char* to_string(RecordKind kind) noexcept {
  switch (kind) {
    case RecordKind::value:
      return "value";
    case RecordKind::history:
      return "history";
    case RecordKind::run:
      return "run";
    case RecordKind::worker_card:
      return "worker card";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------
// CRC-32C

namespace {

constexpr std::array<std::uint32_t, 256> make_crc32c_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : (c >> 1);
    table[i] = c;
  }
  return table;
}

constexpr std::array<std::uint32_t, 256> k_crc32c_table = make_crc32c_table();

}  // namespace

std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc) noexcept {
  crc = ~crc;
  for (unsigned char b : bytes) crc = k_crc32c_table[(crc ^ b) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

// ---------------------------------------------------------------------------------------------
// Envelope

namespace {

void put_le32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
}

std::uint32_t get_le32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", static_cast<unsigned>(v));
  return buf;
}

// The key as it appears in messages: quoted, with quotes, backslashes and non-printable bytes
// escaped, so that a binary key cannot garble a log line.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

[[nodiscard]] Error corrupt(std::string_view key, const std::string& cause) {
  return Error(Errc::storage, "corrupt record at key " + quote(key) + ": " + cause);
}

// `out` starts with k_envelope_size placeholder bytes followed by the payload.
void finish_envelope(std::string& out, RecordKind kind) {
  const std::size_t payload_size = out.size() - k_envelope_size;
  if (payload_size > std::numeric_limits<std::uint32_t>::max()) {
    throw Error(Errc::invalid_argument, std::string("cannot encode ") + to_string(kind) +
                                            " record: payload of " + std::to_string(payload_size) +
                                            " bytes exceeds the 4 GiB record limit");
  }
  std::string_view payload(out.data() + k_envelope_size, payload_size);
  char* h = out.data();
  std::memcpy(h, k_record_magic, 4);
  h[4] = static_cast<char>(k_record_format_version);
  h[5] = static_cast<char>(kind);
  h[6] = 0;
  h[7] = 0;
  put_le32(h + 8, static_cast<std::uint32_t>(payload_size));
  put_le32(h + 12, crc32c(payload));
}

// Verifies everything but the payload's content; returns the payload.
std::string_view open_envelope(std::string_view bytes, std::string_view key, RecordKind expected) {
  if (bytes.size() < k_envelope_size) {
    throw corrupt(key, "too short (" + std::to_string(bytes.size()) + " bytes, need at least " +
                           std::to_string(k_envelope_size) + ")");
  }
  if (std::memcmp(bytes.data(), k_record_magic, 4) != 0) {
    throw corrupt(key, "bad magic (expected \"FLUX\", found " + quote(bytes.substr(0, 4)) +
                           "); not a Flux record");
  }
  const auto version = static_cast<unsigned char>(bytes[4]);
  if (version != k_record_format_version) {
    throw corrupt(key, "unsupported version " + std::to_string(version) +
                           " (this Flux reads version " + std::to_string(k_record_format_version) +
                           ")");
  }
  const auto kind = static_cast<unsigned char>(bytes[5]);
  if (kind != static_cast<unsigned char>(expected)) {
    const char* found = to_string(static_cast<RecordKind>(kind));
    throw corrupt(key,
                  std::string("wrong kind (expected ") + to_string(expected) + ", found " +
                      (std::strcmp(found, "unknown") == 0 ? "unknown kind " + std::to_string(kind)
                                                          : std::string(found)) +
                      ")");
  }
  if (bytes[6] != 0 || bytes[7] != 0) {
    throw corrupt(key, "reserved header bytes are not zero");
  }
  const std::uint32_t length = get_le32(bytes.data() + 8);
  const std::size_t follow = bytes.size() - k_envelope_size;
  if (length != follow) {
    throw corrupt(key, "length field says " + std::to_string(length) + " bytes but " +
                           std::to_string(follow) + " follow");
  }
  std::string_view payload = bytes.substr(k_envelope_size);
  const std::uint32_t stored = get_le32(bytes.data() + 12);
  const std::uint32_t computed = crc32c(payload);
  if (stored != computed) {
    throw corrupt(
        key, "checksum mismatch (stored " + hex32(stored) + ", computed " + hex32(computed) + ")");
  }
  return payload;
}

// How many words the packed stream `p` expands to (an upper bound if it is malformed; a
// truncated stream is reported by Cap'n Proto itself). Never allocates.
std::uint64_t unpacked_words(std::string_view p) {
  std::uint64_t words = 0;
  std::size_t i = 0;
  while (i < p.size()) {
    const auto tag = static_cast<unsigned char>(p[i++]);
    ++words;
    i += static_cast<std::size_t>(std::popcount(tag));
    if (tag == 0x00 || tag == 0xFF) {
      if (i >= p.size()) break;
      const auto run = static_cast<unsigned char>(p[i++]);
      words += run;
      if (tag == 0xFF) i += std::size_t{run} * 8;  // raw words follow
    }
  }
  return words;
}

// ---------------------------------------------------------------------------------------------
// The memory a read may use (see "memory" in record_codec.hpp)

// Words of slack in the traversal limit over the unpacked size (a multi-segment message from
// another writer may count a landing pad or two more than it holds).
constexpr std::uint64_t k_traversal_slack_words = 64;

// What reading a list element, a map entry, a string or bytes value costs, charged before it
// is allocated: the C++ objects it becomes (a map entry is a tree node holding key and value).
constexpr std::uint64_t k_list_element_cost = sizeof(Value);
constexpr std::uint64_t k_map_entry_cost = sizeof(std::string) + sizeof(Value) + 4 * sizeof(void*);

std::uint64_t read_memory_limit(std::size_t payload_size) {
  return std::max<std::uint64_t>(k_read_memory_floor,
                                 std::uint64_t{k_read_memory_ratio} * payload_size);
}

// The traversal limit for a payload that unpacks to `words`; Cap'n Proto allocates at most
// this many words for the message.
std::uint64_t traversal_limit(std::uint64_t words) { return words + k_traversal_slack_words; }

// What is left of a read's memory limit once the unpacked message is in memory; each charge
// is made before the allocation it stands for.
class ReadBudget {
 public:
  ReadBudget(std::string_view key, std::size_t payload_size, std::uint64_t message_bytes)
      : key_(key), payload_size_(payload_size), limit_(read_memory_limit(payload_size)) {
    if (message_bytes > limit_) {
      throw corrupt(key_, "implausible size: the " + std::to_string(payload_size) +
                              "-byte payload unpacks to " + std::to_string(message_bytes) +
                              " bytes, more than the " + std::to_string(limit_) +
                              " bytes a record of that size may use when read");
    }
    left_ = limit_ - message_bytes;
  }

  // `count` items of `unit` bytes each, described by `what` (e.g. "a list of 9 elements").
  template <class What>
  void charge(std::uint64_t count, std::uint64_t unit, const What& what) {
    if (count > left_ / unit) {  // count * unit > left_, without overflow
      throw corrupt(key_, "implausible size: " + what() + " would need " + std::to_string(count) +
                              " * " + std::to_string(unit) + " bytes, more than the " +
                              std::to_string(left_) + " bytes left of the " +
                              std::to_string(limit_) + " a record of " +
                              std::to_string(payload_size_) + " payload bytes may use when read");
    }
    left_ -= count * unit;
  }

  std::string_view key() const { return key_; }

 private:
  std::string_view key_;
  std::size_t payload_size_;
  std::uint64_t limit_;
  std::uint64_t left_;
};

// What reading `v` back costs beyond its root (which is a field of the record): the same
// charges `from_wire` makes, so that encode can refuse what decode would. Iterative.
std::uint64_t read_cost(const Value& root) {
  std::uint64_t cost = 0;
  std::vector<const Value*> todo{&root};
  while (!todo.empty()) {
    const Value& v = *todo.back();
    todo.pop_back();
    switch (v.kind()) {
      case Kind::string:
        cost += v.as_string().size();
        break;
      case Kind::bytes:
        cost += v.as_bytes().size();
        break;
      case Kind::list:
        cost += v.as_list().size() * k_list_element_cost;
        for (const Value& e : v.as_list()) todo.push_back(&e);
        break;
      case Kind::map:
        cost += v.as_map().size() * k_map_entry_cost;
        for (const auto& [k, e] : v.as_map()) {
          cost += k.size();
          todo.push_back(&e);
        }
        break;
      default:
        break;
    }
  }
  return cost;
}

// ---------------------------------------------------------------------------------------------
// Encoding

void check_depth(const Value& v, const char* what, const std::string& record) {
  if (const std::size_t depth = v.depth(); depth > k_max_value_depth) {
    throw Error(Errc::invalid_argument,
                "cannot encode " + record + ": " + what + " is nested " + std::to_string(depth) +
                    " levels deep (lists/maps); the limit is " + std::to_string(k_max_value_depth) +
                    " (flux::k_max_value_depth)");
  }
}

capnp::Text::Reader text(const std::string& s) {
  return capnp::Text::Reader(s.c_str(), s.size());  // std::string is NUL-terminated
}

// Cap'n Proto lists (and so Text, Data) hold at most 2^29 - 1 elements; Text also needs its NUL.
constexpr std::size_t k_max_list_elements = (std::size_t{1} << 29) - 1;

unsigned checked_size(std::size_t n, std::size_t max, const char* what) {
  if (n > max) {
    throw Error(Errc::invalid_argument,
                std::string("cannot encode a ") + what + " of size " + std::to_string(n) +
                    ": the record format allows at most " + std::to_string(max));
  }
  return static_cast<unsigned>(n);
}

void to_wire(w::Value::Builder b, const Value& v) {
  switch (v.kind()) {
    case Kind::null:
      b.setNull();
      return;
    case Kind::boolean:
      b.setBool(v.as_bool());
      return;
    case Kind::int64:
      b.setInt64(v.as_int());
      return;
    case Kind::float64:
      b.setFloat64(v.as_float());
      return;
    case Kind::string:
      checked_size(v.as_string().size(), k_max_list_elements - 1, "string");
      b.setText(text(v.as_string()));
      return;
    case Kind::bytes: {
      const Bytes& d = v.as_bytes();
      checked_size(d.size(), k_max_list_elements, "bytes value");
      b.setData(kj::arrayPtr(reinterpret_cast<const kj::byte*>(d.data()), d.size()));
      return;
    }
    case Kind::list: {
      const Value::List& l = v.as_list();
      auto out = b.initList(checked_size(l.size(), k_max_list_elements, "list"));
      for (unsigned i = 0; i < l.size(); ++i) to_wire(out[i], l[i]);
      return;
    }
    case Kind::map: {
      const Value::Map& m = v.as_map();
      auto out = b.initMap(checked_size(m.size(), k_max_list_elements, "map"));
      unsigned i = 0;
      for (const auto& [k, e] : m) {
        out[i].setKey(text(k));
        to_wire(out[i].initValue(), e);
        ++i;
      }
      return;
    }
  }
}

std::int64_t ns(Timestamp t) { return t.time_since_epoch().count(); }
Timestamp at_ns(std::int64_t n) { return Timestamp(std::chrono::nanoseconds(n)); }

// Appends the packed message to `out`.
class StringOutput final : public kj::OutputStream {
 public:
  explicit StringOutput(std::string& s) : s_(s) {}
  using kj::OutputStream::write;
  void write(const void* buffer, size_t size) override {
    s_.append(static_cast<const char*>(buffer), size);
  }

 private:
  std::string& s_;
};

// `content_cost` is what reading the record's strings and Values back costs (read_cost).
template <class Root, class Fill>
std::string encode(RecordKind kind, std::uint64_t content_cost, Fill&& fill) try {
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<Root>();
  fill(root);
  std::optional<capnp::MallocMessageBuilder> single;
  capnp::MessageBuilder* msg = &mb;
  if (mb.getSegmentsForOutput().size() > 1) {
    // Large records spill into more segments (and far pointers); copy into one segment so
    // the stored form is compact and read eagerly.
    const auto words = root.asReader().totalSize().wordCount + 1;  // + the root pointer
    single.emplace(static_cast<unsigned>(words), capnp::AllocationStrategy::FIXED_SIZE);
    single->setRoot(root.asReader());
    msg = &*single;
  }
  std::string out(k_envelope_size, '\0');
  StringOutput stream(out);
  capnp::writePackedMessage(stream, *msg);
  // Refuse what a reader would refuse as implausible (see "memory" in record_codec.hpp), so
  // that every record written can be read back.
  const std::size_t payload_size = out.size() - k_envelope_size;
  const std::uint64_t need =
      8 * traversal_limit(unpacked_words(std::string_view(out).substr(k_envelope_size))) +
      content_cost;
  if (need > read_memory_limit(payload_size)) {
    throw Error(Errc::invalid_argument,
                std::string("cannot encode ") + to_string(kind) + " record: reading its " +
                    std::to_string(payload_size) + " bytes back would need " +
                    std::to_string(need) + " bytes, more than the " +
                    std::to_string(read_memory_limit(payload_size)) +
                    " a record of that size may use (" + std::to_string(k_read_memory_ratio) +
                    " times its size, at least " + std::to_string(k_read_memory_floor >> 20) +
                    " MiB); the value is mostly nulls or zero bytes -- store such data compactly");
  }
  finish_envelope(out, kind);
  return out;
} catch (const kj::Exception& e) {  // a Cap'n Proto limit not checked above
  throw Error(Errc::invalid_argument, std::string("cannot encode ") + to_string(kind) +
                                          " record: " + e.getDescription().cStr());
}

// ---------------------------------------------------------------------------------------------
// Decoding

std::string str(capnp::Text::Reader t, ReadBudget& budget) {
  budget.charge(t.size(), 1, [&] { return "a string of " + std::to_string(t.size()) + " bytes"; });
  return std::string(t.begin(), t.size());
}

// Recursion is bounded: a Value deeper than k_max_value_depth is refused.
Value from_wire(w::Value::Reader r, ReadBudget& budget, std::size_t depth = 0) {
  const std::string_view key = budget.key();
  const auto enter = [&] {
    if (depth == k_max_value_depth) {
      throw corrupt(key, "invalid content: a Value is nested more than " +
                             std::to_string(k_max_value_depth) + " levels deep (lists/maps)");
    }
  };
  switch (r.which()) {
    case w::Value::NULL_:
      return Value();
    case w::Value::BOOL:
      return Value(r.getBool());
    case w::Value::INT64:
      return Value(r.getInt64());
    case w::Value::FLOAT64:
      return Value(r.getFloat64());
    case w::Value::TEXT:
      return Value(str(r.getText(), budget));
    case w::Value::DATA: {
      auto d = r.getData();
      budget.charge(d.size(), 1, [&] { return "bytes of " + std::to_string(d.size()); });
      Bytes b(d.size());
      if (d.size() != 0) std::memcpy(b.data(), d.begin(), d.size());
      return Value(std::move(b));
    }
    case w::Value::LIST: {
      enter();
      auto l = r.getList();
      budget.charge(l.size(), k_list_element_cost,
                    [&] { return "a list of " + std::to_string(l.size()) + " elements"; });
      Value::List out;
      out.reserve(l.size());
      for (auto e : l) out.push_back(from_wire(e, budget, depth + 1));
      return Value(std::move(out));
    }
    case w::Value::MAP: {
      enter();
      auto entries = r.getMap();
      budget.charge(entries.size(), k_map_entry_cost,
                    [&] { return "a map of " + std::to_string(entries.size()) + " entries"; });
      Value::Map out;
      for (auto e : entries) {
        auto [it, inserted] = out.emplace(str(e.getKey(), budget), Value());
        if (!inserted)
          throw corrupt(key, "invalid content: map has duplicate key " + quote(it->first));
        it->second = from_wire(e.getValue(), budget, depth + 1);
      }
      return Value(std::move(out));
    }
  }
  throw corrupt(key, "unknown Value case " + std::to_string(static_cast<unsigned>(r.which())) +
                         " (written by a newer Flux?)");
}

template <class Root, class Convert>
auto decode(std::string_view bytes, std::string_view key, RecordKind kind, Convert&& convert) {
  const std::string_view payload = open_envelope(bytes, key, kind);
  // Before Cap'n Proto allocates anything: how big the message really is, and whether a
  // record of this size may be that big.
  const std::uint64_t words = traversal_limit(unpacked_words(payload));
  ReadBudget budget(key, payload.size(), 8 * words);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words;
  options.nestingLimit = k_nesting_limit;
  kj::ArrayInputStream in(
      kj::arrayPtr(reinterpret_cast<const kj::byte*>(payload.data()), payload.size()));
  try {
    // Cap'n Proto validates lazily: the whole conversion (and the reader's destructor, which
    // skips unread segments) happens inside the try.
    auto result = [&] {
      capnp::PackedMessageReader reader(in, options);
      return convert(reader.getRoot<Root>(), budget);
    }();
    if (const auto rest = in.tryGetReadBuffer().size(); rest != 0) {
      throw corrupt(
          key, "undecodable: " + std::to_string(rest) + " bytes follow the end of the message");
    }
    return result;
  } catch (const kj::Exception& e) {
    throw corrupt(key, std::string("undecodable: ") + e.getDescription().cStr());
  } catch (const std::bad_alloc&) {  // the budget should prevent it; never let it escape
    throw corrupt(key, "undecodable: out of memory while reading a " +
                           std::to_string(payload.size()) + "-byte payload");
  } catch (const std::length_error& e) {
    throw corrupt(key, std::string("undecodable: ") + e.what());
  }
}

}  // namespace

std::string encode_value(const Value& value) {
  check_depth(value, "value", "value record");
  return encode<w::Value>(RecordKind::value, read_cost(value),
                          [&](w::Value::Builder b) { to_wire(b, value); });
}

std::string encode_history(const HistoryEntry& e) {
  if (e.input.depth() > k_max_value_depth || e.output.depth() > k_max_value_depth) {
    const std::string record = "history entry " + std::to_string(e.seq) + " (node " +
                               quote(e.node) + ", step " + quote(e.step) + ")";
    check_depth(e.input, "its input", record);
    check_depth(e.output, "its output", record);
  }
  std::uint64_t cost = e.node.size() + e.step.size() + e.worker.size() +
                       (e.error ? e.error->size() : 0) + read_cost(e.input) + read_cost(e.output);
  for (const std::string& child : e.children) cost += sizeof(std::string) + child.size();
  return encode<w::HistoryEntry>(RecordKind::history, cost, [&](w::HistoryEntry::Builder b) {
    b.setSeq(e.seq);
    switch (e.type) {
      case HistoryEntry::Type::node:
        b.setType(w::HistoryEntry::Type::NODE);
        break;
      case HistoryEntry::Type::parallel:
        b.setType(w::HistoryEntry::Type::PARALLEL);
        break;
      case HistoryEntry::Type::resume:
        b.setType(w::HistoryEntry::Type::RESUME);
        break;
      case HistoryEntry::Type::cancel:
        b.setType(w::HistoryEntry::Type::CANCEL);
        break;
      case HistoryEntry::Type::compensating:
        b.setType(w::HistoryEntry::Type::COMPENSATING);
        break;
      case HistoryEntry::Type::compensate:
        b.setType(w::HistoryEntry::Type::COMPENSATE);
        break;
    }
    b.setNode(text(e.node));
    b.setStep(text(e.step));
    b.setAttempt(e.attempt);
    b.setStartNs(ns(e.start));
    b.setEndNs(ns(e.end));
    b.setDurationNs(e.duration.count());
    to_wire(b.initInput(), e.input);
    to_wire(b.initOutput(), e.output);
    if (e.error) {
      b.getError().setMessage(text(*e.error));
    } else {
      b.getError().setNone();
    }
    if (!e.children.empty()) {
      auto children = b.initChildren(static_cast<unsigned>(e.children.size()));
      for (unsigned i = 0; i < e.children.size(); ++i) children.set(i, text(e.children[i]));
    }
    if (!e.worker.empty()) b.setWorker(text(e.worker));
  });
}

std::string encode_run(const RunInfo& r) {
  if (r.id.empty()) {
    // A reader refuses a run record without an id (it cannot be the record its key is for).
    throw Error(Errc::invalid_argument, "cannot encode run record: the run id is empty");
  }
  if (r.input.depth() > k_max_value_depth || r.output.depth() > k_max_value_depth) {
    const std::string record = "run " + quote(r.id);
    check_depth(r.input, "its input", record);
    check_depth(r.output, "its output", record);
  }
  std::uint64_t cost = r.id.size() + r.pipeline.size() + r.fingerprint.size() + r.owner.size() +
                       r.parent_run_id.size() + r.parent_step.size() + read_cost(r.input) +
                       read_cost(r.output);
  if (r.error) cost += r.error->node.size() + r.error->step.size() + r.error->message.size();
  return encode<w::RunRecord>(RecordKind::run, cost, [&](w::RunRecord::Builder b) {
    b.setId(text(r.id));
    b.setPipeline(text(r.pipeline));
    b.setFingerprint(text(r.fingerprint));
    switch (r.status) {
      case RunStatus::running:
        b.setStatus(w::RunRecord::Status::RUNNING);
        break;
      case RunStatus::completed:
        b.setStatus(w::RunRecord::Status::COMPLETED);
        break;
      case RunStatus::failed:
        b.setStatus(w::RunRecord::Status::FAILED);
        break;
      case RunStatus::cancelled:
        b.setStatus(w::RunRecord::Status::CANCELLED);
        break;
      case RunStatus::compensated:
        b.setStatus(w::RunRecord::Status::COMPENSATED);
        break;
      case RunStatus::compensation_failed:
        b.setStatus(w::RunRecord::Status::COMPENSATION_FAILED);
        break;
    }
    b.setCreatedNs(ns(r.created));
    b.setUpdatedNs(ns(r.updated));
    b.setHasFinished(r.finished.has_value());
    b.setFinishedNs(r.finished ? ns(*r.finished) : 0);
    to_wire(b.initInput(), r.input);
    to_wire(b.initOutput(), r.output);
    if (r.error) {
      auto f = b.getFailure().initFailed();
      f.setNode(text(r.error->node));
      f.setStep(text(r.error->step));
      f.setMessage(text(r.error->message));
    } else {
      b.getFailure().setNone();
    }
    b.setOwner(text(r.owner));
    b.setParentRunId(text(r.parent_run_id));
    b.setParentStep(text(r.parent_step));
    b.setHasDeadline(r.deadline.has_value());
    b.setDeadlineNs(r.deadline ? ns(*r.deadline) : 0);
    b.setHasStepsTotal(r.steps_total.has_value());
    b.setStepsTotal(r.steps_total.value_or(0));
    b.setHasStepsDone(r.steps_done.has_value());
    b.setStepsDone(r.steps_done.value_or(0));
    switch (r.history_values) {
      case HistoryValues::full:
        b.setHistoryValues(w::RunRecord::HistoryValues::FULL);
        break;
      case HistoryValues::none:
        b.setHistoryValues(w::RunRecord::HistoryValues::NONE);
        break;
      case HistoryValues::truncated:
        b.setHistoryValues(w::RunRecord::HistoryValues::TRUNCATED);
        break;
    }
  });
}

Value decode_value(std::string_view bytes, std::string_view key) {
  return decode<w::Value>(
      bytes, key, RecordKind::value,
      [&](w::Value::Reader r, ReadBudget& budget) { return from_wire(r, budget); });
}

HistoryEntry decode_history(std::string_view bytes, std::string_view key,
                            std::uint64_t expected_seq) {
  return decode<w::HistoryEntry>(
      bytes, key, RecordKind::history, [&](w::HistoryEntry::Reader r, ReadBudget& budget) {
        HistoryEntry e;
        e.seq = r.getSeq();
        if (e.seq != expected_seq) {
          throw corrupt(key, "invalid content: the entry says it is number " +
                                 std::to_string(e.seq) +
                                 " of its run's history but is stored as number " +
                                 std::to_string(expected_seq));
        }
        switch (r.getType()) {
          case w::HistoryEntry::Type::NODE:
            e.type = HistoryEntry::Type::node;
            break;
          case w::HistoryEntry::Type::PARALLEL:
            e.type = HistoryEntry::Type::parallel;
            break;
          case w::HistoryEntry::Type::RESUME:
            e.type = HistoryEntry::Type::resume;
            break;
          case w::HistoryEntry::Type::CANCEL:
            e.type = HistoryEntry::Type::cancel;
            break;
          case w::HistoryEntry::Type::COMPENSATING:
            e.type = HistoryEntry::Type::compensating;
            break;
          case w::HistoryEntry::Type::COMPENSATE:
            e.type = HistoryEntry::Type::compensate;
            break;
          default:
            throw corrupt(key, "unknown history entry type " +
                                   std::to_string(static_cast<unsigned>(r.getType())) +
                                   " (written by a newer Flux?)");
        }
        e.node = str(r.getNode(), budget);
        e.step = str(r.getStep(), budget);
        e.attempt = r.getAttempt();
        e.start = at_ns(r.getStartNs());
        e.end = at_ns(r.getEndNs());
        e.duration = std::chrono::nanoseconds(r.getDurationNs());
        e.input = from_wire(r.getInput(), budget);
        e.output = from_wire(r.getOutput(), budget);
        auto err = r.getError();
        switch (err.which()) {
          case w::HistoryEntry::Error::NONE:
            break;
          case w::HistoryEntry::Error::MESSAGE:
            e.error = str(err.getMessage(), budget);
            break;
          default:
            throw corrupt(key, "unknown history error case " +
                                   std::to_string(static_cast<unsigned>(err.which())) +
                                   " (written by a newer Flux?)");
        }
        auto children = r.getChildren();
        budget.charge(children.size(), sizeof(std::string), [&] {
          return "a list of " + std::to_string(children.size()) + " child run ids";
        });
        e.children.reserve(children.size());
        for (auto child : children) e.children.push_back(str(child, budget));
        e.worker = str(r.getWorker(), budget);
        return e;
      });
}

RunInfo decode_run(std::string_view bytes, std::string_view key, std::string_view expected_run_id) {
  return decode<w::RunRecord>(
      bytes, key, RecordKind::run, [&](w::RunRecord::Reader r, ReadBudget& budget) {
        RunInfo info;
        info.id = str(r.getId(), budget);
        // A valid envelope does not prove the record is this run's: refuse another run's record
        // (resuming it would write into that run) and an all-default one.
        if (info.id.empty()) throw corrupt(key, "invalid content: the run id is empty");
        if (info.id != expected_run_id) {
          throw corrupt(key, "invalid content: run id mismatch (the record is run " +
                                 quote(info.id) + "'s; the key is run " + quote(expected_run_id) +
                                 "'s)");
        }
        info.pipeline = str(r.getPipeline(), budget);
        info.fingerprint = str(r.getFingerprint(), budget);
        switch (r.getStatus()) {
          case w::RunRecord::Status::RUNNING:
            info.status = RunStatus::running;
            break;
          case w::RunRecord::Status::COMPLETED:
            info.status = RunStatus::completed;
            break;
          case w::RunRecord::Status::FAILED:
            info.status = RunStatus::failed;
            break;
          case w::RunRecord::Status::CANCELLED:
            info.status = RunStatus::cancelled;
            break;
          case w::RunRecord::Status::COMPENSATED:
            info.status = RunStatus::compensated;
            break;
          case w::RunRecord::Status::COMPENSATION_FAILED:
            info.status = RunStatus::compensation_failed;
            break;
          default:
            throw corrupt(key, "unknown run status " +
                                   std::to_string(static_cast<unsigned>(r.getStatus())) +
                                   " (written by a newer Flux?)");
        }
        info.created = at_ns(r.getCreatedNs());
        info.updated = at_ns(r.getUpdatedNs());
        if (r.getHasFinished()) info.finished = at_ns(r.getFinishedNs());
        info.input = from_wire(r.getInput(), budget);
        info.output = from_wire(r.getOutput(), budget);
        info.owner = str(r.getOwner(), budget);
        info.parent_run_id = str(r.getParentRunId(), budget);
        info.parent_step = str(r.getParentStep(), budget);
        if (r.getHasDeadline()) info.deadline = at_ns(r.getDeadlineNs());
        if (r.getHasStepsTotal()) info.steps_total = r.getStepsTotal();
        if (r.getHasStepsDone()) info.steps_done = r.getStepsDone();
        switch (r.getHistoryValues()) {
          case w::RunRecord::HistoryValues::FULL:
            info.history_values = HistoryValues::full;
            break;
          case w::RunRecord::HistoryValues::NONE:
            info.history_values = HistoryValues::none;
            break;
          case w::RunRecord::HistoryValues::TRUNCATED:
            info.history_values = HistoryValues::truncated;
            break;
          default:
            throw corrupt(key, "unknown history value policy " +
                                   std::to_string(static_cast<unsigned>(r.getHistoryValues())) +
                                   " (written by a newer Flux?)");
        }
        auto failure = r.getFailure();
        switch (failure.which()) {
          case w::RunRecord::Failure::NONE:
            break;
          case w::RunRecord::Failure::FAILED: {
            auto f = failure.getFailed();
            info.error = RunFailure{str(f.getNode(), budget), str(f.getStep(), budget),
                                    str(f.getMessage(), budget)};
            break;
          }
          default:
            throw corrupt(key, "unknown run failure case " +
                                   std::to_string(static_cast<unsigned>(failure.which())) +
                                   " (written by a newer Flux?)");
        }
        return info;
      });
}

// ---------------------------------------------------------------------------------------------
// Worker cards (cluster/worker_directory.hpp)

namespace {

// What reading one node of a card costs beyond its strings.
constexpr std::uint64_t k_card_node_cost = sizeof(std::pair<std::string, std::string>);

}  // namespace

std::string encode_worker_card(const WorkerCard& card) {
  if (card.id.empty()) {
    // A reader refuses a card without an id (it cannot be the card its key is for).
    throw Error(Errc::invalid_argument, "cannot encode worker card: the worker id is empty");
  }
  std::uint64_t cost = card.id.size() + card.host.size() + card.protocol.size();
  for (std::size_t i = 0; i < card.nodes.size(); ++i) {
    const auto& [name, signature] = card.nodes[i];
    if (i > 0 && !(card.nodes[i - 1].first < name)) {
      // A reader refuses such a card (see decode_worker_card), so it is never written.
      throw Error(Errc::invalid_argument, "cannot encode worker card " + quote(card.id) +
                                              ": its nodes are not strictly ascending by name (" +
                                              quote(card.nodes[i - 1].first) + " comes before " +
                                              quote(name) + ")");
    }
    cost += k_card_node_cost + name.size() + signature.size();
  }
  return encode<w::WorkerCard>(RecordKind::worker_card, cost, [&](w::WorkerCard::Builder b) {
    b.setId(text(card.id));
    b.setHost(text(card.host));
    b.setPort(card.port);
    b.setCapacity(card.capacity);
    b.setProtocol(text(card.protocol));
    b.setTls(card.tls);
    b.setPid(card.pid);
    b.setStartedNs(ns(card.started));
    b.setBusy(card.busy);
    b.setHeartbeatNs(ns(card.heartbeat));
    if (!card.nodes.empty()) {
      auto nodes =
          b.initNodes(checked_size(card.nodes.size(), k_max_list_elements, "list of nodes"));
      for (unsigned i = 0; i < card.nodes.size(); ++i) {
        nodes[i].setName(text(card.nodes[i].first));
        nodes[i].setSignature(text(card.nodes[i].second));
      }
    }
  });
}

WorkerCard decode_worker_card(std::string_view bytes, std::string_view key,
                              std::string_view expected_id) {
  return decode<w::WorkerCard>(
      bytes, key, RecordKind::worker_card, [&](w::WorkerCard::Reader r, ReadBudget& budget) {
        WorkerCard card;
        card.id = str(r.getId(), budget);
        // A valid envelope does not prove the card is this worker's: refuse another worker's
        // card (drivers would reach the wrong process under this id) and an all-default one.
        if (card.id.empty()) throw corrupt(key, "invalid content: the worker id is empty");
        if (card.id != expected_id) {
          throw corrupt(key, "invalid content: worker id mismatch (the card is worker " +
                                 quote(card.id) + "'s; the key is worker " + quote(expected_id) +
                                 "'s)");
        }
        card.host = str(r.getHost(), budget);
        card.port = r.getPort();
        card.capacity = r.getCapacity();
        card.protocol = str(r.getProtocol(), budget);
        card.tls = r.getTls();
        card.pid = r.getPid();
        card.started = at_ns(r.getStartedNs());
        card.busy = r.getBusy();
        card.heartbeat = at_ns(r.getHeartbeatNs());
        auto nodes = r.getNodes();
        budget.charge(nodes.size(), k_card_node_cost,
                      [&] { return "a list of " + std::to_string(nodes.size()) + " nodes"; });
        card.nodes.reserve(nodes.size());
        for (auto n : nodes) {
          std::string name = str(n.getName(), budget);
          if (!card.nodes.empty() && !(card.nodes.back().first < name)) {
            throw corrupt(key, "invalid content: the nodes are not strictly ascending by name (" +
                                   quote(card.nodes.back().first) + " comes before " + quote(name) +
                                   ")");
          }
          card.nodes.emplace_back(std::move(name), str(n.getSignature(), budget));
        }
        return card;
      });
}

std::string seal_record(RecordKind kind, std::string_view payload) {
  std::string out(k_envelope_size, '\0');
  out.append(payload);
  finish_envelope(out, kind);
  return out;
}

}  // namespace flux::detail
