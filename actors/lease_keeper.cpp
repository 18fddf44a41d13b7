// The lease keeper: renews the leases of this process's runs at a third of their
// time-to-live, on its own thread (renewals are blocking store calls). A lease found
// lost — the store granted the run to someone else — stops the run from starting new
// steps; its writes are refused by the fence anyway.

#include <cstdio>

#include "internal.hpp"

namespace flux::detail {

LeaseKeeper::LeaseKeeper(Storage& storage, std::chrono::milliseconds ttl,
                         std::function<void()> tick)
    : storage_(storage), ttl_(ttl), tick_(std::move(tick)), thread_([this] { loop(); }) {}

LeaseKeeper::~LeaseKeeper() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LeaseKeeper::add(const std::string& run_id, const Lease& lease, std::weak_ptr<RunState> run) {
  std::lock_guard lock(mu_);
  held_[run_id] = Held{lease, std::move(run), std::chrono::steady_clock::now()};
}

void LeaseKeeper::remove(const std::string& run_id) {
  std::lock_guard lock(mu_);
  held_.erase(run_id);
}

void LeaseKeeper::loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, ttl_ / 3, [this] { return stop_; });
    if (stop_) return;
    auto held = held_;  // renew without holding the lock: runs come and go meanwhile
    lock.unlock();
    if (tick_) tick_();
    const auto fresh = std::chrono::steady_clock::now() - ttl_ / 3;
    for (auto& [id, h] : held) {
      if (h.since > fresh) continue;  // taken less than a round ago: nothing to renew yet
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
        if (auto run = h.run.lock()) run->failing = true;
        std::fprintf(stderr, "flux: run %s: lease lost to another owner; stopping it\n",
                     id.c_str());
      }
    }
    lock.lock();
  }
}

}  // namespace flux::detail
