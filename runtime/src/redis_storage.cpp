#include "redis_storage.hpp"

#include <algorithm>
#include <unordered_map>

#include "record_codec.hpp"

namespace flux::detail {
namespace {

// Applies a group of consecutive writes to one run, atomically, after checking the
// writer's fencing token against the newest one granted for the run (so a stalled former
// owner cannot write into a run someone else now owns).
// KEYS: 1 fence, 2 run record, 3 history, 4 kv, 5 shared, 6 lease.
// ARGV[1]: the token ("0": unfenced), then operations:
//   R <record>                  set the run record
//   H <seq> <entry>             append at seq: skipped if already stored (a batch resent after
//                               a lost connection never duplicates history), a gap is an error
//   K <k|s> <field> <value>     set a kv / shared field
//   D <k|s> <field>             delete a kv / shared field
//   U <owner|token>             give the lease up, if still held by this owner and token
//   C <owner|1> <ttl ms>        claim a new run's lease with token 1 (idempotent)
constexpr const char* k_apply_script = R"lua(
local token = ARGV[1]
local checked = token == '0'
local stored = nil   -- history length, read once
local pushes = {}    -- history entries to append, in order
local i = 2
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'C' then
    if not redis.call('SET', KEYS[1], '1', 'NX') then
      local newest = redis.call('GET', KEYS[1])
      local holder = redis.call('GET', KEYS[6])
      if newest ~= '1' or (holder and holder ~= ARGV[i + 1]) then
        return redis.error_reply('FENCED the run already has an owner (fencing token ' .. newest .. ')')
      end
    end
    redis.call('SET', KEYS[6], ARGV[i + 1], 'PX', ARGV[i + 2])
    checked = true
    i = i + 3
  elseif not checked then
    local newest = redis.call('GET', KEYS[1]) or '0'
    if newest ~= token then
      return redis.error_reply('FENCED fencing token ' .. token .. ' is stale, the newest is ' .. newest)
    end
    checked = true
  elseif op == 'R' then
    redis.call('SET', KEYS[2], ARGV[i + 1])
    i = i + 2
  elseif op == 'H' then
    if not stored then stored = redis.call('LLEN', KEYS[3]) end
    local seq = tonumber(ARGV[i + 1])
    if seq == stored then
      pushes[#pushes + 1] = ARGV[i + 2]
      stored = stored + 1
    elseif seq > stored then
      return redis.error_reply('GAP ' .. stored .. ' history entries stored, the next write is seq ' .. seq)
    end
    i = i + 3
  elseif op == 'K' then
    redis.call('HSET', ARGV[i + 1] == 'k' and KEYS[4] or KEYS[5], ARGV[i + 2], ARGV[i + 3])
    i = i + 4
  elseif op == 'D' then
    redis.call('HDEL', ARGV[i + 1] == 'k' and KEYS[4] or KEYS[5], ARGV[i + 2])
    i = i + 3
  elseif op == 'U' then
    if redis.call('GET', KEYS[6]) == ARGV[i + 1] then redis.call('DEL', KEYS[6]) end
    i = i + 2
  else
    return redis.error_reply('BADOP ' .. tostring(op))
  end
end
-- One RPUSH per 1000 entries (Lua's unpack has a stack limit).
for first = 1, #pushes, 1000 do
  redis.call('RPUSH', KEYS[3], unpack(pushes, first, math.min(first + 999, #pushes)))
end
return 1
)lua";

// KEYS: 1 lease, 2 fence. ARGV: owner, ttl ms. Returns {1, token} or {0, holder}.
constexpr const char* k_acquire_script = R"lua(
local holder = redis.call('GET', KEYS[1])
if holder then
  return {0, string.match(holder, '^(.*)|[0-9]+$') or holder}
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return {1, token}
)lua";

// KEYS: 1 lease, 2 fence. ARGV: owner|token, token, ttl ms. Renews (or re-takes, if it
// expired and nobody took the run since) a lease; 0 if the run has a newer owner.
constexpr const char* k_renew_script = R"lua(
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or (not holder and redis.call('GET', KEYS[2]) == ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
return 0
)lua";

// KEYS: 1 lease. ARGV: owner|token.
constexpr const char* k_release_script = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

constexpr RunStatus k_statuses[] = {RunStatus::running, RunStatus::completed, RunStatus::failed};

std::string score_of(const RunInfo& run) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(run.created.time_since_epoch());
  return std::to_string(us.count());
}

[[noreturn]] void throw_reply_error(const RedisConnection& c, const RedisCommand& cmd,
                                    const std::string& error) {
  std::string what = cmd.empty() ? "" : cmd[0];
  if (cmd.size() > 1 && what != "EVAL" && what != "EVALSHA") what += " " + cmd[1];
  if ((what == "EVAL" || what == "EVALSHA") && cmd.size() > 4) what = "write to " + cmd[4];
  if (error.rfind("FENCED ", 0) == 0) {
    throw Error(Errc::run_owned,
                "redis at " + c.address().display() + ": " + what + " refused: " + error.substr(7));
  }
  throw Error(Errc::storage, "redis at " + c.address().display() + ": " + what + ": " + error);
}

}  // namespace

RedisStorage::RedisStorage(const RedisAddress& address, RedisOptions options)
    : options_(std::move(options)) {
  if (options_.key_prefix.empty() || options_.key_prefix.find_first_of("{}") != std::string::npos) {
    throw Error(Errc::invalid_argument, "key prefix \"" + options_.key_prefix +
                                            "\" must be non-empty and contain no { or }");
  }
  writer_ =
      std::make_unique<RedisConnection>(address, options_.io_timeout, options_.retry_deadline);
  reader_ =
      std::make_unique<RedisConnection>(address, options_.io_timeout, options_.retry_deadline);
  load_scripts();
}

RedisStorage::~RedisStorage() = default;

std::string RedisStorage::run_key(std::string_view id) const {
  return options_.key_prefix + ":{" + std::string(id) + "}:run";
}
std::string RedisStorage::history_key(std::string_view id) const {
  return options_.key_prefix + ":{" + std::string(id) + "}:history";
}
std::string RedisStorage::lease_key(std::string_view id) const {
  return options_.key_prefix + ":{" + std::string(id) + "}:lease";
}
std::string RedisStorage::fence_key(std::string_view id) const {
  return options_.key_prefix + ":{" + std::string(id) + "}:fence";
}
std::string RedisStorage::scope_key(std::string_view id, Scope scope) const {
  return options_.key_prefix + ":{" + std::string(id) +
         "}:" + (scope == Scope::kv ? "kv" : "shared");
}

void RedisStorage::load_scripts() {
  auto r = writer_->execute({{"SCRIPT", "LOAD", k_apply_script}});
  if (r[0].type != RedisReply::Type::string) {
    throw Error(Errc::storage,
                "redis at " + writer_->address().display() + ": SCRIPT LOAD failed: " + r[0].str);
  }
  apply_sha_ = r[0].str;
}

std::vector<RedisReply> RedisStorage::write(const std::vector<RedisCommand>& commands) {
  auto replies = writer_->execute(commands);
  for (const auto& r : replies) {
    if (r.type == RedisReply::Type::error && r.str.rfind("NOSCRIPT", 0) == 0) {
      // The server lost its scripts (restarted, or SCRIPT FLUSH): load them again and
      // resend — every command of a batch may be applied twice.
      load_scripts();
      std::vector<RedisCommand> again = commands;
      for (auto& c : again) {
        if (!c.empty() && c[0] == "EVALSHA") c[1] = apply_sha_;
      }
      replies = writer_->execute(again);
      break;
    }
  }
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].type == RedisReply::Type::error) {
      throw_reply_error(*writer_, commands[i], replies[i].str);
    }
  }
  return replies;
}

