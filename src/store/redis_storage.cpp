#include "store/redis_storage.hpp"

#include <algorithm>
#include <unordered_map>

#include "format/record_codec.hpp"

namespace flux::detail {
namespace {

// Applies a group of consecutive writes to one run, atomically, after checking the
// writer's fencing token against the newest one granted for the run (so a stalled former
// owner cannot write into a run someone else now owns).
// KEYS: 1 fence, 2 run record, 3 history, 4 kv, 5 shared, 6 lease,
//       7 P:runs, 8 P:runs:running, 9 P:runs:completed, 10 P:runs:failed,
//       11 P:runs:cancelled (appended with RunStatus::cancelled), 12 P:runs:compensated,
//       13 P:runs:compensation_failed (appended with those statuses).
// ARGV[1]: the token ("0": unfenced), then operations:
//   R <record> <id> <status> <score> <keep ms>
//                               set the run record and move the run to its status index in
//                               the same atomic step (a write that fails changes neither, so
//                               the indexes never disagree with the records); a finished run's
//                               keys expire after <keep ms> ("0": never, see Retention)
//   H <seq> <entry>             append at seq: skipped if already stored (a batch resent after
//                               a lost connection never duplicates history), a gap is an error
//   K <k|s> <field> <value>     set a kv / shared field
//   D <k|s> <field>             delete a kv / shared field
//   U <owner|token>             give the lease up, if still held by this owner and token
//   C <owner|1> <ttl ms>        claim a new run's lease with token 1 (idempotent)
constexpr const char* k_apply_script = R"lua(
local token = ARGV[1]
local checked = token == '0'
-- The run's keys were created by this script's claim: no index holds the run yet and none
-- of its keys expires, so moving it between indexes and clearing expiries are skipped (the
-- common case: a short run's whole life in one batch). A claim applied twice is not fresh.
local fresh = false
local stored = nil   -- history length, read once
local pushes = {}    -- history entries to append, in order
local expire = nil   -- after the last R: ms to keep the run's keys (0: for good)
local i = 2
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'C' then
    if redis.call('SET', KEYS[1], '1', 'NX') then
      fresh = true
    else
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
      -- Tokens only grow: a newest token below ours means the store forgot the run.
      if tonumber(newest) < tonumber(token) then
        return redis.error_reply('LOST fencing token ' .. token .. ' was granted, the store now has ' .. newest)
      end
      return redis.error_reply('FENCED fencing token ' .. token .. ' is stale, the newest is ' .. newest)
    end
    checked = true
  elseif op == 'R' then
    redis.call('SET', KEYS[2], ARGV[i + 1])
    local id, status, score = ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    redis.call('ZADD', KEYS[7], 'NX', score, id)
    for k = 8, 13 do
      if KEYS[k] == KEYS[7] .. ':' .. status then
        redis.call('ZADD', KEYS[k], score, id)
      elseif not fresh then
        redis.call('ZREM', KEYS[k], id)
      end
    end
    expire = status == 'running' and 0 or tonumber(ARGV[i + 5])
    i = i + 6
  elseif op == 'H' then
    if not stored then stored = redis.call('LLEN', KEYS[3]) end
    local seq = tonumber(ARGV[i + 1])
    if seq == stored then
      pushes[#pushes + 1] = ARGV[i + 2]
      stored = stored + 1
    elseif seq > stored then
      return redis.error_reply('GAP ' .. stored .. ' history entries are stored, the next write is seq ' .. seq)
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
-- Retention, last (so that the history just pushed is covered): a finished run's keys
-- expire together; a run running again (resumed) keeps them for good.
-- The keys expire together, so the fence key's (never rewritten by SET) tells whether they do.
if expire then
  if expire > 0 then
    for k = 1, 5 do redis.call('PEXPIRE', KEYS[k], expire) end
  elseif not fresh and redis.call('PTTL', KEYS[1]) >= 0 then
    for k = 1, 5 do redis.call('PERSIST', KEYS[k]) end
  end
end
return 1
)lua";

// Retention's index clean-up, sent with a batch that finished runs: index entries whose
// record has expired are dropped, then, beyond <max runs> finished runs, the oldest (by
// creation time) are deleted with all their keys. At most <budget> runs per call, so a
// call is O(budget log n); a batch finishes fewer runs than that on average, so the
// indexes stay bounded. The index at the head of the completed/failed indexes may keep
// younger expired entries behind it until it expires itself (readers drop those too).
// The per-run keys are built here from the prefix: they are not in KEYS, which a single
// Redis allows (the run indexes make the store single-instance anyway, see README).
// KEYS: 1 P:runs, 2 P:runs:running, 3 P:runs:completed, 4 P:runs:failed, 5 P:runs:cancelled,
// 6 P:runs:compensated, 7 P:runs:compensation_failed (3-7: the finished statuses).
// ARGV: P, max runs ("0": no limit), budget.
constexpr const char* k_trim_script = R"lua(
local prefix, max_runs, budget = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function drop(id, delete_keys)
  for k = 1, #KEYS do redis.call('ZREM', KEYS[k], id) end
  if delete_keys then
    local run = prefix .. ':{' .. id .. '}:'
    redis.call('DEL', run .. 'run', run .. 'history', run .. 'kv', run .. 'shared', run .. 'fence',
               run .. 'cancel')
  end
  budget = budget - 1
end
for k = 3, #KEYS do
  for _, id in ipairs(redis.call('ZRANGE', KEYS[k], 0, budget - 1)) do
    if budget > 0 and redis.call('EXISTS', prefix .. ':{' .. id .. '}:run') == 0 then
      drop(id, false)
    end
  end
end
if max_runs > 0 then
  local excess = -max_runs
  for k = 3, #KEYS do excess = excess + redis.call('ZCARD', KEYS[k]) end
  while excess > 0 and budget > 0 do
    local oldest, score = nil, nil
    for k = 3, #KEYS do
      local head = redis.call('ZRANGE', KEYS[k], 0, 0, 'WITHSCORES')
      if head[1] and (not score or tonumber(head[2]) < score) then
        oldest, score = head[1], tonumber(head[2])
      end
    end
    if not oldest then break end
    drop(oldest, true)
    excess = excess - 1
  end
end
return 1
)lua";

// A reader's repair of the run indexes, checked against the record at the time it runs
// (a writer may have changed the run since the reader looked).
// KEYS: 1 the run record, 2 P:runs, 3 P:runs:running, 4 P:runs:completed, 5 P:runs:failed,
// 6 P:runs:cancelled, 7 P:runs:compensated, 8 P:runs:compensation_failed.
// ARGV: id, then "missing" (the record was missing: drop the id from every index, if it
// still is) or "reindex" <record> <status> <score> (the record was found in the index of
// another status: move it to its own, if the record is still the one the reader decoded).
constexpr const char* k_repair_script = R"lua(
local record = redis.call('GET', KEYS[1])
local id = ARGV[1]
if ARGV[2] == 'missing' then
  if not record then
    for k = 2, #KEYS do redis.call('ZREM', KEYS[k], id) end
  end
elseif record == ARGV[3] then
  redis.call('ZADD', KEYS[2], 'NX', ARGV[5], id)
  for k = 3, #KEYS do
    if KEYS[k] == KEYS[2] .. ':' .. ARGV[4] then
      redis.call('ZADD', KEYS[k], ARGV[5], id)
    else
      redis.call('ZREM', KEYS[k], id)
    end
  end
end
return 1
)lua";

// Write::FailRun. KEYS: 1 fence, 2 run record, 3 lease, 4 the all-runs index, 5-7 the
// running, completed and failed indexes, 8-10 history, kv, shared, 11-13 the cancelled,
// compensated and compensation_failed indexes.
// ARGV: the failed
// writer's token, the record, its index score, the run id, ms to keep the run's keys
// (retention, "0": for good). `allow-oom`: it must land even when the store is full — a
// record replaced by one of about the same size — so that the store says what the caller
// was told. Returns 1, or 0 if another owner took the run since (its call, not ours).
constexpr const char* k_fail_script = R"lua(#!lua flags=allow-oom
local newest = tonumber(redis.call('GET', KEYS[1]) or '0')
local token = tonumber(ARGV[1])
if newest > token then return 0 end
redis.call('SET', KEYS[1], tostring(token + 1))
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[4])
redis.call('ZREM', KEYS[5], ARGV[4])
redis.call('ZREM', KEYS[6], ARGV[4])
redis.call('ZADD', KEYS[7], ARGV[3], ARGV[4])
for k = 11, 13 do redis.call('ZREM', KEYS[k], ARGV[4]) end
-- The run's keys expire together, or none does (the apply script relies on it).
local keep = tonumber(ARGV[5])
for _, k in ipairs({1, 2, 8, 9, 10}) do
  if keep > 0 then redis.call('PEXPIRE', KEYS[k], keep) else redis.call('PERSIST', KEYS[k]) end
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

