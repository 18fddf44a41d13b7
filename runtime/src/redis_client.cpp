#include "redis_client.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <thread>

namespace flux::detail {

RedisAddress parse_redis_url(std::string_view url) {
  constexpr std::string_view scheme = "redis://";
  auto fail = [](const std::string& why) -> RedisAddress {
    throw Error(Errc::invalid_argument, "bad redis store URL: " + why +
                                            " (expected redis://[user:password@]host:port[/db])");
  };
  if (url.substr(0, scheme.size()) != scheme) return fail("it does not start with redis://");
  std::string_view rest = url.substr(scheme.size());
  RedisAddress a;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (auto colon = cred.find(':'); colon != std::string_view::npos) {
      a.user = std::string(cred.substr(0, colon));
      a.password = std::string(cred.substr(colon + 1));
    } else {
      a.password = std::string(cred);  // redis://password@host (no user)
    }
  }
  std::string_view hostport = rest;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    std::string db(rest.substr(slash + 1));
    if (!db.empty()) {
      char* end = nullptr;
      long n = std::strtol(db.c_str(), &end, 10);
      if (*end || n < 0 || n > 1000000) return fail("database \"" + db + "\" is not a number");
      a.db = static_cast<int>(n);
    }
  }
  if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    std::string port(hostport.substr(colon + 1));
    char* end = nullptr;
    long n = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end || n <= 0 || n > 65535)
      return fail("port \"" + port + "\" is invalid");
    a.port = static_cast<int>(n);
    hostport = hostport.substr(0, colon);
  }
  if (hostport.empty()) return fail("the host is empty");
  a.host = std::string(hostport);
  if (a.password.empty()) {
    if (const char* env = std::getenv("FLUX_REDIS_PASSWORD")) a.password = env;
  }
  return a;
}

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000),
                 static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

RedisReply copy_reply(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::string;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::array;
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::integer;
      break;
    case REDIS_REPLY_NIL:
      out.type = RedisReply::Type::nil;
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::status;
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::error;
      break;
  }
  if (r->str) out.str.assign(r->str, r->len);
  out.integer = r->integer;
  out.elements.reserve(r->elements);
  for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(copy_reply(r->element[i]));
  return out;
}

// Runs one command synchronously on `c`; returns the reply or nullopt on an I/O error.
std::optional<RedisReply> command(redisContext* c, const RedisCommand& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (!r) return std::nullopt;
  RedisReply out = copy_reply(r);
  freeReplyObject(r);
  return out;
}

}  // namespace

RedisConnection::RedisConnection(RedisAddress address, std::chrono::milliseconds io_timeout,
                                 std::chrono::milliseconds retry_deadline)
    : address_(std::move(address)), io_timeout_(io_timeout), retry_deadline_(retry_deadline) {
  connect();
}

RedisConnection::~RedisConnection() { disconnect(); }

void RedisConnection::disconnect() noexcept {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
}

void RedisConnection::connect() {
  disconnect();
  const std::string where = "redis at " + address_.display();
  redisContext* c =
      redisConnectWithTimeout(address_.host.c_str(), address_.port, to_timeval(io_timeout_));
  if (!c) throw Error(Errc::storage, "cannot reach " + where + ": out of memory");
  if (c->err) {
    std::string cause = c->errstr;
    redisFree(c);
    throw Error(Errc::storage, "cannot reach " + where + ": " + cause);
  }
  redisSetTimeout(c, to_timeval(io_timeout_));
  auto check = [&](const RedisCommand& cmd, const char* what) {
    auto r = command(c, cmd);
    if (!r) {
      std::string cause = c->errstr;
      redisFree(c);
      throw Error(Errc::storage, "cannot reach " + where + ": " + cause);
    }
    if (r->type == RedisReply::Type::error) {
      redisFree(c);
      // The server's text (e.g. "WRONGPASS invalid username-password pair") never echoes
      // the password; we do not either.
      throw Error(Errc::storage, where + ": " + what + " failed: " + r->str);
    }
  };
  if (!address_.password.empty()) {
    if (address_.user.empty()) {
      check({"AUTH", address_.password}, "authentication");
    } else {
      check({"AUTH", address_.user, address_.password}, "authentication");
    }
  }
  if (address_.db != 0) check({"SELECT", std::to_string(address_.db)}, "SELECT of the database");
  check({"PING"}, "PING");
  ctx_ = c;
}

bool RedisConnection::try_execute(const std::vector<RedisCommand>& commands,
                                  std::vector<RedisReply>& replies, std::string& io_error) {
  replies.clear();
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& cmd : commands) {
    argv.clear();
    lens.clear();
    for (const auto& a : cmd) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
        REDIS_OK) {
      io_error = ctx_->errstr;
      return false;
    }
  }
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* r = nullptr;
    if (redisGetReply(ctx_, &r) != REDIS_OK || !r) {
      io_error = ctx_->errstr;
      return false;
    }
    replies.push_back(copy_reply(static_cast<redisReply*>(r)));
    freeReplyObject(r);
  }
  return true;
}

std::vector<RedisReply> RedisConnection::execute(const std::vector<RedisCommand>& commands) {
  std::lock_guard lock(mu_);
  std::vector<RedisReply> replies;
  if (commands.empty()) return replies;
  const auto deadline = std::chrono::steady_clock::now() + retry_deadline_;
  std::string cause;
  auto backoff = std::chrono::milliseconds(10);
  for (;;) {
    if (ctx_) {
      if (try_execute(commands, replies, cause)) return replies;
      disconnect();  // after an I/O error the context is unusable
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    try {
      connect();
      continue;
    } catch (const Error& e) {
      cause = e.what();
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
    if (std::chrono::steady_clock::now() >= deadline) break;
  }
  throw Error(Errc::storage, "redis at " + address_.display() + " unavailable for " +
                                 std::to_string(retry_deadline_.count()) + " ms: " + cause);
}

}  // namespace flux::detail
