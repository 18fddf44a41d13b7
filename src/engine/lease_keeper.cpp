// The lease keeper: renews the leases of this process's runs at a third of their
// time-to-live, on its own thread (renewals are blocking store calls). A lease found
// lost — the store granted the run to someone else — stops the run from starting new
// steps; its writes are refused by the fence anyway.

#include <cstdio>

#include "engine/run_driver.hpp"

namespace flux::detail {

LeaseKeeper::LeaseKeeper(Storage& storage, std::chrono::milliseconds ttl,
                         std::function<bool()> flush)
    : storage_(storage), ttl_(ttl), flush_(std::move(flush)), thread_([this] { loop(); }) {}

LeaseKeeper::~LeaseKeeper() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LeaseKeeper::add(const std::string& run_id, const Lease& lease, std::weak_ptr<RunState> run) {
  std::lock_guard lock(mu_);
  held_[run_id] = Held{lease, std::move(run)};
}

void LeaseKeeper::remove(const std::string& run_id) {
  std::lock_guard lock(mu_);
  held_.erase(run_id);
}

std::shared_ptr<RunState> LeaseKeeper::find(const std::string& run_id) {
  std::lock_guard lock(mu_);
  auto it = held_.find(run_id);
  return it == held_.end() ? nullptr : it->second.run.lock();
}

std::vector<std::shared_ptr<RunState>> LeaseKeeper::runs() {
  std::vector<std::shared_ptr<RunState>> out;
  std::lock_guard lock(mu_);
  for (auto& [id, h] : held_) {
    if (auto run = h.run.lock()) out.push_back(std::move(run));
  }
  return out;
}

std::vector<std::string> LeaseKeeper::give_up_all() {
  std::unordered_map<std::string, Held> held;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    held.swap(held_);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::vector<std::string> ids;
  for (auto& [id, h] : held) {
    try {
      storage_.release_lease(id, h.lease);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "flux: giving up the lease of run %s failed (it expires instead): %s\n",
                   id.c_str(), e.what());
    }
    ids.push_back(id);
  }
  return ids;
}

std::optional<std::string> LeaseKeeper::holder_of(const std::string& run_id) const {
  try {
    return storage_.lease_holder(run_id);
  } catch (const std::exception&) {
    return std::nullopt;  // only for the message
  }
}

void LeaseKeeper::loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, ttl_ / 3, [this] { return stop_; });
    if (stop_) return;
    // Every lease held now was claimed by a write queued in the journal (a new run's
    // claim is its first write, not a round trip of its own). Renewing one whose claim is
    // still queued — behind a long sync node, nothing else pushes it out — would find no
    // lease in the store and stop the run as "lost to another owner". So the queue is
    // flushed first, and only leases held before the flush began are renewed.
    auto held = held_;  // renew without holding the lock: runs come and go meanwhile
    lock.unlock();
    if (flush_ && !flush_()) {
      // The store did not take the queue in time: a claim may still be queued. Renew next
      // round rather than mistake our own unstored claim for a lease lost to someone else.
      lock.lock();
      continue;
    }
    for (auto& [id, h] : held) {
      bool kept = false;
      try {
        kept = storage_.renew_lease(id, h.lease, ttl_);
      } catch (const std::exception& e) {
        // The store is unreachable: keep trying; if it stays away, the run's own writes
        // fail after the retry deadline and the lease expires.
        std::fprintf(stderr, "flux: renewing the lease of run %s failed: %s\n", id.c_str(),
                     e.what());
        kept = true;
      }
      if (!kept) {
        std::string why = "run " + id + " lost its lease: the store granted it to another owner";
        if (auto holder = holder_of(id)) why += " (" + *holder + ")";
        why += "; stopped so that two owners never run it at once";
        std::fprintf(stderr, "flux: %s\n", why.c_str());
        if (auto run = h.run.lock()) run->lose_lease(std::move(why));
      }
    }
    // Runtime::cancel from another process: its request waits in the store (one round trip
    // for all the runs held here).
    if (!held.empty()) {
      std::vector<std::string> ids;
      ids.reserve(held.size());
      for (auto& [id, h] : held) ids.push_back(id);
      try {
        std::vector<std::optional<CancelRequest>> requests = storage_.cancel_requests(ids);
        for (std::size_t i = 0; i < ids.size() && i < requests.size(); ++i) {
          if (!requests[i]) continue;
          if (auto run = held[ids[i]].run.lock()) run->cancel(requests[i]->by, requests[i]->reason, requests[i]->compensate);
          storage_.clear_cancel_request(ids[i]);
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "flux: reading cancel requests failed (retried next round): %s\n",
                     e.what());
      }
    }
    lock.lock();
  }
}

}  // namespace flux::detail