std::string score_of(const RunInfo& run) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(run.created.time_since_epoch());
  return std::to_string(us.count());
}

/// What a command wrote or read, for messages: "write to <run key>" for a script call,
/// else the command and its key ("ZADD flux:runs").
std::string describe(const RedisCommand& cmd) {
  if (cmd.empty()) return "";
  if (cmd[0] == "EVAL" || cmd[0] == "EVALSHA") {
    return cmd.size() > 4 ? "write to " + cmd[4] : cmd[0];
  }
  return cmd.size() > 1 ? cmd[0] + " " + cmd[1] : cmd[0];
}

/// The error a reply stands for, naming the run (if known) and what was written or read.
Error reply_error(const RedisAddress& address, const std::string& run_id, const std::string& what,
                  const std::string& error) {
  const std::string where = "redis at " + address.display() + ": " +
                            (run_id.empty() ? "" : "run " + run_id + ": ") + what;
  if (error.rfind("FENCED ", 0) == 0) {
    return Error(Errc::run_owned, where + " refused: " + error.substr(7));
  }
  if (error.rfind("LOST ", 0) == 0) {
    return Error(Errc::storage, "the store at " + address.display() +
                                    " lost its data (restarted empty, flushed or failed over): "
                                    "run " +
                                    run_id + " cannot be recorded (" + error.substr(5) + ")");
  }
  if (error.rfind("GAP ", 0) == 0) {
    return Error(Errc::storage,
                 "the store at " + address.display() + " lost part of run " + run_id +
                     "'s history (restarted from an older snapshot?): " + error.substr(4));
  }
  return Error(Errc::storage, where + ": " + error);
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
  learn_server_limits();
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
std::string RedisStorage::runs_index() const { return options_.key_prefix + ":runs"; }
std::string RedisStorage::status_index(RunStatus status) const {
  return options_.key_prefix + ":runs:" + to_string(status);
}
std::string RedisStorage::scope_key(std::string_view id, Scope scope) const {
  return options_.key_prefix + ":{" + std::string(id) +
         "}:" + (scope == Scope::kv ? "kv" : "shared");
}

void RedisStorage::load_scripts() {
  auto r =
      writer_->execute({{"SCRIPT", "LOAD", k_apply_script}, {"SCRIPT", "LOAD", k_fail_script}});
  for (const RedisReply& reply : r) {
    if (reply.type != RedisReply::Type::string) {
      throw Error(Errc::storage, "redis at " + writer_->address().display() +
                                     ": SCRIPT LOAD failed: " + reply.str);
    }
  }
  apply_sha_ = r[0].str;
  fail_sha_ = r[1].str;
}

void RedisStorage::learn_server_limits() {
  // A bulk string longer than the server's proto-max-bulk-len makes it drop the connection,
  // and with it every run of the batch: records are checked against the smaller of the
  // configured limit and the server's before they are sent. CONFIG may be disabled (managed
  // Redis): then the configured limit alone applies.
  max_record_size_ = options_.max_record_size;
  auto r = writer_->execute({{"CONFIG", "GET", "proto-max-bulk-len"}});
  if (r[0].type == RedisReply::Type::array && r[0].elements.size() == 2) {
    try {
      const std::size_t server = std::stoull(r[0].elements[1].str);
      // Room for the script's other arguments is not needed: each record is its own bulk.
      max_record_size_ = std::min(max_record_size_, server);
    } catch (const std::exception&) {
      // not a number: keep the configured limit
    }
  }
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
      throw reply_error(writer_->address(), "", describe(commands[i]), replies[i].str);
    }
  }
  return replies;
}

