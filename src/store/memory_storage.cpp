#include <algorithm>
#include <charconv>
#include <iterator>
#include <list>
#include <map>
#include <mutex>
#include <set>
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
            put_run(*op.run);
          } else if constexpr (std::is_same_v<Op, Write::AppendHistory>) {
            append_history(op.run_id, *op.entry);
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

void Storage::request_cancel(std::string_view run_id, const CancelRequest&) {
  throw Error(Errc::invalid_argument,
              "run " + std::string(run_id) +
                  " is not owned by this Runtime, and its store keeps no cancel requests "
                  "(Storage::request_cancel is not implemented)");
}
std::vector<std::optional<CancelRequest>> Storage::cancel_requests(
    std::span<const std::string> run_ids) const {
  return std::vector<std::optional<CancelRequest>>(run_ids.size());
}
void Storage::clear_cancel_request(std::string_view) {}

const char* to_string(ResumeRequest::Verb verb) noexcept {
  return verb == ResumeRequest::Verb::retry ? "retry" : "resume";
}

void Storage::request_resume(std::string_view run_id, const ResumeRequest&) {
  throw Error(Errc::invalid_argument,
              "run " + std::string(run_id) +
                  ": this store keeps no resume requests (Storage::request_resume is not "
                  "implemented), so only a process with the run's pipeline can resume it");
}
std::vector<std::string> Storage::pending_resume_requests(std::size_t) const { return {}; }
std::vector<std::optional<ResumeRequest>> Storage::resume_requests(
    std::span<const std::string> run_ids) const {
  return std::vector<std::optional<ResumeRequest>>(run_ids.size());
}
void Storage::clear_resume_request(std::string_view) {}

std::vector<std::optional<std::string>> Storage::lease_holders(
    std::span<const std::string> run_ids) const {
  std::vector<std::optional<std::string>> out;
  out.reserve(run_ids.size());
  for (const std::string& id : run_ids) out.push_back(lease_holder(id));
  return out;
}

RunPage Storage::list_runs_page(const RunFilter& filter) const {
  // A store of the user's that only knows list_runs: list everything, then cut the page
  // out of it. The cursor is the id of the page's last run.
  RunFilter all = filter;
  all.limit = 0;
  all.cursor.clear();
  std::vector<RunInfo> runs = list_runs(all);
  auto first = runs.begin();
  if (!filter.cursor.empty()) {
    first = std::find_if(runs.begin(), runs.end(),
                         [&](const RunInfo& r) { return r.id == filter.cursor; });
    if (first != runs.end()) ++first;
  }
  RunPage page;
  auto last = filter.limit && static_cast<std::size_t>(runs.end() - first) > filter.limit
                  ? first + static_cast<std::ptrdiff_t>(filter.limit)
                  : runs.end();
  page.runs.assign(std::make_move_iterator(first), std::make_move_iterator(last));
  if (last != runs.end()) page.next_cursor = page.runs.back().id;
  return page;
}

struct MemoryStorage::Impl {
  using Clock = std::chrono::steady_clock;
  struct Run;
  // A run's place in the listing: newest first by creation time, then by insertion order
  // (so that runs created in the same nanosecond keep a stable order, and a cursor names
  // one place exactly).
  struct Place {
    std::int64_t created = 0;
    std::uint64_t order = 0;
    bool operator<(const Place& o) const {  // "comes first in the listing"
      return created != o.created ? created > o.created : order > o.order;
    }
  };
  // One ordered index per status and one of all runs: a page is a walk of `limit` steps
  // from a place found in O(log n), never a sort of every run.
  using Index = std::map<Place, Run*>;
  struct Run {
    // The run record, null until one is written (kv, history or a lease may come first).
    // Immutable and shared with the writer's journal, as history entries are; its
    // `history` is empty (the history is kept below).
    std::shared_ptr<const RunInfo> info;
    std::uint64_t order = 0;  // insertion order: breaks ties between equal creation times
    std::vector<std::shared_ptr<const HistoryEntry>> history;  // shared with the writer
    Value::Map kv, shared;
    std::uint64_t fence = 0;  // the newest lease token granted
    std::optional<Lease> lease;
    Clock::time_point lease_expiry{};
    // While the record says completed or failed: its place in `finished` (for retention).
    std::optional<std::list<Run*>::iterator> finished_at;
    Clock::time_point finished_when{};
    std::optional<CancelRequest> cancel_request;  // Runtime::cancel from another Runtime
    std::optional<ResumeRequest> resume_request;  // for a driver with the run's pipeline
  };

  explicit Impl(Retention r) : retention(r) {}

  const Retention retention;
  // Guards everything below. Listing takes it shared for O(limit + log n) only.
  mutable std::shared_mutex mu;
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  // Nodes of an unordered_map never move (rehashing relinks them), so `last_run`, the
  // indexes and `finished` may point into it.
  std::unordered_map<std::string, Run, Hash, std::equal_to<>> runs;
  std::uint64_t next_order = 0;
  Index all;                 // runs with a record
  Index by_status[6];        // indexed by RunStatus
  std::list<Run*> finished;  // finished runs, in the order they finished (oldest first)
  // Runs whose resume request is pending (no refusal): what drivers poll, without a scan.
  std::set<std::string, std::less<>> pending_resume;

  static Place place_of(const Run& r) {
    return Place{r.info->created.time_since_epoch().count(), r.order};
  }
  Index& index_of(RunStatus s) { return by_status[static_cast<std::size_t>(s)]; }
  const Index& index_of(RunStatus s) const { return by_status[static_cast<std::size_t>(s)]; }

  Run& run(std::string_view id) {
    // Writes come in runs of the same id: remember the last one (map nodes never move).
    if (last_run && id == *last_id) return *last_run;
    auto it = runs.find(id);
    if (it == runs.end()) {
      it = runs.emplace(std::string(id), Run{}).first;
      it->second.order = next_order++;
    }
    last_run = &it->second;
    last_id = &it->first;
    return it->second;
  }
  Run* last_run = nullptr;
  const std::string* last_id = nullptr;  // last_run's key
  const Run* find(std::string_view id) const {
    auto it = runs.find(id);
    return it == runs.end() ? nullptr : &it->second;
  }

  void append(std::string_view id, std::shared_ptr<const HistoryEntry> entry) {
    const HistoryEntry& e = *entry;
    Run& r = run(id);
    if (e.seq < r.history.size()) return;  // already stored: a batch applied twice
    if (e.seq > r.history.size()) {
      throw Error(Errc::storage, "history gap in run " + std::string(id) + ": " +
                                     std::to_string(r.history.size()) +
                                     " entries stored, the next write is seq " +
                                     std::to_string(e.seq));
    }
    r.history.push_back(std::move(entry));
  }
  bool live(const Run& r) const { return r.lease && Clock::now() < r.lease_expiry; }

  void put_run(std::shared_ptr<const RunInfo> info) {
    if (!info->history.empty()) {  // ignored (Storage::put_run): not kept
      auto bare = std::make_shared<RunInfo>(*info);
      bare->history.clear();
      info = std::move(bare);
    }
    Run& r = run(info->id);
    if (r.info) {  // leave the indexes; re-entered below at the (new) place
      all.erase(place_of(r));
      index_of(r.info->status).erase(place_of(r));
    }
    r.info = std::move(info);
    all.emplace(place_of(r), &r);
    index_of(r.info->status).emplace(place_of(r), &r);
    // Retention: a run enters `finished` when its record says so, and leaves it if it is
    // resumed (running again).
    const bool done = r.info->status != RunStatus::running;
    if (done && !r.finished_at) {
      r.finished_at = finished.insert(finished.end(), &r);
      r.finished_when = Clock::now();
    } else if (!done && r.finished_at) {
      finished.erase(*r.finished_at);
      r.finished_at.reset();
    }
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

  /// Removes the finished runs the retention policy no longer keeps, oldest first: O(1)
  /// per run removed (plus O(log n) for its index entries). Called after every write.
  void enforce_retention() {
    const auto now = Clock::now();
    while (!finished.empty()) {
      Run* oldest = finished.front();
      const bool too_many = retention.max_runs && finished.size() > retention.max_runs;
      const bool too_old =
          retention.max_age.count() > 0 && now - oldest->finished_when >= retention.max_age;
      if (!too_many && !too_old) break;
      finished.pop_front();
      all.erase(place_of(*oldest));
      index_of(oldest->info->status).erase(place_of(*oldest));
      if (last_run == oldest) last_run = nullptr;
      const std::shared_ptr<const RunInfo> record = oldest->info;  // holds the key's copy
      pending_resume.erase(record->id);
      runs.erase(record->id);  // `oldest` dangles from here on
    }
  }

  /// The page of `index` that `filter` asks for.
  RunPage page(const Index& index, const RunFilter& filter) const {
    auto it = index.begin();
    if (!filter.cursor.empty()) it = index.upper_bound(parse_cursor(filter.cursor));
    RunPage out;
    for (; it != index.end() && (!filter.limit || out.runs.size() < filter.limit); ++it) {
      out.runs.push_back(*it->second->info);
    }
    if (filter.limit && it != index.end() && !out.runs.empty()) {
      const Place last = place_of(*std::prev(it)->second);
      out.next_cursor = std::to_string(last.created) + ":" + std::to_string(last.order);
    }
    return out;
  }

  // A cursor is "<created ns>:<insertion order>" of the last run of the page before.
  static Place parse_cursor(const std::string& cursor) {
    Place p;
    auto colon = cursor.find(':');
    const char* end = cursor.data() + cursor.size();
    bool ok = colon != std::string::npos;
    if (ok) {
      auto [a, e1] = std::from_chars(cursor.data(), cursor.data() + colon, p.created);
      auto [b, e2] = std::from_chars(cursor.data() + colon + 1, end, p.order);
      ok = e1 == std::errc{} && a == cursor.data() + colon && e2 == std::errc{} && b == end;
    }
    if (!ok) {
      throw Error(Errc::invalid_argument,
                  "list_runs: cursor \"" + cursor + "\" is not one this memory store returned");
    }
    return p;
  }
};

MemoryStorage::MemoryStorage(Retention retention) : impl_(std::make_unique<Impl>(retention)) {}
MemoryStorage::~MemoryStorage() = default;

void MemoryStorage::put_run(const RunInfo& run) {
  std::unique_lock lock(impl_->mu);
  auto record = std::make_shared<RunInfo>(run);
  record->history.clear();  // ignored; cleared here so that Impl::put_run copies nothing more
  impl_->put_run(std::move(record));
  impl_->enforce_retention();
}

std::optional<RunInfo> MemoryStorage::get_run(std::string_view run_id) const {
  std::shared_lock lock(impl_->mu);
  const Impl::Run* r = impl_->find(run_id);
  if (!r || !r->info) return std::nullopt;
  return *r->info;
}

RunPage MemoryStorage::list_runs_page(const RunFilter& filter) const {
  std::shared_lock lock(impl_->mu);
  return impl_->page(filter.status ? impl_->index_of(*filter.status) : impl_->all, filter);
}

std::vector<RunInfo> MemoryStorage::list_runs(const RunFilter& filter) const {
  return list_runs_page(filter).runs;
}

void MemoryStorage::append_history(std::string_view run_id, const HistoryEntry& entry) {
  auto shared = std::make_shared<const HistoryEntry>(entry);  // before the lock
  std::unique_lock lock(impl_->mu);
  impl_->append(run_id, std::move(shared));
}

std::vector<HistoryEntry> MemoryStorage::history(std::string_view run_id, std::size_t from) const {
  std::shared_lock lock(impl_->mu);
  const Impl::Run* r = impl_->find(run_id);
  if (!r || from >= r->history.size()) return {};
  std::vector<HistoryEntry> out;
  out.reserve(r->history.size() - from);
  for (std::size_t i = from; i < r->history.size(); ++i) out.push_back(*r->history[i]);
  return out;
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
  auto refusals = apply_each(batch, [this](const Write& w) {
    if (auto* l = std::get_if<Write::ReleaseLease>(&w.op); l && !impl_->find(l->run_id)) {
      return;  // removed by retention already: nothing left to release (nor to recreate)
    }
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
      Impl::Run& r = impl_->run(f->run->id);
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
      impl_->append(h->run_id, h->entry);  // shared, not copied
    } else if (auto* k = std::get_if<Write::PutKey>(&w.op)) {
      impl_->put_key(k->run_id, k->scope, k->key, k->value);
    } else if (auto* e = std::get_if<Write::EraseKey>(&w.op)) {
      impl_->erase_key(e->run_id, e->scope, e->key);
    } else if (auto* l = std::get_if<Write::ReleaseLease>(&w.op)) {
      Impl::Run& r = impl_->run(l->run_id);
      if (r.lease && r.lease->token == w.fence) r.lease.reset();
    }
  });
  impl_->enforce_retention();
  return refusals;
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
  auto it = impl_->runs.find(run_id);  // a run removed by retention has nothing to release
  if (it == impl_->runs.end()) return;
  Impl::Run& r = it->second;
  if (r.lease && r.lease->token == lease.token) r.lease.reset();
}

void MemoryStorage::request_cancel(std::string_view run_id, const CancelRequest& request) {
  std::unique_lock lock(impl_->mu);
  impl_->run(run_id).cancel_request = request;
}

std::vector<std::optional<CancelRequest>> MemoryStorage::cancel_requests(
    std::span<const std::string> run_ids) const {
  std::shared_lock lock(impl_->mu);
  std::vector<std::optional<CancelRequest>> out;
  out.reserve(run_ids.size());
  for (const std::string& id : run_ids) {
    const Impl::Run* r = impl_->find(id);
    out.push_back(r ? r->cancel_request : std::nullopt);
  }
  return out;
}

void MemoryStorage::clear_cancel_request(std::string_view run_id) {
  std::unique_lock lock(impl_->mu);
  auto it = impl_->runs.find(run_id);
  if (it != impl_->runs.end()) it->second.cancel_request.reset();
}

void MemoryStorage::request_resume(std::string_view run_id, const ResumeRequest& request) {
  std::unique_lock lock(impl_->mu);
  impl_->run(run_id).resume_request = request;
  if (request.refusal) {
    impl_->pending_resume.erase(std::string(run_id));
  } else {
    impl_->pending_resume.emplace(run_id);
  }
}

std::vector<std::string> MemoryStorage::pending_resume_requests(std::size_t limit) const {
  std::shared_lock lock(impl_->mu);
  std::vector<std::string> out;
  for (auto it = impl_->pending_resume.begin();
       it != impl_->pending_resume.end() && out.size() < limit; ++it) {
    out.push_back(*it);
  }
  return out;
}

std::vector<std::optional<ResumeRequest>> MemoryStorage::resume_requests(
    std::span<const std::string> run_ids) const {
  std::shared_lock lock(impl_->mu);
  std::vector<std::optional<ResumeRequest>> out;
  out.reserve(run_ids.size());
  for (const std::string& id : run_ids) {
    const Impl::Run* r = impl_->find(id);
    out.push_back(r ? r->resume_request : std::nullopt);
  }
  return out;
}

void MemoryStorage::clear_resume_request(std::string_view run_id) {
  std::unique_lock lock(impl_->mu);
  impl_->pending_resume.erase(std::string(run_id));
  auto it = impl_->runs.find(run_id);
  if (it != impl_->runs.end()) it->second.resume_request.reset();
}

std::optional<std::string> MemoryStorage::lease_holder(std::string_view run_id) const {
  std::shared_lock lock(impl_->mu);
  const Impl::Run* r = impl_->find(run_id);
  if (!r || !impl_->live(*r)) return std::nullopt;
  return r->lease->owner;
}

}  // namespace flux
