#include "cluster/worker_directory.hpp"

#include <algorithm>
#include <string_view>

#include "flux/error.hpp"
#include "format/record_codec.hpp"
#include "redis/redis_client.hpp"

namespace flux::detail {

namespace {

// A discovery poll runs every ~100 ms and a heartbeat every few hundred: neither may hang on a
// dead or frozen store much longer than a worker's TTL, so these are far below RedisStorage's.
constexpr std::chrono::milliseconds k_io_timeout{1000};
constexpr std::chrono::milliseconds k_retry_deadline{2000};

// Drops from the index (KEYS[1]) the ids (ARGV) whose card (KEYS[2..]) is missing, checked
// at the moment of the drop: a plain SREM after MGET could remove a worker that announced
// again in between, and whose card would then not be indexed until its next announcement. Returns
// how many ids were dropped. Safe to run twice, as RedisConnection may.
constexpr const char* k_prune_script = R"lua(
local dropped = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    dropped = dropped + redis.call('SREM', KEYS[1], ARGV[i - 1])
  end
end
return dropped
)lua";

std::string describe(const RedisCommand& cmd) {
  if (cmd.empty()) return "";
  if (cmd[0] == "EVAL") return "pruning " + (cmd.size() > 3 ? cmd[3] : std::string());
  return cmd.size() > 1 ? cmd[0] + " " + cmd[1] : cmd[0];
}

std::string ttl_ms(std::chrono::milliseconds ttl, const char* what) {
  if (ttl.count() <= 0) {
    throw Error(Errc::invalid_argument, std::string("worker directory: ") + what +
                                            " needs a positive TTL, not " +
                                            std::to_string(ttl.count()) + " ms");
  }
  return std::to_string(ttl.count());
}

// Runs `commands` as one pipelined batch; an error reply becomes Error(storage) naming the
// server and the command.
std::vector<RedisReply> run(RedisConnection& redis, const std::vector<RedisCommand>& commands) {
  std::vector<RedisReply> replies = redis.execute(commands);
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].type == RedisReply::Type::error) {
      throw Error(Errc::storage, "redis at " + redis.address().display() + ": worker directory: " +
                                     describe(commands[i]) + ": " + replies[i].str);
    }
  }
  return replies;
}

[[nodiscard]] Error unexpected(const RedisConnection& redis, const RedisCommand& cmd) {
  return Error(Errc::storage, "redis at " + redis.address().display() +
                                  ": worker directory: unexpected reply to " + describe(cmd));
}

}  // namespace

WorkerDirectory::WorkerDirectory(const std::string& redis_url, std::string key_prefix)
    : prefix_(std::move(key_prefix)) {
  if (prefix_.empty()) {
    throw Error(Errc::invalid_argument, "worker directory: the key prefix must not be empty");
  }
  redis_ =
      std::make_unique<RedisConnection>(parse_redis_url(redis_url), k_io_timeout, k_retry_deadline);
}

WorkerDirectory::~WorkerDirectory() = default;

void WorkerDirectory::announce(const WorkerCard& card, std::chrono::milliseconds ttl) {
  const std::string ms = ttl_ms(ttl, "announce");
  std::string bytes = encode_worker_card(card);
  // Both commands are idempotent, so a batch resent after an I/O failure does no harm.
  run(*redis_, {{"SET", prefix_ + ":worker:" + card.id, std::move(bytes), "PX", ms},
                {"SADD", prefix_ + ":workers", card.id}});
}

std::vector<std::optional<std::chrono::milliseconds>> WorkerDirectory::expires_in(
    const std::vector<std::string>& ids) {
  std::vector<std::optional<std::chrono::milliseconds>> out;
  if (ids.empty()) return out;
  std::vector<RedisCommand> cmds;
  for (const std::string& id : ids) cmds.push_back({"PTTL", prefix_ + ":worker:" + id});
  for (const RedisReply& r : run(*redis_, cmds)) {
    if (r.type == RedisReply::Type::integer && r.integer >= 0) {
      out.emplace_back(std::chrono::milliseconds(r.integer));
    } else {
      out.emplace_back();  // -2: gone; -1: no TTL (not a card a worker wrote)
    }
  }
  return out;
}

void WorkerDirectory::withdraw(const std::string& id) {
  run(*redis_, {{"DEL", prefix_ + ":worker:" + id}, {"SREM", prefix_ + ":workers", id}});
}

std::vector<WorkerCard> WorkerDirectory::live(std::vector<std::string>* corrupt) {
  if (corrupt) corrupt->clear();
  const std::string index = prefix_ + ":workers";
  const RedisCommand members_cmd{"SMEMBERS", index};
  const RedisReply members = std::move(run(*redis_, {members_cmd}).at(0));
  if (members.type != RedisReply::Type::array) throw unexpected(*redis_, members_cmd);
  std::vector<std::string> ids;
  ids.reserve(members.elements.size());
  for (const RedisReply& m : members.elements) {
    if (m.type != RedisReply::Type::string) throw unexpected(*redis_, members_cmd);
    ids.push_back(m.str);
  }
  if (ids.empty()) return {};
  std::sort(ids.begin(), ids.end());  // so the cards come back ascending by id

  RedisCommand mget{"MGET"};
  mget.reserve(ids.size() + 1);
  for (const std::string& id : ids) mget.push_back(prefix_ + ":worker:" + id);
  const RedisReply values = std::move(run(*redis_, {mget}).at(0));
  if (values.type != RedisReply::Type::array || values.elements.size() != ids.size()) {
    throw unexpected(*redis_, mget);
  }

  std::vector<WorkerCard> cards;
  RedisCommand prune{"EVAL", k_prune_script, "0", index};
  std::vector<std::string> gone;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const RedisReply& v = values.elements[i];
    const std::string& key = mget[i + 1];
    if (v.type == RedisReply::Type::nil) {  // expired (or withdrawn, or not a string)
      prune.push_back(key);
      gone.push_back(ids[i]);
      continue;
    }
    if (v.type != RedisReply::Type::string) throw unexpected(*redis_, mget);
    try {
      cards.push_back(decode_worker_card(v.str, key, ids[i]));
    } catch (const Error&) {  // only Error(storage) naming the key: the bytes are no card
      if (corrupt) corrupt->push_back(key);
    }
  }
  if (!gone.empty()) {
    prune[2] = std::to_string(gone.size() + 1);  // numkeys: the index and the card keys
    prune.insert(prune.end(), gone.begin(), gone.end());
    run(*redis_, {prune});
  }
  return cards;
}

}  // namespace flux::detail
