#include <algorithm>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "flux/storage.hpp"

namespace flux {

namespace {

/// Applies `batch` one write at a time through `apply_one`; a write that throws skips the
/// rest of its run's writes in the batch (they would leave a gap) and refuses the run.
template <class F>
std::vector<RunRefusal> apply_each(std::span<const Write> batch, F&& apply_one) {
  std::vector<RunRefusal> refused;
  auto is_refused = [&](const Write& w) {
    return std::any_of(refused.begin(), refused.end(), [&](const RunRefusal& r) {
      return r.run_id == w.run_id() && r.fence == w.fence;
    });
  };
  for (const Write& w : batch) {
    if (!refused.empty() && is_refused(w)) continue;
    try {
      apply_one(w);
    } catch (const Error& e) {
      refused.push_back(RunRefusal{w.run_id(), w.fence, e});
    } catch (const std::exception& e) {
      refused.push_back(RunRefusal{w.run_id(), w.fence,
                                   Error(Errc::storage, "run " + w.run_id() + ": " + e.what())});
    }
  }
  return refused;
}

}  // namespace

std::vector<RunRefusal> Storage::apply(std::span<const Write> batch) {
  return apply_each(batch, [this](const Write& w) {
    std::visit(
        [this, &w](const auto& op) {
          using Op = std::decay_t<decltype(op)>;
          if constexpr (std::is_same_v<Op, Write::PutRun> || std::is_same_v<Op, Write::FailRun>) {
            put_run(op.run);
          } else if constexpr (std::is_same_v<Op, Write::AppendHistory>) {
            append_history(op.run_id, op.entry);
          } else if constexpr (std::is_same_v<Op, Write::PutKey>) {
            put_key(op.run_id, op.scope, op.key, op.value);
          } else if constexpr (std::is_same_v<Op, Write::EraseKey>) {
            erase_key(op.run_id, op.scope, op.key);
          } else if constexpr (std::is_same_v<Op, Write::ClaimLease>) {
            // Without leases of its own, a store grants every claim (see acquire_lease).
            if (!acquire_lease(op.run_id, op.owner, op.ttl).lease &&
                lease_holder(op.run_id) != op.owner) {
              throw Error(Errc::run_owned, "run " + op.run_id + " already has an owner");
            }
          } else {
            release_lease(op.run_id, Lease{op.owner, w.fence});
          }
        },
        w.op);
  });
}

LeaseResult Storage::acquire_lease(std::string_view, std::string_view owner,
                                   std::chrono::milliseconds) {
  return LeaseResult{Lease{std::string(owner), 0}, {}};
}
bool Storage::renew_lease(std::string_view, const Lease&, std::chrono::milliseconds) {
  return true;
}
void Storage::release_lease(std::string_view, const Lease&) {}
std::optional<std::string> Storage::lease_holder(std::string_view) const { return std::nullopt; }

struct MemoryStorage::Impl {
  using Clock = std::chrono::steady_clock;
  struct Run {
    RunInfo info;             // history kept separately, below
    bool has_record = false;  // kv, history or a lease may come before the run record
    std::uint64_t order = 0;  // insertion order: breaks ties between equal creation times
    std::vector<HistoryEntry> history;
    Value::Map kv, shared;
    std::uint64_t fence = 0;  // the newest lease token granted
    std::optional<Lease> lease;
    Clock::time_point lease_expiry{};
  };
  mutable std::shared_mutex mu;
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  // Nodes of an unordered_map never move (rehashing relinks them), so `last_run` and the
  // listing's pointers stay valid.
  std::unordered_map<std::string, Run, Hash, std::equal_to<>> runs;
  std::uint64_t next_order = 0;

  Run& run(std::string_view id) {
    // Writes come in runs of the same id: remember the last one (map nodes never move).
    if (last_run && id == last_run->info.id) return *last_run;
    auto it = runs.find(id);
    if (it == runs.end()) {
      it = runs.emplace(std::string(id), Run{}).first;
      it->second.info.id = std::string(id);
      it->second.order = next_order++;
    }
    last_run = &it->second;
    return it->second;
  }
  Run* last_run = nullptr;
  const Run* find(std::string_view id) const {
    auto it = runs.find(id);
    return it == runs.end() ? nullptr : &it->second;
  }

