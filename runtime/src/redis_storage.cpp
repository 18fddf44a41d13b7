#include "redis_storage.hpp"

#include <algorithm>

#include "record_codec.hpp"

namespace flux::detail {
namespace {

// Appends history entries idempotently: entries whose seq is already stored are skipped,
// so a batch resent after a lost connection never duplicates history; a gap (an entry
// whose predecessors are missing) is refused, never papered over.
// KEYS[1] = the history list, ARGV[1] = seq of ARGV[2], ARGV[2..] = entries in seq order.
constexpr const char* k_append_script = R"lua(
local stored = redis.call('LLEN', KEYS[1])
local first = tonumber(ARGV[1])
if stored < first then
  return redis.error_reply('history gap at ' .. KEYS[1] .. ': ' .. stored ..
                           ' entries stored, the next write starts at seq ' .. first)
end
for i = 2 + (stored - first), #ARGV do
  redis.call('RPUSH', KEYS[1], ARGV[i])
end
return redis.call('LLEN', KEYS[1])
)lua";

constexpr RunStatus k_statuses[] = {RunStatus::running, RunStatus::completed, RunStatus::failed};

std::string score_of(const RunInfo& run) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(run.created.time_since_epoch());
  return std::to_string(us.count());
}

[[noreturn]] void throw_reply_error(const RedisConnection& c, const RedisCommand& cmd,
                                    const std::string& error) {
  std::string what = cmd.empty() ? "" : cmd[0];
  if (cmd.size() > 1 && what != "EVAL") what += " " + cmd[1];
  if (what == "EVAL" && cmd.size() > 3) what = "history append to " + cmd[3];
  throw Error(Errc::storage, "redis at " + c.address().display() + ": " + what + ": " + error);
}

}  // namespace

RedisStorage::RedisStorage(const RedisAddress& address, RedisOptions options)
    : options_(std::move(options)) {
  if (options_.key_prefix.empty() ||
      options_.key_prefix.find_first_of("{}") != std::string::npos) {
    throw Error(Errc::invalid_argument, "key prefix \"" + options_.key_prefix +
                                            "\" must be non-empty and contain no { or }");
  }
  writer_ = std::make_unique<RedisConnection>(address, options_.io_timeout, options_.retry_deadline);
  reader_ = std::make_unique<RedisConnection>(address, options_.io_timeout, options_.retry_deadline);
}

RedisStorage::~RedisStorage() = default;

std::string RedisStorage::run_key(std::string_view id) const {
  return options_.key_prefix + ":{" + std::string(id) + "}:run";
}
std::string RedisStorage::history_key(std::string_view id) const {
  return options_.key_prefix + ":{" + std::string(id) + "}:history";
}
std::string RedisStorage::scope_key(std::string_view id, Scope scope) const {
  return options_.key_prefix + ":{" + std::string(id) + "}:" +
         (scope == Scope::kv ? "kv" : "shared");
}

std::vector<RedisReply> RedisStorage::write(const std::vector<RedisCommand>& commands) {
  auto replies = writer_->execute(commands);
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
  std::vector<RedisCommand> cmds;
  const std::string runs_index = options_.key_prefix + ":runs";
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Write& w = batch[i];
    if (auto* p = std::get_if<Write::PutRun>(&w.op)) {
      const RunInfo& run = p->run;
      std::string score = score_of(run);
      cmds.push_back({"SET", run_key(run.id), encode_run(run)});
      cmds.push_back({"ZADD", runs_index, "NX", score, run.id});
      for (RunStatus s : k_statuses) {
        std::string index = runs_index + ":" + to_string(s);
        if (s == run.status) {
          cmds.push_back({"ZADD", index, score, run.id});
        } else {
          cmds.push_back({"ZREM", index, run.id});
        }
      }
    } else if (auto* h = std::get_if<Write::AppendHistory>(&w.op)) {
      // Consecutive appends to one run become one script call.
      RedisCommand cmd{"EVAL", k_append_script, "1", history_key(h->run_id),
                       std::to_string(h->entry.seq), encode_history(h->entry)};
      while (i + 1 < batch.size()) {
        auto* next = std::get_if<Write::AppendHistory>(&batch[i + 1].op);
        if (!next || next->run_id != h->run_id) break;
        cmd.push_back(encode_history(next->entry));
        ++i;
      }
      cmds.push_back(std::move(cmd));
    } else if (auto* k = std::get_if<Write::PutKey>(&w.op)) {
      cmds.push_back({"HSET", scope_key(k->run_id, k->scope), k->key, encode_value(k->value)});
    } else if (auto* e = std::get_if<Write::EraseKey>(&w.op)) {
      cmds.push_back({"HDEL", scope_key(e->run_id, e->scope), e->key});
    }
  }
  write(cmds);
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
    out.push_back(decode_history(replies[0].elements[i].str,
                                 key + "[" + std::to_string(from + i) + "]"));
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
