#pragma once
/// \file
/// The durable record format (internal): how a `Value`, a `HistoryEntry` and a
/// `RunInfo` become bytes in a store (Redis) and back.
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
/// The payload's root struct is `flux::wire::Value`, `HistoryEntry` or
/// `RunRecord` (schema/flux.capnp, which documents the evolution rules).
///
/// Decoding verifies the whole envelope (size, magic, version, kind, reserved,
/// length, checksum) before it looks at the payload, then reads the message
/// with Cap'n Proto's limits:
///  - traversal limit: max(1024, 8 * the payload's unpacked size in words).
///    It is derived from the unpacked size, not the packed one, because packing
///    compresses zero words up to 1024:1 -- a limit based on the packed size
///    would refuse legitimate records such as a long list of nulls.
///  - nesting limit: `k_nesting_limit` (188). Cap'n Proto spends two nesting levels
///    per list (list pointer, element struct) and three per map (list pointer,
///    entry struct, value pointer), plus two for the record's root and field,
///    so 188 admits every Value that `encode_*` accepts -- at most
///    `k_max_value_depth` (60) lists/maps deep, even when all of them are maps.
///    (The 64 one might pick by default would admit only 21 nested maps.)
///    `encode_*` refuses a deeper Value with `Error(invalid_argument)` naming
///    the limit, so a record that was written can always be read back, and
///    `decode_*` refuses one from another writer as corrupt, so whatever is
///    read can be written again.
///
/// Every decoding failure throws `flux::Error(Errc::storage, ...)` whose message
/// starts with `corrupt record at key "<key>": ` and names the cause (too short,
/// bad magic, unsupported version, wrong kind, length mismatch, checksum
/// mismatch, undecodable payload, unknown union case or enum value written by
/// a newer Flux, ...). No other exception escapes for bad bytes.
///
/// All functions are reentrant and thread-safe (no shared state).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "flux/record.hpp"
#include "flux/value.hpp"

namespace flux::detail {

enum class RecordKind : std::uint8_t { value = 1, history = 2, run = 3 };

/// "value", "history", "run", or "unknown".
const char* to_string(RecordKind kind) noexcept;

inline constexpr char k_record_magic[4] = {'F', 'L', 'U', 'X'};
inline constexpr std::uint8_t k_record_format_version = 1;
inline constexpr std::size_t k_envelope_size = 16;
/// The deepest Value (counted in nested lists/maps; a scalar is 0) that can be encoded.
inline constexpr int k_max_value_depth = 60;
/// Cap'n Proto nesting limit used when reading records: 3 levels per map, and room for the
/// record's own structure (see above).
inline constexpr int k_nesting_limit = 3 * k_max_value_depth + 8;

/// Encode into an enveloped record. Throw `Error(invalid_argument)` if a Value is nested
/// deeper than `k_max_value_depth`, a string/bytes/list/map has 2^29 or more elements (Cap'n
/// Proto's list limit), or the record would exceed 4 GiB.
std::string encode_value(const Value& value);
std::string encode_history(const HistoryEntry& entry);
/// `run.history` is NOT stored: history entries are records of their own.
std::string encode_run(const RunInfo& run);

/// Decode an enveloped record read from the store under `key` (used in error messages).
/// Throw `Error(storage)` naming `key` and the cause if the bytes are not a valid record of
/// that kind. `decode_run` returns an empty `history`.
Value decode_value(std::string_view bytes, std::string_view key);
HistoryEntry decode_history(std::string_view bytes, std::string_view key);
RunInfo decode_run(std::string_view bytes, std::string_view key);

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by the envelope.
/// `crc32c("123456789") == 0xE3069283`. Pass a previous result as `crc` to continue it.
std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc = 0) noexcept;

/// Wraps an already encoded payload in a valid envelope of `kind` (length and CRC computed).
/// For tests and tools; `encode_*` use it.
std::string seal_record(RecordKind kind, std::string_view payload);

}  // namespace flux::detail