std::vector<RedisReply> RedisStorage::read(const std::vector<RedisCommand>& commands) const {
  auto replies = reader_->execute(commands);
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].type == RedisReply::Type::error) {
      throw reply_error(reader_->address(), "", describe(commands[i]), replies[i].str);
    }
  }
  return replies;
}

namespace {

/// The writes of one run with one token, consecutive in the run's order: one script call.
struct Group {
  std::vector<const Write*> writes;
  std::size_t first_command = 0;  // where its commands start in the pipelined batch
  std::size_t commands = 0;       // 0: refused before sending
};

std::vector<Group> group_by_run(std::span<const Write> batch) {
  // Writes of different runs touch different keys, so the batch may be regrouped by run
  // (and token) as long as each run's writes keep their order: one script call per group,
  // however the runs' writes were interleaved. The script updates the run indexes too.
  std::vector<Group> groups;
  std::unordered_map<std::string_view, std::size_t> group_of;
  for (const Write& w : batch) {
    auto [it, fresh] = group_of.try_emplace(w.run_id(), groups.size());
    if (fresh) groups.emplace_back();
    const auto& last = groups[it->second].writes;
    if (!last.empty() &&
        (last.back()->fence != w.fence || std::holds_alternative<Write::FailRun>(last.back()->op) ||
         std::holds_alternative<Write::FailRun>(w.op))) {
      // Another owner's token for the same run, or a FailRun (a script of its own): keep
      // the order, start a new group.
      it->second = groups.size();
      groups.emplace_back();
    }
    groups[it->second].writes.push_back(&w);
  }
  return groups;
}

}  // namespace

