#pragma once
// Internal: the thread that keeps this process's leases on its runs alive.

#include <atomic>
#include <caf/all.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "flux/storage.hpp"
#include "run/run_state.hpp"

namespace flux::detail {

/// Keeps the leases of this process's runs alive. Thread-safe.
class LeaseKeeper {
 public:
  /// `flush` is called at every renewal round (every third of `ttl`), before renewing: it
  /// returns true once the writes queued so far (the leases' claims) are in the store, false
  /// if that took too long (the round is then skipped).
  ///
  /// Every round also asks the store for cancel requests of the runs held here
  /// (Runtime::cancel from another process) and cancels those: a request is honoured within
  /// a third of `ttl` plus a store round trip.
  LeaseKeeper(Storage& storage, std::chrono::milliseconds ttl, std::function<bool()> flush);
  ~LeaseKeeper();  // stops renewing
  void add(const std::string& run_id, const Lease& lease, std::weak_ptr<RunState> run);
  void remove(const std::string& run_id);
  /// The run `run_id` if this process holds its lease (it runs here).
  std::shared_ptr<RunState> find(const std::string& run_id);
  /// Every run whose lease this process holds.
  std::vector<std::shared_ptr<RunState>> runs();
  /// Shutdown gave up on the runs still held: stops renewing and gives their leases up, so
  /// that they are orphans at once (their later writes, if any, are refused by fencing).
  /// The keeper stays usable for `remove`. Returns the ids given up.
  std::vector<std::string> give_up_all();

 private:
  void loop();
  std::optional<std::string> holder_of(const std::string& run_id) const;
  Storage& storage_;
  const std::chrono::milliseconds ttl_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  struct Held {
    Lease lease;
    std::weak_ptr<RunState> run;
  };
  std::function<bool()> flush_;
  std::unordered_map<std::string, Held> held_;
  std::thread thread_;
};

}  // namespace flux::detail
