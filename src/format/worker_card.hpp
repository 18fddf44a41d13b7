#pragma once
// Internal: a cluster worker's card — who it is, where it listens, what it serves — as it is
// announced in the store (cluster/worker_directory.hpp) and encoded (format/record_codec.cpp).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flux/record.hpp"

namespace flux::detail {

/// The protocol drivers and workers speak (also CAF's `middleman.app-identifiers`): bumped
/// whenever the wire messages change (2: a step's result is a StepResult message sent by the
/// executing thread, no longer the response to a request; 3: a step carries its timeout and
/// its run's deadline, and a driver can abandon it with CancelStep).
inline constexpr const char* k_wire_protocol = "flux-wire-3";

struct WorkerCard {
  std::string id;
  std::string host;  ///< where drivers connect
  std::uint16_t port = 0;
  std::uint32_t capacity = 0;
  std::string protocol = k_wire_protocol;
  bool tls = false;
  std::int64_t pid = 0;
  Timestamp started{};
  /// (node name, signature), ascending by name.
  std::vector<std::pair<std::string, std::string>> nodes;
  /// Steps executing or queued at `heartbeat`, when the worker last wrote the card (what
  /// operators see: `flux workers`; placement uses the driver's own count).
  std::uint32_t busy = 0;
  Timestamp heartbeat{};

  friend bool operator==(const WorkerCard&, const WorkerCard&) = default;
};

/// Encodes / decodes a card as a sealed record (implemented in record_codec.cpp, the only
/// user of Cap'n Proto, with the same envelope, checksum and read limits as every record).
/// Encoding throws Error(invalid_argument) for an empty id or nodes not strictly ascending
/// by name. Decoding throws Error(storage) naming `key` for bytes that are not a card, and
/// for a card whose id is empty or not `expected_id` (the worker its key is for: a valid
/// card copied under another worker's key would send drivers to the wrong process).
std::string encode_worker_card(const WorkerCard& card);
WorkerCard decode_worker_card(std::string_view bytes, std::string_view key,
                              std::string_view expected_id);

}  // namespace flux::detail