std::size_t RedisStorage::max_record_size() const noexcept { return max_record_size_; }

const std::string& RedisStorage::checked_size(const std::string& record, const std::string& run_id,
                                              const std::string& key) const {
  if (record.size() > max_record_size_) {
    throw Error(Errc::invalid_argument,
                "run " + run_id + ": the record for " + key + " is " +
                    std::to_string(record.size()) + " bytes, more than the store's limit of " +
                    std::to_string(max_record_size_) +
                    " bytes (Config::max_record_size, and the server's proto-max-bulk-len)");
  }
  return record;
}

RedisCommand RedisStorage::script_for(const std::vector<const Write*>& group) const {
  const std::string& id = group.front()->run_id();
  RedisCommand script{"EVALSHA",
                      apply_sha_,
                      "13",
                      fence_key(id),
                      run_key(id),
                      history_key(id),
                      scope_key(id, Scope::kv),
                      scope_key(id, Scope::shared),
                      lease_key(id),
                      runs_index(),
                      status_index(RunStatus::running),
                      status_index(RunStatus::completed),
                      status_index(RunStatus::failed),
                      status_index(RunStatus::cancelled),
                      status_index(RunStatus::compensated),
                      status_index(RunStatus::compensation_failed),
                      std::to_string(group.front()->fence)};
  // Only the group's last run record counts (each replaces the one before).
  const RunInfo* last_record = nullptr;
  for (const Write* wp : group) {
    if (auto* p = std::get_if<Write::PutRun>(&wp->op)) last_record = p->run.get();
  }
  for (const Write* wp : group) {
    const Write& w = *wp;
    if (auto* p = std::get_if<Write::PutRun>(&w.op)) {
      if (p->run.get() == last_record) {
        const RunInfo& run = *p->run;
        script.insert(script.end(), {"R", checked_size(encode_run(run), id, run_key(id)), id,
                                     to_string(run.status), score_of(run),
                                     std::to_string(options_.retention.max_age.count())});
      }
    } else if (auto* h = std::get_if<Write::AppendHistory>(&w.op)) {
      const std::string seq = std::to_string(h->entry->seq);
      script.insert(script.end(), {"H", seq,
                                   checked_size(encode_history(*h->entry), id,
                                                history_key(id) + "[" + seq + "]")});
    } else if (auto* k = std::get_if<Write::PutKey>(&w.op)) {
      script.insert(script.end(),
                    {"K", k->scope == Scope::kv ? "k" : "s", k->key,
                     checked_size(encode_value(k->value), id,
                                  scope_key(id, k->scope) + " field \"" + k->key + "\"")});
    } else if (auto* e = std::get_if<Write::EraseKey>(&w.op)) {
      script.insert(script.end(), {"D", e->scope == Scope::kv ? "k" : "s", e->key});
    } else if (auto* c = std::get_if<Write::ClaimLease>(&w.op)) {
      script.insert(script.end(), {"C", c->owner + "|1", std::to_string(c->ttl.count())});
    } else if (auto* l = std::get_if<Write::ReleaseLease>(&w.op)) {
      script.insert(script.end(), {"U", l->owner + "|" + std::to_string(w.fence)});
    }
  }
  return script;
}

