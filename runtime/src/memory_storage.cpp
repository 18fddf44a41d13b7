#include <algorithm>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "flux/storage.hpp"

namespace flux {

void Storage::apply(std::span<const Write> batch) {
  for (const Write& w : batch) {
    std::visit(
        [this](const auto& op) {
          using Op = std::decay_t<decltype(op)>;
          if constexpr (std::is_same_v<Op, Write::PutRun>) {
            put_run(op.run);
          } else if constexpr (std::is_same_v<Op, Write::AppendHistory>) {
            append_history(op.run_id, op.entry);
          } else if constexpr (std::is_same_v<Op, Write::PutKey>) {
            put_key(op.run_id, op.scope, op.key, op.value);
          } else {
            erase_key(op.run_id, op.scope, op.key);
          }
        },
        w.op);
  }
}

struct MemoryStorage::Impl {
  struct Run {
    RunInfo info;  // history kept separately, below
    std::uint64_t order = 0;  // creation order, for newest-first listing
    std::vector<HistoryEntry> history;
    Value::Map kv, shared;
  };
  mutable std::shared_mutex mu;
  std::map<std::string, Run, std::less<>> runs;
  std::uint64_t next_order = 0;

  Run& run(std::string_view id) {
    auto it = runs.find(id);
    if (it == runs.end()) {
      it = runs.emplace(std::string(id), Run{}).first;
      it->second.info.id = std::string(id);
      it->second.order = next_order++;
    }
    return it->second;
  }
  const Run* find(std::string_view id) const {
    auto it = runs.find(id);
    return it == runs.end() ? nullptr : &it->second;
  }

  void put_run(const RunInfo& info) {
    Run& r = run(info.id);
    r.info = info;
    r.info.history.clear();
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
  if (!r) return std::nullopt;
  return r->info;
}

std::vector<RunInfo> MemoryStorage::list_runs(const RunFilter& filter) const {
  std::shared_lock lock(impl_->mu);
  std::vector<const Impl::Run*> rs;
  for (const auto& [id, r] : impl_->runs) {
    if (!filter.status || r.info.status == *filter.status) rs.push_back(&r);
  }
  std::sort(rs.begin(), rs.end(), [](auto* a, auto* b) { return a->order > b->order; });
  if (filter.limit && rs.size() > filter.limit) rs.resize(filter.limit);
  std::vector<RunInfo> out;
  out.reserve(rs.size());
  for (auto* r : rs) out.push_back(r->info);
  return out;
}

void MemoryStorage::append_history(std::string_view run_id, const HistoryEntry& entry) {
  std::unique_lock lock(impl_->mu);
  impl_->run(run_id).history.push_back(entry);
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

void MemoryStorage::apply(std::span<const Write> batch) {
  // One lock for the whole batch: readers see a batch all at once or not at all.
  std::unique_lock lock(impl_->mu);
  for (const Write& w : batch) {
    if (auto* p = std::get_if<Write::PutRun>(&w.op)) {
      impl_->put_run(p->run);
    } else if (auto* h = std::get_if<Write::AppendHistory>(&w.op)) {
      impl_->run(h->run_id).history.push_back(h->entry);
    } else if (auto* k = std::get_if<Write::PutKey>(&w.op)) {
      impl_->put_key(k->run_id, k->scope, k->key, k->value);
    } else if (auto* e = std::get_if<Write::EraseKey>(&w.op)) {
      impl_->erase_key(e->run_id, e->scope, e->key);
    }
  }
}

}  // namespace flux
