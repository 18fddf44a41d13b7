#pragma once
// Test support: a private redis-server on a free loopback port, in its own temporary
// directory, stopped (and the directory removed) when the object is destroyed —
// the hiredis test.sh model, so that every test binary owns its server.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace flux::test {

/// A port the kernel considers free right now on `host` (an IPv4 address).
inline int free_port(const std::string& host = "127.0.0.1") {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    throw std::runtime_error("free_port: not an IPv4 address: " + host);
  }
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("free_port: bind failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// Runs `command` through the shell; returns its standard output.
inline std::string shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) throw std::runtime_error("popen failed: " + command);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

class RedisServer {
 public:
  /// `durable`: append-only file with fsync on every write, so that data survives a
  /// SIGKILL and restart (for fault tests); otherwise nothing is written to disk.
  /// `bind`: the address to listen on. Anything but 127.0.0.1 (e.g. the gateway address of
  /// tests/support/netns.hpp, for workers in other network namespaces) turns protected mode
  /// off, without which Redis refuses clients from other addresses when it has no password.
  explicit RedisServer(std::string password = {}, bool durable = false,
                       std::string bind = "127.0.0.1")
      : password_(std::move(password)), durable_(durable), bind_(std::move(bind)) {
    char tmpl[] = "/tmp/flux-redis-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    port_ = free_port(bind_);
    start();
  }
  ~RedisServer() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  /// redis://<bind address>:<port> (with the password, if any).
  std::string url() const {
    return "redis://" + (password_.empty() ? "" : ":" + password_ + "@") + bind_ + ":" +
           std::to_string(port_);
  }
  /// The address it listens on.
  const std::string& bind_address() const { return bind_; }

  void start() {
    if (pid_ > 0) return;
    std::vector<std::string> args{"redis-server",
                                  "--port",
                                  std::to_string(port_),
                                  "--bind",
                                  bind_,
                                  "--dir",
                                  dir_,
                                  "--save",
                                  "",
                                  "--appendonly",
                                  durable_ ? "yes" : "no",
                                  "--logfile",
                                  dir_ + "/redis.log"};
    if (durable_) {
      args.push_back("--appendfsync");
      args.push_back("always");
    }
    if (bind_ != "127.0.0.1") {
      args.push_back("--protected-mode");
      args.push_back("no");
    }
    if (!password_.empty()) {
      args.push_back("--requirepass");
      args.push_back(password_);
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp("redis-server", argv.data());
      std::_Exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (cli("PING").find("PONG") != std::string::npos) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("redis-server did not answer on port " + std::to_string(port_) +
                             " (is redis-server installed?)");
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  /// Freezes the server (SIGSTOP): connections stay open, nothing is answered — a hung
  /// host — until `thaw()`.
  void freeze() const { ::kill(pid_, SIGSTOP); }
  void thaw() const { ::kill(pid_, SIGCONT); }

  /// Runs redis-cli against this server with `args` (shell-quoted by the caller).
  std::string cli(const std::string& args) const {
    std::string auth = password_.empty() ? "" : " -a '" + password_ + "' --no-auth-warning";
    return shell("redis-cli -h " + bind_ + " -p " + std::to_string(port_) + auth + " " + args +
                 " 2>&1");
  }

 private:
  std::string password_;
  bool durable_ = false;
  std::string bind_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

/// One private server for a whole test program, started on first use.
inline RedisServer& shared_redis() {
  static RedisServer server;
  return server;
}

/// A key prefix no other test of the program uses (`stem` plus a counter), so that tests
/// sharing one server never see each other's runs.
inline std::string unique_prefix(const std::string& stem) {
  static std::atomic<int> n{0};
  return stem + std::to_string(n++);
}

}  // namespace flux::test