  void append(std::string_view id, const HistoryEntry& e) {
    Run& r = run(id);
    if (e.seq < r.history.size()) return;  // already stored: a batch applied twice
    if (e.seq > r.history.size()) {
      throw Error(Errc::storage, "history gap in run " + std::string(id) + ": " +
                                     std::to_string(r.history.size()) +
                                     " entries stored, the next write is seq " +
                                     std::to_string(e.seq));
    }
    r.history.push_back(e);
  }
  bool live(const Run& r) const { return r.lease && Clock::now() < r.lease_expiry; }

  void put_run(const RunInfo& info) {
    Run& r = run(info.id);
    r.info = info;
    r.info.history.clear();
    r.has_record = true;
  }
  void put_key(std::string_view id, Scope scope, std::string_view key, const Value& v) {
    Run& r = run(id);
    auto& m = scope == Scope::kv ? r.kv : r.shared;
    m.insert_or_assign(std::string(key), v);
  }
  void erase_key(std::string_view id, Scope scope, std::string_view key) {
    Run& r = run(id);
    auto& m = scope == Scope::kv ? r.kv : r.shared;
    auto it = m.find(key);
    if (it != m.end()) m.erase(it);
  }
};

MemoryStorage::MemoryStorage() : impl_(std::make_unique<Impl>()) {}
MemoryStorage::~MemoryStorage() = default;

void MemoryStorage::put_run(const RunInfo& run) {
  std::unique_lock lock(impl_->mu);
  impl_->put_run(run);
}

std::optional<RunInfo> MemoryStorage::get_run(std::string_view run_id) const {
  std::shared_lock lock(impl_->mu);
  const Impl::Run* r = impl_->find(run_id);
  if (!r || !r->has_record) return std::nullopt;
  return r->info;
}

std::vector<RunInfo> MemoryStorage::list_runs(const RunFilter& filter) const {
  std::shared_lock lock(impl_->mu);
  std::vector<const Impl::Run*> rs;
  for (const auto& [id, r] : impl_->runs) {
    if (r.has_record && (!filter.status || r.info.status == *filter.status)) rs.push_back(&r);
  }
  std::sort(rs.begin(), rs.end(), [](auto* a, auto* b) {  // newest first
    if (a->info.created != b->info.created) return a->info.created > b->info.created;
    return a->order > b->order;
  });
  if (filter.limit && rs.size() > filter.limit) rs.resize(filter.limit);
  std::vector<RunInfo> out;
  out.reserve(rs.size());
  for (auto* r : rs) out.push_back(r->info);
  return out;
}

void MemoryStorage::append_history(std::string_view run_id, const HistoryEntry& entry) {
  std::unique_lock lock(impl_->mu);
  impl_->append(run_id, entry);
}

std::vector<HistoryEntry> MemoryStorage::history(std::string_view run_id, std::size_t from) const {
  std::shared_lock lock(impl_->mu);
  const Impl::Run* r = impl_->find(run_id);
  if (!r || from >= r->history.size()) return {};
  return {r->history.begin() + static_cast<std::ptrdiff_t>(from), r->history.end()};
}

void MemoryStorage::put_key(std::string_view run_id, Scope scope, std::string_view key,
                            const Value& value) {
  std::unique_lock lock(impl_->mu);
  impl_->put_key(run_id, scope, key, value);
}

std::optional<Value> MemoryStorage::get_key(std::string_view run_id, Scope scope,
                                            std::string_view key) const {
  std::shared_lock lock(impl_->mu);
  const Impl::Run* r = impl_->find(run_id);
  if (!r) return std::nullopt;
  const auto& m = scope == Scope::kv ? r->kv : r->shared;
  auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

void MemoryStorage::erase_key(std::string_view run_id, Scope scope, std::string_view key) {
  std::unique_lock lock(impl_->mu);
  impl_->erase_key(run_id, scope, key);
}

Value::Map MemoryStorage::keys(std::string_view run_id, Scope scope) const {
  std::shared_lock lock(impl_->mu);
  const Impl::Run* r = impl_->find(run_id);
  if (!r) return {};
  return scope == Scope::kv ? r->kv : r->shared;
}

std::vector<RunRefusal> MemoryStorage::apply(std::span<const Write> batch) {
  // One lock for the whole batch: readers see a batch all at once or not at all.
  std::unique_lock lock(impl_->mu);
  return apply_each(batch, [this](const Write& w) {
    if (auto* c = std::get_if<Write::ClaimLease>(&w.op)) {
      Impl::Run& r = impl_->run(c->run_id);
      bool ours = r.fence == 1 && (!r.lease || r.lease->owner == c->owner);
      if (r.fence != 0 && !ours) {
        throw Error(Errc::run_owned, "run " + c->run_id + " already has an owner (fencing token " +
                                         std::to_string(r.fence) + ")");
      }
      r.fence = 1;
      r.lease = Lease{c->owner, 1};
      r.lease_expiry = Impl::Clock::now() + c->ttl;
      return;
    }
    if (auto* f = std::get_if<Write::FailRun>(&w.op)) {
      Impl::Run& r = impl_->run(f->run.id);
      if (r.fence > w.fence) return;  // another owner took the run since: its call
      r.fence = w.fence + 1;          // refuses the failed writer's stragglers
      r.lease.reset();
      impl_->put_run(f->run);
      return;
    }
    if (w.fence != 0) {
      const std::string& id = w.run_id();
      const Impl::Run& r = impl_->run(id);
      if (r.fence != w.fence) {
        throw Error(Errc::run_owned, "run " + id + ": write refused: fencing token " +
                                         std::to_string(w.fence) + " is stale (newest " +
                                         std::to_string(r.fence) + ", owner " +
                                         (r.lease ? r.lease->owner : std::string("none")) + ")");
      }
    }
    if (auto* p = std::get_if<Write::PutRun>(&w.op)) {
      impl_->put_run(p->run);
    } else if (auto* h = std::get_if<Write::AppendHistory>(&w.op)) {
      impl_->append(h->run_id, h->entry);
    } else if (auto* k = std::get_if<Write::PutKey>(&w.op)) {
      impl_->put_key(k->run_id, k->scope, k->key, k->value);
    } else if (auto* e = std::get_if<Write::EraseKey>(&w.op)) {
      impl_->erase_key(e->run_id, e->scope, e->key);
    } else if (auto* l = std::get_if<Write::ReleaseLease>(&w.op)) {
      Impl::Run& r = impl_->run(l->run_id);
      if (r.lease && r.lease->token == w.fence) r.lease.reset();
    }
  });
}

}  // namespace flux

namespace flux {

LeaseResult MemoryStorage::acquire_lease(std::string_view run_id, std::string_view owner,
                                         std::chrono::milliseconds ttl) {
  std::unique_lock lock(impl_->mu);
  Impl::Run& r = impl_->run(run_id);
  if (impl_->live(r)) return LeaseResult{std::nullopt, r.lease->owner};
  r.lease = Lease{std::string(owner), ++r.fence};
  r.lease_expiry = Impl::Clock::now() + ttl;
  return LeaseResult{r.lease, {}};
}

bool MemoryStorage::renew_lease(std::string_view run_id, const Lease& lease,
                                std::chrono::milliseconds ttl) {
  std::unique_lock lock(impl_->mu);
  Impl::Run& r = impl_->run(run_id);
  if (!r.lease || r.lease->token != lease.token || r.fence != lease.token) return false;
  r.lease_expiry = Impl::Clock::now() + ttl;
  return true;
}

void MemoryStorage::release_lease(std::string_view run_id, const Lease& lease) {
  std::unique_lock lock(impl_->mu);
  Impl::Run& r = impl_->run(run_id);
  if (r.lease && r.lease->token == lease.token) r.lease.reset();
}

std::optional<std::string> MemoryStorage::lease_holder(std::string_view run_id) const {
  std::shared_lock lock(impl_->mu);
  const Impl::Run* r = impl_->find(run_id);
  if (!r || !impl_->live(*r)) return std::nullopt;
  return r->lease->owner;
}

}  // namespace flux