std::vector<RedisReply> RedisStorage::read(const std::vector<RedisCommand>& commands) const {
  auto replies = reader_->execute(commands);
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].type == RedisReply::Type::error) {
      throw_reply_error(*reader_, commands[i], replies[i].str);
    }
  }
  return replies;
}

void RedisStorage::apply(std::span<const Write> batch) {
  // Writes of different runs touch different keys, so the batch may be regrouped by run
  // (and token) as long as each run's writes keep their order: one script call per group,
  // however the runs' writes were interleaved. The cross-slot run indexes are updated by
  // separate (idempotent) commands after each group.
  std::vector<std::vector<const Write*>> groups;
  {
    std::unordered_map<std::string_view, std::size_t> group_of;
    for (const Write& w : batch) {
      auto [it, fresh] = group_of.try_emplace(w.run_id(), groups.size());
      if (fresh) groups.emplace_back();
      if (!groups[it->second].empty() && groups[it->second].back()->fence != w.fence) {
        // Another owner's token for the same run: keep the order, start a new group.
        it->second = groups.size();
        groups.emplace_back();
      }
      groups[it->second].push_back(&w);
    }
  }
  std::vector<RedisCommand> cmds;
  const std::string runs_index = options_.key_prefix + ":runs";
  for (const auto& group : groups) {
    const std::string& id = group.front()->run_id();
    RedisCommand script{"EVALSHA",
                        apply_sha_,
                        "6",
                        fence_key(id),
                        run_key(id),
                        history_key(id),
                        scope_key(id, Scope::kv),
                        scope_key(id, Scope::shared),
                        lease_key(id),
                        std::to_string(group.front()->fence)};
    // Only the group's last run record counts (each replaces the one before); a group that
    // claims the run's lease holds a new run, which no status index lists yet.
    const RunInfo* last_record = nullptr;
    bool claims = false;
    for (const Write* wp : group) {
      if (auto* p = std::get_if<Write::PutRun>(&wp->op)) last_record = &p->run;
      claims = claims || std::holds_alternative<Write::ClaimLease>(wp->op);
    }
    for (const Write* wp : group) {
      const Write& w = *wp;
      const std::uint64_t fence = w.fence;
      if (auto* p = std::get_if<Write::PutRun>(&w.op)) {
        if (&p->run == last_record) script.insert(script.end(), {"R", encode_run(p->run)});
      } else if (auto* h = std::get_if<Write::AppendHistory>(&w.op)) {
        script.insert(script.end(), {"H", std::to_string(h->entry.seq), encode_history(h->entry)});
      } else if (auto* k = std::get_if<Write::PutKey>(&w.op)) {
        script.insert(script.end(),
                      {"K", k->scope == Scope::kv ? "k" : "s", k->key, encode_value(k->value)});
      } else if (auto* e = std::get_if<Write::EraseKey>(&w.op)) {
        script.insert(script.end(), {"D", e->scope == Scope::kv ? "k" : "s", e->key});
      } else if (auto* c = std::get_if<Write::ClaimLease>(&w.op)) {
        script.insert(script.end(), {"C", c->owner + "|1", std::to_string(c->ttl.count())});
      } else if (auto* l = std::get_if<Write::ReleaseLease>(&w.op)) {
        script.insert(script.end(), {"U", l->owner + "|" + std::to_string(fence)});
      }
    }
    std::vector<RedisCommand> index_updates;
    if (last_record) {
      const RunInfo& run = *last_record;
      std::string score = score_of(run);
      index_updates.push_back({"ZADD", runs_index, "NX", score, run.id});
      for (RunStatus s : k_statuses) {
        std::string index = runs_index + ":" + to_string(s);
        if (s == run.status) {
          index_updates.push_back({"ZADD", index, score, run.id});
        } else if (!claims) {
          index_updates.push_back({"ZREM", index, run.id});
        }
      }
    }
    cmds.push_back(std::move(script));
    for (auto& c : index_updates) cmds.push_back(std::move(c));
  }
  write(cmds);
}