RedisCommand RedisStorage::fail_script_for(const Write& w) const {
  const RunInfo& run = *std::get<Write::FailRun>(w.op).run;
  const std::string& id = run.id;
  const std::string runs_index = options_.key_prefix + ":runs";
  return {"EVALSHA",
          fail_sha_,
          "13",
          fence_key(id),
          run_key(id),
          lease_key(id),
          runs_index,
          runs_index + ":running",
          runs_index + ":completed",
          runs_index + ":failed",
          history_key(id),
          scope_key(id, Scope::kv),
          scope_key(id, Scope::shared),
          runs_index + ":cancelled",
          runs_index + ":compensated",
          runs_index + ":compensation_failed",
          std::to_string(w.fence),
          checked_size(encode_run(run), id, run_key(id)),
          score_of(run),
          id,
          std::to_string(options_.retention.max_age.count())};
}

std::vector<RunRefusal> RedisStorage::apply(std::span<const Write> batch) {
  std::vector<Group> groups = group_by_run(batch);
  std::vector<RunRefusal> refused;
  // Encoded first, so that a record that cannot be encoded or is too large is refused
  // before anything is sent: it fails its own run, never the batch.
  std::vector<RedisCommand> cmds;
  bool finishes = false;  // does the batch finish a run (so that retention may trim)?
  for (Group& g : groups) {
    const Write& first = *g.writes.front();
    try {
      std::vector<RedisCommand> group_cmds;
      if (std::holds_alternative<Write::FailRun>(first.op)) {
        for (const Write* w : g.writes) group_cmds.push_back(fail_script_for(*w));
      } else {
        group_cmds.push_back(script_for(g.writes));
      }
      for (const Write* w : g.writes) {
        const auto* put = std::get_if<Write::PutRun>(&w->op);
        finishes = finishes || std::holds_alternative<Write::FailRun>(w->op) ||
                   (put && put->run->status != RunStatus::running);
      }
      g.first_command = cmds.size();
      g.commands = group_cmds.size();
      for (auto& c : group_cmds) cmds.push_back(std::move(c));
    } catch (const Error& e) {
      refused.push_back(RunRefusal{first.run_id(), first.fence, e});
    }
  }
  const Retention& keep = options_.retention;
  if (finishes && (keep.max_age.count() > 0 || keep.max_runs > 0)) {
    // In the same round trip, after every group: a few runs' worth of index clean-up
    // (k_trim_script). Its reply is not a group's: a failed clean-up is retried next time.
    cmds.push_back({"EVAL", k_trim_script, "7", runs_index(), status_index(RunStatus::running),
                    status_index(RunStatus::completed), status_index(RunStatus::failed),
                    status_index(RunStatus::cancelled), status_index(RunStatus::compensated),
                    status_index(RunStatus::compensation_failed), options_.key_prefix,
                    std::to_string(keep.max_runs), "4"});
  }
  if (cmds.empty()) return refused;
  std::vector<RedisReply> replies = writer_->execute(cmds);  // throws: the store as a whole
  const bool lost_scripts = std::any_of(replies.begin(), replies.end(), [](const RedisReply& r) {
    return r.type == RedisReply::Type::error && r.str.rfind("NOSCRIPT", 0) == 0;
  });
  if (lost_scripts) {
    // The server lost its scripts (restarted, or SCRIPT FLUSH): load them again (a script's
    // SHA1 is that of its text: the calls stay as they are) and resend — every command of a
    // batch may be applied twice.
    load_scripts();
    replies = writer_->execute(cmds);
  }
  for (const Group& g : groups) {
    for (std::size_t i = g.first_command; i < g.first_command + g.commands; ++i) {
      if (replies[i].type != RedisReply::Type::error) continue;
      const Write& first = *g.writes.front();
      refused.push_back(RunRefusal{
          first.run_id(), first.fence,
          reply_error(writer_->address(), first.run_id(), describe(cmds[i]), replies[i].str)});
      break;
    }
  }
  return refused;
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
  Write w{Write::PutRun{std::make_shared<const RunInfo>(run)}};
  auto refused = apply(std::span<const Write>(&w, 1));
  if (!refused.empty()) throw refused.front().error;
}

