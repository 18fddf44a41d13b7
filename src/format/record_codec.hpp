#pragma once
/// \file
/// The durable record format (internal): how a `Value`, a `HistoryEntry`, a
/// `RunInfo` and a worker's card become bytes in a store (Redis) and back.
///
/// Every record is an envelope followed by a payload:
///
/// | offset | size | content                                               |
/// |-------:|-----:|-------------------------------------------------------|
/// |      0 |    4 | magic "FLUX"                                          |
/// |      4 |    1 | format version (1)                                    |
/// |      5 |    1 | `RecordKind`                                          |
/// |      6 |    2 | reserved, 0 (a reader rejects anything else)          |
/// |      8 |    4 | payload length in bytes, little endian                |
/// |     12 |    4 | CRC-32C (Castagnoli) of the payload, little endian    |
/// |     16 |    n | payload: one Cap'n Proto message, packed encoding     |
///
/// The payload's root struct is `flux::wire::Value`, `HistoryEntry`, `RunRecord` or
/// `WorkerCard` (schema/flux.capnp, which documents the evolution rules).
///
/// Worker cards are encoded here too (this file is the only user of Cap'n Proto), by
/// `encode_worker_card` / `decode_worker_card`, declared beside `WorkerCard` in
/// cluster/worker_directory.hpp and held to the same rules as the records below.
///
/// Decoding verifies the whole envelope (size, magic, version, kind, reserved,
/// length, checksum) before it looks at the payload. A valid envelope proves only that the
/// bytes were not damaged, not who wrote them, so the payload is then read within limits
/// that a forged record cannot talk its way past:
///  - memory: decoding a record whose payload is P bytes uses at most
///    max(`k_read_memory_floor` (32 MiB), `k_read_memory_ratio` (32) * P) bytes, counting
///    the unpacked message and every string, list and map it becomes. Packing compresses
///    zero words up to 1024:1, so a 1 MiB payload of zeros would otherwise unpack to 1 GiB
///    before a single field is read; the unpacked size is computed from the packed bytes
///    without allocating and refused if over the limit, and every list, map, string and
///    bytes value is charged against what is left BEFORE it is allocated (a few bytes can
///    claim a list of 2^29 elements). Real data stays far below 32x (ints, floats, strings,
///    maps: under 20x); only mostly-null lists and mostly-zero bytes compress more, and those
///    still read back up to the 32 MiB floor (200,000 nulls, 1 MB of zero bytes).
///    `encode_*` applies the same rule and refuses, with `Error(invalid_argument)`, a record
///    it could not read back -- a 24 MiB list of nulls, say.
///  - traversal limit: the unpacked size in words (+ a little slack), so that Cap'n
///    Proto's segment allocation, too, is bounded by what the payload really holds.
///  - nesting limit: `k_nesting_limit` (188). Cap'n Proto spends two nesting levels
///    per list (list pointer, element struct) and three per map (list pointer,
///    entry struct, value pointer), plus two for the record's root and field,
///    so 188 admits every Value that `encode_*` accepts -- at most
///    `flux::k_max_value_depth` (60) lists/maps deep, even when all of them are maps.
///    (The 64 one might pick by default would admit only 21 nested maps.)
///    `encode_*` refuses a deeper Value with `Error(invalid_argument)` naming
///    the limit, so a record that was written can always be read back, and
///    `decode_*` refuses one from another writer as corrupt, so whatever is
///    read can be written again.
///  - identity: a run record must carry a non-empty run id equal to the one its key is for
///    (so another run's valid record copied under this run's key is refused, and so is an
///    all-default record), and a history entry's sequence number must equal its position in
///    the run's history. Other fields (pipeline, fingerprint, node, step) may be empty: the
///    Storage contract lets a store hold such records, and whatever a store accepts must
///    read back. A history entry carries no run id, so one copied from another run to the
///    same position is not detected. A worker card must carry the non-empty id its key is
///    for, and its nodes strictly ascending by name.
///
/// Every decoding failure throws `flux::Error(Errc::storage, ...)` whose message
/// starts with `corrupt record at key "<key>": ` and names the cause (too short,
/// bad magic, unsupported version, wrong kind, length mismatch, checksum
/// mismatch, undecodable payload, implausible sizes, a run id or position that does not
/// match the key, unknown union case or enum value written by a newer Flux, ...). No other
/// exception escapes for bad bytes, not even std::bad_alloc.
///
/// All functions are reentrant and thread-safe (no shared state).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "flux/record.hpp"
#include "flux/value.hpp"

namespace flux::detail {

/// Kinds are only appended, never renumbered: stored records carry them.
enum class RecordKind : std::uint8_t { value = 1, history = 2, run = 3, worker_card = 4 };

/// "value", "history", "run", "worker card", or "unknown".
const char* to_string(RecordKind kind) noexcept;

inline constexpr char k_record_magic[4] = {'F', 'L', 'U', 'X'};
inline constexpr std::uint8_t k_record_format_version = 1;
inline constexpr std::size_t k_envelope_size = 16;
/// Cap'n Proto nesting limit used when reading records: 3 levels per map, and room for the
/// record's own structure (see above). The depth limit itself is `flux::k_max_value_depth`.
inline constexpr int k_nesting_limit = 3 * static_cast<int>(k_max_value_depth) + 8;
/// Reading a record with a payload of P bytes may use max(floor, ratio * P) bytes (see above).
inline constexpr std::size_t k_read_memory_floor = std::size_t{32} << 20;
inline constexpr std::size_t k_read_memory_ratio = 32;

/// Encode into an enveloped record. Throw `Error(invalid_argument)` if a Value is nested
/// deeper than `flux::k_max_value_depth`, a string/bytes/list/map has 2^29 or more elements
/// (Cap'n Proto's list limit), the record would exceed 4 GiB, or reading it back would need
/// more memory than a record of its size may use (see above); `encode_run` also if the run
/// id is empty.
std::string encode_value(const Value& value);
std::string encode_history(const HistoryEntry& entry);
/// `run.history` is NOT stored: history entries are records of their own.
std::string encode_run(const RunInfo& run);

/// Decode an enveloped record read from the store under `key` (used in error messages).
/// Throw `Error(storage)` naming `key` and the cause if the bytes are not a valid record of
/// that kind, or not the record the key is for: `decode_history` wants the entry stored at
/// position `expected_seq` of a run's history, `decode_run` the record of run
/// `expected_run_id` (see "identity" above). `decode_run` returns an empty `history`.
Value decode_value(std::string_view bytes, std::string_view key);
HistoryEntry decode_history(std::string_view bytes, std::string_view key,
                            std::uint64_t expected_seq);
RunInfo decode_run(std::string_view bytes, std::string_view key, std::string_view expected_run_id);

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by the envelope.
/// `crc32c("123456789") == 0xE3069283`. Pass a previous result as `crc` to continue it.
std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc = 0) noexcept;

/// Wraps an already encoded payload in a valid envelope of `kind` (length and CRC computed).
/// For tests and tools; `encode_*` use it.
std::string seal_record(RecordKind kind, std::string_view payload);

}  // namespace flux::detail