LeaseResult RedisStorage::acquire_lease(std::string_view run_id, std::string_view owner,
                                        std::chrono::milliseconds ttl) {
  auto r = write({{"EVAL", k_acquire_script, "2", lease_key(run_id), fence_key(run_id),
                   std::string(owner), std::to_string(ttl.count())}});
  const auto& items = r[0].elements;
  if (items.size() == 2 && items[0].integer == 1) {
    return LeaseResult{Lease{std::string(owner), static_cast<std::uint64_t>(items[1].integer)}, {}};
  }
  return LeaseResult{std::nullopt, items.size() == 2 ? items[1].str : std::string("unknown")};
}

bool RedisStorage::renew_lease(std::string_view run_id, const Lease& lease,
                               std::chrono::milliseconds ttl) {
  std::string token = std::to_string(lease.token);
  auto r = write({{"EVAL", k_renew_script, "2", lease_key(run_id), fence_key(run_id),
                   lease.owner + "|" + token, token, std::to_string(ttl.count())}});
  return r[0].integer == 1;
}

void RedisStorage::release_lease(std::string_view run_id, const Lease& lease) {
  write({{"EVAL", k_release_script, "1", lease_key(run_id),
          lease.owner + "|" + std::to_string(lease.token)}});
}

std::optional<std::string> RedisStorage::lease_holder(std::string_view run_id) const {
  auto r = read({{"GET", lease_key(run_id)}});
  if (r[0].type != RedisReply::Type::string) return std::nullopt;
  const std::string& v = r[0].str;
  auto bar = v.rfind('|');
  return bar == std::string::npos ? v : v.substr(0, bar);
}