void RedisStorage::append_history(std::string_view run_id, const HistoryEntry& entry) {
  Write w{Write::AppendHistory{std::string(run_id), std::make_shared<const HistoryEntry>(entry)}};
  auto refused = apply(std::span<const Write>(&w, 1));
  if (!refused.empty()) throw refused.front().error;
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
  return decode_run(replies[0].str, key, run_id);
}

std::vector<RunInfo> RedisStorage::list_runs(const RunFilter& filter) const {
  return list_runs_page(filter).runs;
}

RunPage RedisStorage::list_runs_page(const RunFilter& filter) const {
  const std::string index = filter.status ? status_index(*filter.status) : runs_index();
  const std::size_t limit = filter.limit;
  // 1. The page's index entries (id, score): one round trip, O(log n + limit).
  std::vector<std::pair<std::string, std::string>> entries;
  auto take = [&](const RedisReply& reply, const std::string* after_id) {
    const auto& items = reply.elements;
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
      if (limit && entries.size() == limit) return;
      if (after_id && !(items[i].str < *after_id)) continue;
      entries.emplace_back(items[i].str, items[i + 1].str);
    }
  };
  if (filter.cursor.empty()) {
    std::string stop = limit ? std::to_string(limit - 1) : "-1";
    take(read({{"ZREVRANGE", index, "0", stop, "WITHSCORES"}})[0], nullptr);
  } else {
    // The cursor is "<score>:<id>" of the page before's last entry. Runs created in the
    // same microsecond share its score; Redis lists those in descending id order, so the
    // ones after the cursor are the ones with a smaller id. Then the older scores.
    auto colon = filter.cursor.find(':');
    const std::string score = filter.cursor.substr(0, colon);
    if (colon == std::string::npos || score.empty() ||
        score.find_first_not_of("0123456789-") != std::string::npos) {
      throw Error(Errc::invalid_argument, "list_runs: cursor \"" + filter.cursor +
                                              "\" is not one this Redis store returned");
    }
    const std::string after = filter.cursor.substr(colon + 1);
    RedisCommand older{"ZREVRANGEBYSCORE", index, "(" + score, "-inf", "WITHSCORES"};
    if (limit) older.insert(older.end(), {"LIMIT", "0", std::to_string(limit)});
    auto replies = read({{"ZREVRANGEBYSCORE", index, score, score, "WITHSCORES"}, older});
    take(replies[0], &after);
    take(replies[1], nullptr);
  }
  RunPage page;
  if (entries.empty()) return page;
  if (limit && entries.size() == limit) {
    page.next_cursor = entries.back().second + ":" + entries.back().first;
  }
  // 2. Their records: one round trip.
  std::vector<RedisCommand> gets;
  gets.reserve(entries.size());
  for (const auto& e : entries) gets.push_back({"GET", run_key(e.first)});
  auto records = read(gets);
  // 3. Skip what the index cannot vouch for, and repair the index (a third round trip, only
  // when needed): an entry whose record is gone (expired, evicted, deleted) is dropped; a
  // record found under another status is moved to its own index. Either way the caller is
  // never shown a run the filter excludes.
  std::vector<RedisCommand> repairs;
  auto repair = [&](const std::string& id, std::initializer_list<std::string> args) {
    RedisCommand c{"EVAL",
                   k_repair_script,
                   "8",
                   run_key(id),
                   runs_index(),
                   status_index(RunStatus::running),
                   status_index(RunStatus::completed),
                   status_index(RunStatus::failed),
                   status_index(RunStatus::cancelled),
                   status_index(RunStatus::compensated),
                   status_index(RunStatus::compensation_failed),
                   id};
    c.insert(c.end(), args);
    repairs.push_back(std::move(c));
  };
  for (std::size_t i = 0; i < records.size(); ++i) {
    const std::string& id = entries[i].first;
    if (records[i].type != RedisReply::Type::string) {
      repair(id, {"missing"});
      continue;
    }
    try {
      RunInfo run = decode_run(records[i].str, gets[i][1], id);
      if (filter.status && run.status != *filter.status) {
        repair(id, {"reindex", records[i].str, to_string(run.status), score_of(run)});
        continue;
      }
      page.runs.push_back(std::move(run));
    } catch (const Error&) {
      // One corrupt record must not hide the others: report its key, list the rest.
      page.corrupt_keys.push_back(gets[i][1]);
    }
  }
  if (!repairs.empty()) {
    // The listing itself has succeeded; a repair that fails is retried by the next reader.
    try {
      (void)reader_->execute(repairs);
    } catch (const Error&) {
    }
  }
  return page;
}

