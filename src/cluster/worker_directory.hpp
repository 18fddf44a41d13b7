#pragma once
// Internal: who the workers of a cluster are, kept in the store (Redis).
//
// Each worker announces a card — id, address, the nodes it hosts with their signatures,
// capacity, protocol version, load — that expires unless written again (a worker that dies or
// hangs drops out after its TTL); drivers read the live cards every discovery interval.
// Keys (with the configured prefix): `<prefix>:worker:<id>` holds the card (Cap'n Proto
// WorkerCard, sealed like every record) with a TTL; the set `<prefix>:workers` indexes the
// ids, and readers remove ids whose card has expired.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flux/record.hpp"
#include "format/worker_card.hpp"

namespace flux::detail {

class RedisConnection;

/// Reads and writes worker cards. Not thread-safe: one per thread (it owns a connection).
class WorkerDirectory {
 public:
  /// Connects to `redis_url` (as RedisStorage does: password from the URL or
  /// FLUX_REDIS_PASSWORD); throws Error(storage) naming the address if it cannot, and
  /// Error(invalid_argument) for a malformed URL or an empty prefix. Every call gives up
  /// with Error(storage) within a few seconds (1 s I/O timeout, retried for 2 s after the
  /// first failure): a discovery poll or heartbeat must not hang on a dead store.
  WorkerDirectory(const std::string& redis_url, std::string key_prefix);
  ~WorkerDirectory();

  /// Writes `card` with `ttl` (positive, else Error(invalid_argument)) and indexes it. A
  /// worker writes its card again every third of its TTL, with its load: its heartbeat.
  void announce(const WorkerCard& card, std::chrono::milliseconds ttl);
  /// How long each card has left before it expires unless written again (one round trip), in
  /// the order of `ids`; nullopt for a card that is gone. The `flux workers` tool shows it: a
  /// worker writes every third of its TTL, so a card far from its TTL is a worker that
  /// stopped.
  std::vector<std::optional<std::chrono::milliseconds>> expires_in(
      const std::vector<std::string>& ids);
  /// Removes the card at once (a draining worker).
  void withdraw(const std::string& id);
  /// The cards alive now, ascending by id. Ids whose card expired are dropped from the
  /// index (only if the card is still missing when the drop runs, so a worker announcing
  /// meanwhile stays indexed); a card that cannot be decoded is skipped and its key
  /// reported in `corrupt` (cleared first). A corrupt card stays indexed until it expires.
  std::vector<WorkerCard> live(std::vector<std::string>* corrupt = nullptr);

 private:
  std::unique_ptr<RedisConnection> redis_;
  std::string prefix_;
};

}  // namespace flux::detail