void RedisStorage::put_run(const RunInfo& run) {
  Write w{Write::PutRun{run}};
  apply(std::span<const Write>(&w, 1));
}

void RedisStorage::append_history(std::string_view run_id, const HistoryEntry& entry) {
  Write w{Write::AppendHistory{std::string(run_id), entry}};
  apply(std::span<const Write>(&w, 1));
}

void RedisStorage::put_key(std::string_view run_id, Scope scope, std::string_view key,
                           const Value& value) {
  write({{"HSET", scope_key(run_id, scope), std::string(key), encode_value(value)}});
}

void RedisStorage::erase_key(std::string_view run_id, Scope scope, std::string_view key) {
  write({{"HDEL", scope_key(run_id, scope), std::string(key)}});
}

std::optional<RunInfo> RedisStorage::get_run(std::string_view run_id) const {
  std::string key = run_key(run_id);
  auto replies = read({{"GET", key}});
  if (replies[0].type != RedisReply::Type::string) return std::nullopt;
  return decode_run(replies[0].str, key);
}

std::vector<RunInfo> RedisStorage::list_runs(const RunFilter& filter) const {
  std::string index = options_.key_prefix + ":runs";
  if (filter.status) index += std::string(":") + to_string(*filter.status);
  std::string stop = filter.limit ? std::to_string(filter.limit - 1) : "-1";
  auto ids = read({{"ZREVRANGE", index, "0", stop}});
  std::vector<RedisCommand> gets;
  for (const auto& id : ids[0].elements) gets.push_back({"GET", run_key(id.str)});
  std::vector<RunInfo> out;
  if (gets.empty()) return out;
  auto records = read(gets);
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (records[i].type != RedisReply::Type::string) continue;  // indexed, record not yet written
    out.push_back(decode_run(records[i].str, gets[i][1]));
  }
  return out;
}

std::vector<HistoryEntry> RedisStorage::history(std::string_view run_id, std::size_t from) const {
  std::string key = history_key(run_id);
  auto replies = read({{"LRANGE", key, std::to_string(from), "-1"}});
  std::vector<HistoryEntry> out;
  out.reserve(replies[0].elements.size());
  for (std::size_t i = 0; i < replies[0].elements.size(); ++i) {
    out.push_back(
        decode_history(replies[0].elements[i].str, key + "[" + std::to_string(from + i) + "]"));
  }
  return out;
}

std::optional<Value> RedisStorage::get_key(std::string_view run_id, Scope scope,
                                           std::string_view key) const {
  std::string hash = scope_key(run_id, scope);
  auto replies = read({{"HGET", hash, std::string(key)}});
  if (replies[0].type != RedisReply::Type::string) return std::nullopt;
  return decode_value(replies[0].str, hash + " field \"" + std::string(key) + "\"");
}

Value::Map RedisStorage::keys(std::string_view run_id, Scope scope) const {
  std::string hash = scope_key(run_id, scope);
  auto replies = read({{"HGETALL", hash}});
  Value::Map out;
  const auto& items = replies[0].elements;
  for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
    out.emplace(items[i].str,
                decode_value(items[i + 1].str, hash + " field \"" + items[i].str + "\""));
  }
  return out;
}

}  // namespace flux::detail