std::vector<std::optional<std::string>> RedisStorage::lease_holders(
    std::span<const std::string> run_ids) const {
  std::vector<std::optional<std::string>> out;
  if (run_ids.empty()) return out;
  std::vector<RedisCommand> gets;
  gets.reserve(run_ids.size());
  for (const std::string& id : run_ids) gets.push_back({"GET", lease_key(id)});
  for (const RedisReply& r : read(gets)) {  // one round trip, however many runs
    if (r.type != RedisReply::Type::string) {
      out.emplace_back();
    } else {
      auto bar = r.str.rfind('|');
      out.emplace_back(bar == std::string::npos ? r.str : r.str.substr(0, bar));
    }
  }
  return out;
}

std::array<std::size_t, 6> RedisStorage::count_by_status() const {
  std::vector<RedisCommand> cards;
  for (std::size_t i = 0; i < 6; ++i) {
    cards.push_back({"ZCARD", status_index(static_cast<RunStatus>(i))});
  }
  std::array<std::size_t, 6> out{};
  const std::vector<RedisReply> replies = read(cards);
  for (std::size_t i = 0; i < out.size() && i < replies.size(); ++i) {
    if (replies[i].type == RedisReply::Type::integer && replies[i].integer > 0) {
      out[i] = static_cast<std::size_t>(replies[i].integer);
    }
  }
  return out;
}

std::string RedisStorage::cancel_key(std::string_view id) const {
  return options_.key_prefix + ":{" + std::string(id) + "}:cancel";
}

// A cancel request is a sealed Value record (a map of "by", "reason" and, when asked,
// "compensate": true -- a request written before compensation existed reads as false), so that it is
// checked like every other record. It expires after a day: a request for a run whose owner
// never renews its lease again (an orphan nobody resumes) does not stay for good.
void RedisStorage::request_cancel(std::string_view run_id, const CancelRequest& request) {
  const std::string key = cancel_key(run_id);
  Value::Map record{{"by", request.by}, {"reason", request.reason}};
  if (request.compensate) record.emplace("compensate", true);
  write({{"SET", key, encode_value(Value(std::move(record))), "PX", "86400000"}});
}

std::vector<std::optional<CancelRequest>> RedisStorage::cancel_requests(
    std::span<const std::string> run_ids) const {
  std::vector<std::optional<CancelRequest>> out;
  if (run_ids.empty()) return out;
  std::vector<RedisCommand> gets;
  gets.reserve(run_ids.size());
  for (const std::string& id : run_ids) gets.push_back({"GET", cancel_key(id)});
  std::vector<RedisReply> replies = read(gets);  // one round trip, however many runs
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].type != RedisReply::Type::string) {
      out.emplace_back();
      continue;
    }
    const Value v = decode_value(replies[i].str, cancel_key(run_ids[i]));
    auto field = [&](const char* name) -> std::string {
      if (!v.is_map()) return "";
      auto it = v.as_map().find(name);
      return it != v.as_map().end() && it->second.is_string() ? it->second.as_string() : "";
    };
    bool compensate = false;
    if (v.is_map()) {
      auto it = v.as_map().find("compensate");
      compensate = it != v.as_map().end() && it->second.is_bool() && it->second.as_bool();
    }
    out.push_back(CancelRequest{field("by"), field("reason"), compensate});
  }
  return out;
}

void RedisStorage::clear_cancel_request(std::string_view run_id) {
  write({{"DEL", cancel_key(run_id)}});
}

