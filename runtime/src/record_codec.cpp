#include "record_codec.hpp"

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
#include <optional>
#include <utility>

#include "flux/error.hpp"
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
// Encoding

// True if `v` has more than `budget` levels of nested lists/maps. Recurses at most budget+1 deep.
bool deeper_than(const Value& v, int budget) {
  if (v.is_list()) {
    if (budget == 0) return true;
    for (const Value& e : v.as_list())
      if (deeper_than(e, budget - 1)) return true;
  } else if (v.is_map()) {
    if (budget == 0) return true;
    for (const auto& [k, e] : v.as_map())
      if (deeper_than(e, budget - 1)) return true;
  }
  return false;
}

void check_depth(const Value& v, const char* what, const std::string& record) {
  if (deeper_than(v, k_max_value_depth)) {
    throw Error(Errc::invalid_argument,
                "cannot encode " + record + ": " + what + " is nested more than " +
                    std::to_string(k_max_value_depth) + " levels deep (lists/maps); the limit is " +
                    std::to_string(k_max_value_depth));
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

template <class Root, class Fill>
std::string encode(RecordKind kind, Fill&& fill) try {
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
  finish_envelope(out, kind);
  return out;
} catch (const kj::Exception& e) {  // a Cap'n Proto limit not checked above
  throw Error(Errc::invalid_argument, std::string("cannot encode ") + to_string(kind) +
                                          " record: " + e.getDescription().cStr());
}

// ---------------------------------------------------------------------------------------------
// Decoding

std::string str(capnp::Text::Reader t) { return std::string(t.begin(), t.size()); }

Value from_wire(w::Value::Reader r, std::string_view key, int depth = 0) {
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
      return Value(str(r.getText()));
    case w::Value::DATA: {
      auto d = r.getData();
      Bytes b(d.size());
      if (d.size() != 0) std::memcpy(b.data(), d.begin(), d.size());
      return Value(std::move(b));
    }
    case w::Value::LIST: {
      enter();
      auto l = r.getList();
      Value::List out;
      out.reserve(l.size());
      for (auto e : l) out.push_back(from_wire(e, key, depth + 1));
      return Value(std::move(out));
    }
    case w::Value::MAP: {
      enter();
      Value::Map out;
      for (auto e : r.getMap()) {
        auto [it, inserted] = out.emplace(str(e.getKey()), Value());
        if (!inserted)
          throw corrupt(key, "invalid content: map has duplicate key " + quote(it->first));
        it->second = from_wire(e.getValue(), key, depth + 1);
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
  capnp::ReaderOptions options;
  options.traversalLimitInWords = std::max<std::uint64_t>(1024, 8 * unpacked_words(payload));
  options.nestingLimit = k_nesting_limit;
  kj::ArrayInputStream in(
      kj::arrayPtr(reinterpret_cast<const kj::byte*>(payload.data()), payload.size()));
  try {
    // Cap'n Proto validates lazily: the whole conversion (and the reader's destructor, which
    // skips unread segments) happens inside the try.
    auto result = [&] {
      capnp::PackedMessageReader reader(in, options);
      return convert(reader.getRoot<Root>());
    }();
    if (const auto rest = in.tryGetReadBuffer().size(); rest != 0) {
      throw corrupt(
          key, "undecodable: " + std::to_string(rest) + " bytes follow the end of the message");
    }
    return result;
  } catch (const kj::Exception& e) {
    throw corrupt(key, std::string("undecodable: ") + e.getDescription().cStr());
  }
}

}  // namespace

std::string encode_value(const Value& value) {
  check_depth(value, "value", "value record");
  return encode<w::Value>(RecordKind::value, [&](w::Value::Builder b) { to_wire(b, value); });
}

std::string encode_history(const HistoryEntry& e) {
  if (deeper_than(e.input, k_max_value_depth) || deeper_than(e.output, k_max_value_depth)) {
    const std::string record = "history entry " + std::to_string(e.seq) + " (node " +
                               quote(e.node) + ", step " + quote(e.step) + ")";
    check_depth(e.input, "its input", record);
    check_depth(e.output, "its output", record);
  }
  return encode<w::HistoryEntry>(RecordKind::history, [&](w::HistoryEntry::Builder b) {
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
  });
}

std::string encode_run(const RunInfo& r) {
  if (deeper_than(r.input, k_max_value_depth) || deeper_than(r.output, k_max_value_depth)) {
    const std::string record = "run " + quote(r.id);
    check_depth(r.input, "its input", record);
    check_depth(r.output, "its output", record);
  }
  return encode<w::RunRecord>(RecordKind::run, [&](w::RunRecord::Builder b) {
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
  return decode<w::Value>(bytes, key, RecordKind::value,
                          [&](w::Value::Reader r) { return from_wire(r, key); });
}

HistoryEntry decode_history(std::string_view bytes, std::string_view key) {
  return decode<w::HistoryEntry>(bytes, key, RecordKind::history, [&](w::HistoryEntry::Reader r) {
    HistoryEntry e;
    e.seq = r.getSeq();
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
      default:
        throw corrupt(key, "unknown history entry type " +
                               std::to_string(static_cast<unsigned>(r.getType())) +
                               " (written by a newer Flux?)");
    }
    e.node = str(r.getNode());
    e.step = str(r.getStep());
    e.attempt = r.getAttempt();
    e.start = at_ns(r.getStartNs());
    e.end = at_ns(r.getEndNs());
    e.duration = std::chrono::nanoseconds(r.getDurationNs());
    e.input = from_wire(r.getInput(), key);
    e.output = from_wire(r.getOutput(), key);
    auto err = r.getError();
    switch (err.which()) {
      case w::HistoryEntry::Error::NONE:
        break;
      case w::HistoryEntry::Error::MESSAGE:
        e.error = str(err.getMessage());
        break;
      default:
        throw corrupt(key, "unknown history error case " +
                               std::to_string(static_cast<unsigned>(err.which())) +
                               " (written by a newer Flux?)");
    }
    for (auto child : r.getChildren()) e.children.push_back(str(child));
    return e;
  });
}

RunInfo decode_run(std::string_view bytes, std::string_view key) {
  return decode<w::RunRecord>(bytes, key, RecordKind::run, [&](w::RunRecord::Reader r) {
    RunInfo info;
    info.id = str(r.getId());
    info.pipeline = str(r.getPipeline());
    info.fingerprint = str(r.getFingerprint());
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
      default:
        throw corrupt(key, "unknown run status " +
                               std::to_string(static_cast<unsigned>(r.getStatus())) +
                               " (written by a newer Flux?)");
    }
    info.created = at_ns(r.getCreatedNs());
    info.updated = at_ns(r.getUpdatedNs());
    if (r.getHasFinished()) info.finished = at_ns(r.getFinishedNs());
    info.input = from_wire(r.getInput(), key);
    info.output = from_wire(r.getOutput(), key);
    info.owner = str(r.getOwner());
    info.parent_run_id = str(r.getParentRunId());
    info.parent_step = str(r.getParentStep());
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
        info.error = RunFailure{str(f.getNode()), str(f.getStep()), str(f.getMessage())};
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

std::string seal_record(RecordKind kind, std::string_view payload) {
  std::string out(k_envelope_size, '\0');
  out.append(payload);
  finish_envelope(out, kind);
  return out;
}

}  // namespace flux::detail
