#include "redis/redis_client.hpp"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

namespace flux::detail {

RedisAddress parse_redis_url(std::string_view url) {
  // No message below quotes any part of the URL: a typo can move the password anywhere
  // (into what looks like the host, the port or the database), and it must never be shown.
  constexpr std::string_view scheme = "redis://";
  auto fail = [](const std::string& why) -> RedisAddress {
    throw Error(Errc::invalid_argument, "bad redis store URL: " + why +
                                            " (expected redis://[user:password@]host:port[/db])");
  };
  auto digits = [](std::string_view s) {
    return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
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
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      if (!digits(db) || std::stol(std::string(db)) > 1000000) {
        return fail("the database is not a number from 0 to 1000000");
      }
      a.db = static_cast<int>(std::stol(std::string(db)));
    }
  }
  if (!hostport.empty() && hostport.front() == '[') {  // [IPv6 address]:port
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return fail("the host has '[' without ']'");
    a.host = std::string(hostport.substr(1, close - 1));
    hostport = hostport.substr(close + 1);
    if (!hostport.empty() && hostport.front() != ':') return fail("text follows the host's ']'");
    if (a.host.empty() ||
        a.host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos) {
      return fail("the host is not an IPv6 address");
    }
  } else {
    auto colon = hostport.find(':');
    a.host = std::string(hostport.substr(0, colon));
    hostport = colon == std::string_view::npos ? std::string_view{} : hostport.substr(colon);
    if (a.host.empty()) return fail("the host is empty");
    // A host name or IPv4 address; anything else (a second ':', say) is a malformed URL.
    if (a.host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789.-_") != std::string::npos) {
      return fail("the host is not a host name or an IP address");
    }
  }
  if (!hostport.empty()) {  // ":port"
    std::string_view port = hostport.substr(1);
    if (!digits(port) || std::stol(std::string(port)) < 1 || std::stol(std::string(port)) > 65535) {
      return fail("the port is not a number from 1 to 65535");
    }
    a.port = static_cast<int>(std::stol(std::string(port)));
  }
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

// A TCP connection to host:port, blocking, with TCP_NODELAY and close-on-exec set
// atomically (SOCK_CLOEXEC: no window in which a fork in another thread could inherit it).
// Returns the descriptor, or -1 with `cause` set (the strerror text, as hiredis gives it).
int open_socket(const std::string& host, int port, std::chrono::milliseconds timeout,
                std::string& cause) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    cause = ::gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = found; ai && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      cause = std::strerror(errno);
      continue;
    }
    int err = ::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
    if (err == EINPROGRESS) {  // wait for it, at most `timeout`
      pollfd p{fd, POLLOUT, 0};
      int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
      socklen_t len = sizeof err;
      if (ready == 0) {
        err = ETIMEDOUT;
      } else if (ready < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
      }
    }
    if (err != 0) {
      cause = std::strerror(err);
      ::close(fd);
      fd = -1;
      continue;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);  // hiredis blocks, with timeouts
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ::freeaddrinfo(found);
  return fd;
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
  // hiredis 0.14 opens its sockets without close-on-exec, so a child process started by a
  // node (popen, fork+exec) would inherit this authenticated connection: open the socket
  // here, close-on-exec from the start, and hand it to hiredis.
  std::string cause;
  const int fd = open_socket(address_.host, address_.port, io_timeout_, cause);
  if (fd < 0) throw Error(Errc::storage, "cannot reach " + where + ": " + cause);
  redisContext* c = redisConnectFd(fd);  // owns fd from here on, even on failure
  if (!c) {
    ::close(fd);
    throw Error(Errc::storage, "cannot reach " + where + ": out of memory");
  }
  if (c->err) {
    cause = c->errstr;
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