std::string RedisStorage::resume_key(std::string_view id) const {
  return options_.key_prefix + ":{" + std::string(id) + "}:resume";
}
std::string RedisStorage::resume_index() const { return options_.key_prefix + ":resume_requests"; }

namespace {
// A resume request is kept a week: long enough for a driver to be started, bounded for a
// request nobody ever honours. (A driver finding an id in the index whose request expired
// clears it.)
constexpr const char* k_resume_request_ms = "604800000";
}  // namespace

// A resume request is a sealed Value record, as a cancel request is: a map of "verb"
// ("resume" or "retry"), "by", "at" (ns since the epoch) and, once refused, "refusal". The
// index set holds the ids of the pending ones; the request is written before its id is
// indexed, so that a driver reading the index finds it.
void RedisStorage::request_resume(std::string_view run_id, const ResumeRequest& request) {
  const std::string key = resume_key(run_id);
  Value::Map record{{"verb", std::string(to_string(request.verb))},
                    {"by", request.by},
                    {"at", static_cast<std::int64_t>(request.at.time_since_epoch().count())}};
  if (request.refusal) record.emplace("refusal", *request.refusal);
  write({{"SET", key, encode_value(Value(std::move(record))), "PX", k_resume_request_ms},
         {request.refusal ? "SREM" : "SADD", resume_index(), std::string(run_id)}});
}

std::vector<std::string> RedisStorage::pending_resume_requests(std::size_t limit) const {
  if (limit == 0) return {};
  // SRANDMEMBER with a positive count: up to `limit` distinct ids, so that a driver whose
  // page is full of others' pipelines still gets to see the rest over its next polls.
  auto replies = read({{"SRANDMEMBER", resume_index(), std::to_string(limit)}});
  std::vector<std::string> out;
  for (const RedisReply& r : replies[0].elements) out.push_back(r.str);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::optional<ResumeRequest>> RedisStorage::resume_requests(
    std::span<const std::string> run_ids) const {
  std::vector<std::optional<ResumeRequest>> out;
  if (run_ids.empty()) return out;
  std::vector<RedisCommand> gets;
  gets.reserve(run_ids.size());
  for (const std::string& id : run_ids) gets.push_back({"GET", resume_key(id)});
  std::vector<RedisReply> replies = read(gets);  // one round trip, however many runs
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].type != RedisReply::Type::string) {
      out.emplace_back();
      continue;
    }
    const std::string key = resume_key(run_ids[i]);
    const Value v = decode_value(replies[i].str, key);
    auto field = [&](const char* name) -> const Value* {
      if (!v.is_map()) return nullptr;
      auto it = v.as_map().find(name);
      return it != v.as_map().end() ? &it->second : nullptr;
    };
    const Value* verb = field("verb");
    const Value* by = field("by");
    const Value* at = field("at");
    const Value* refusal = field("refusal");
    if (!verb || !verb->is_string() ||
        !(verb->as_string() == "resume" || verb->as_string() == "retry") || !by ||
        !by->is_string() || !at || !at->is_int() || (refusal && !refusal->is_string())) {
      throw Error(Errc::storage, "corrupt resume request at " + key +
                                     ": expected a map of verb (resume or retry), by, at and "
                                     "optionally refusal");
    }
    ResumeRequest r;
    r.verb =
        verb->as_string() == "retry" ? ResumeRequest::Verb::retry : ResumeRequest::Verb::resume;
    r.by = by->as_string();
    r.at = Timestamp(std::chrono::nanoseconds(at->as_int()));
    if (refusal) r.refusal = refusal->as_string();
    out.push_back(std::move(r));
  }
  return out;
}

void RedisStorage::clear_resume_request(std::string_view run_id) {
  write({{"SREM", resume_index(), std::string(run_id)}, {"DEL", resume_key(run_id)}});
}

std::vector<HistoryEntry> RedisStorage::history(std::string_view run_id, std::size_t from) const {
  std::string key = history_key(run_id);
  auto replies = read({{"LRANGE", key, std::to_string(from), "-1"}});
  std::vector<HistoryEntry> out;
  out.reserve(replies[0].elements.size());
  for (std::size_t i = 0; i < replies[0].elements.size(); ++i) {
    out.push_back(decode_history(replies[0].elements[i].str,
                                 key + "[" + std::to_string(from + i) + "]", from + i));
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
