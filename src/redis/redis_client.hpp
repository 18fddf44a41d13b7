#pragma once
// Internal: a small synchronous Redis client over hiredis — the only code that
// includes hiredis.h. Translates hiredis failures into flux::Error once, here.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "flux/error.hpp"

struct redisContext;

namespace flux::detail {

/// Where a Redis server is and how to log in. `display()` never shows the password.
struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;
  std::string password;
  int db = 0;

  /// "host:port" ("[v6 address]:port"). parse_redis_url accepts only host names and IP
  /// addresses as hosts, so no part of a password can end up here.
  std::string display() const {
    return (host.find(':') == std::string::npos ? host : "[" + host + "]") + ":" +
           std::to_string(port);
  }
};

/// Parses `redis://[user:password@]host:port[/db]`. Without a password in the URL, the
/// FLUX_REDIS_PASSWORD environment variable is used, if set. Throws Error(invalid_argument)
/// naming the problem; the message quotes no part of the URL, so never the password.
RedisAddress parse_redis_url(std::string_view url);

/// A Redis reply, copied out of hiredis.
struct RedisReply {
  enum class Type { string, array, integer, nil, status, error } type = Type::nil;
  std::string str;  // string, status, error
  long long integer = 0;
  std::vector<RedisReply> elements;
};

/// One command: its arguments, binary-safe.
using RedisCommand = std::vector<std::string>;

/// A connection that reconnects (re-sending AUTH and SELECT) after I/O failures.
/// Thread-safe: calls are serialised.
class RedisConnection {
 public:
  RedisConnection(RedisAddress address, std::chrono::milliseconds io_timeout,
                  std::chrono::milliseconds retry_deadline);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  /// Sends `commands` pipelined and returns their replies in order. After an I/O failure
  /// the whole batch is sent again on a new connection, until `retry_deadline` has passed
  /// since the first failure; then throws Error(storage) naming the address and the cause.
  /// So every command in a batch must be safe to apply twice. Error replies are returned,
  /// not thrown.
  std::vector<RedisReply> execute(const std::vector<RedisCommand>& commands);

  const RedisAddress& address() const noexcept { return address_; }

 private:
  void connect();  // throws Error(storage) on failure
  void disconnect() noexcept;
  bool try_execute(const std::vector<RedisCommand>& commands, std::vector<RedisReply>& replies,
                   std::string& io_error);

  const RedisAddress address_;
  const std::chrono::milliseconds io_timeout_;
  const std::chrono::milliseconds retry_deadline_;
  std::mutex mu_;
  redisContext* ctx_ = nullptr;
};

}  // namespace flux::detail
