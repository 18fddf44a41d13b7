// The virtual-hosts harness (tests/support/netns.hpp) that the cluster tests stand on:
// hosts reach the root namespace and each other, a link cut and a firewall cut really cut
// a host off (and are undone), and nothing is left behind. Needs root, iproute2, nftables
// and redis-server; without them these tests fail, they do not skip.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "support/netns.hpp"
#include "support/redis_server.hpp"

namespace {

using namespace std::chrono_literals;
using flux::test::VirtualHosts;
using Clock = std::chrono::steady_clock;

constexpr int kRedisPort = 6379;  // every host has its own port space

#define ASSERT_HOSTS_AVAILABLE()                                                           \
  do {                                                                                     \
    std::string why;                                                                       \
    ASSERT_TRUE(VirtualHosts::available(&why))                                             \
        << "virtual hosts need root, iproute2 and nftables (the cluster tests cannot run " \
           "without them): "                                                               \
        << why;                                                                            \
  } while (0)

struct Probe {
  bool connected = false;
  int error = 0;  // errno of a failed connect; 0 if it timed out
  std::chrono::milliseconds took{0};
};

/// One TCP connect from this (the root) namespace, given up after `limit`.
Probe tcp_probe(const std::string& ip, int port, std::chrono::milliseconds limit) {
  Probe p;
  auto start = Clock::now();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (rc == 0) {
    p.connected = true;
  } else if (errno != EINPROGRESS) {
    p.error = errno;
  } else {
    pollfd pfd{fd, POLLOUT, 0};
    if (::poll(&pfd, 1, static_cast<int>(limit.count())) == 1) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      p.connected = err == 0;
      p.error = err;
    }
  }
  ::close(fd);
  p.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return p;
}

/// Connects again and again (each try up to 500 ms) until one succeeds or `limit` is over.
bool reachable_within(const std::string& ip, int port, std::chrono::milliseconds limit) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (tcp_probe(ip, port, 500ms).connected) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::string describe(const Probe& p) {
  if (p.connected) return "connected after " + std::to_string(p.took.count()) + " ms";
  return (p.error ? std::string("failed (") + std::strerror(p.error) + ")" : "timed out") +
         " after " + std::to_string(p.took.count()) + " ms";
}

/// A redis-server in host i on its own address, answering before this returns.
pid_t start_redis(VirtualHosts& hosts, int i) {
  std::string log = ::testing::TempDir() + "netns-redis-" + hosts.netns(i) + ".log";
  pid_t pid =
      hosts.spawn(i,
                  {"redis-server", "--port", std::to_string(kRedisPort), "--bind", hosts.ip(i),
                   "--save", "", "--appendonly", "no", "--protected-mode", "no"},
                  {}, log);
  if (!reachable_within(hosts.ip(i), kRedisPort, 10s))
    throw std::runtime_error("redis-server in host " + std::to_string(i) + " not reachable; log " +
                             log + ": " + flux::test::shell("tail -5 " + log));
  return pid;
}

std::string redis_ping_from(VirtualHosts& hosts, int from, const std::string& ip, int port) {
  flux::test::CommandResult r =
      flux::test::run_argv({"ip", "netns", "exec", hosts.netns(from), "timeout", "3", "redis-cli",
                            "-h", ip, "-p", std::to_string(port), "ping"},
                           10s);
  return r.out + r.err;
}

std::set<std::string> netns_names() {
  std::set<std::string> names;
  std::istringstream in(flux::test::run_checked({"ip", "netns", "list"}));
  for (std::string line; std::getline(in, line);) {
    auto space = line.find(' ');
    names.insert(line.substr(0, space));
  }
  return names;
}

std::set<std::string> root_links() {
  std::set<std::string> names;
  std::istringstream in(flux::test::run_checked({"ip", "-o", "link", "show"}));
  for (std::string line; std::getline(in, line);) {
    // "7: name@peer: <...>" or "7: name: <...>"
    auto start = line.find(": ");
    if (start == std::string::npos) continue;
    start += 2;
    auto end = line.find_first_of("@:", start);
    names.insert(line.substr(start, end - start));
  }
  return names;
}

TEST(NetnsHarness, AvailableAsRoot) { ASSERT_HOSTS_AVAILABLE(); }

TEST(NetnsHarness, HostsReachTheRootNamespaceAndEachOther) {
  ASSERT_HOSTS_AVAILABLE();
  VirtualHosts hosts(2);
  EXPECT_EQ(hosts.ip(0).substr(0, 3), "10.");
  EXPECT_EQ(hosts.gateway_ip().substr(hosts.gateway_ip().size() - 4), ".254");
  EXPECT_LE(hosts.gateway_device().size(), 15u);

  start_redis(hosts, 0);
  Probe from_root = tcp_probe(hosts.ip(0), kRedisPort, 2s);
  EXPECT_TRUE(from_root.connected) << describe(from_root);
  EXPECT_NE(redis_ping_from(hosts, 1, hosts.ip(0), kRedisPort).find("PONG"), std::string::npos);
  // Each host is a network stack of its own, with its own address on eth0.
  EXPECT_NE(hosts.exec(1, "ip -4 -o addr show dev eth0").find(hosts.ip(1) + "/24"),
            std::string::npos);

  // A server of the test process, on the gateway address, is reached from a host.
  int port = flux::test::free_port();
  std::string port_arg = std::to_string(port), bind_arg = hosts.gateway_ip();
  pid_t root_redis = ::fork();
  if (root_redis == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execlp("redis-server", "redis-server", "--port", port_arg.c_str(), "--bind", bind_arg.c_str(),
             "--save", "", "--appendonly", "no", "--protected-mode", "no", nullptr);
    ::_exit(127);
  }
  ASSERT_GT(root_redis, 0);
  bool up = reachable_within(hosts.gateway_ip(), port, 10s);
  std::string ping = redis_ping_from(hosts, 1, hosts.gateway_ip(), port);
  ::kill(root_redis, SIGKILL);
  ::waitpid(root_redis, nullptr, 0);
  ASSERT_TRUE(up) << "redis-server on " << hosts.gateway_ip() << ":" << port;
  EXPECT_NE(ping.find("PONG"), std::string::npos) << ping;
}

TEST(NetnsHarness, LinkDownCutsAHostOffAndLinkUpRestoresIt) {
  ASSERT_HOSTS_AVAILABLE();
  VirtualHosts hosts(2);
  start_redis(hosts, 0);

  hosts.link_down(0);
  Probe cut = tcp_probe(hosts.ip(0), kRedisPort, 1s);
  EXPECT_FALSE(cut.connected) << describe(cut);
  EXPECT_LT(cut.took, 3s) << describe(cut);
  std::string ping = redis_ping_from(hosts, 1, hosts.ip(0), kRedisPort);
  EXPECT_EQ(ping.find("PONG"), std::string::npos) << ping;
  std::cout << "[ info ] root -> host 0 after link_down: " << describe(cut) << "\n";

  hosts.link_up(0);
  auto start = Clock::now();
  EXPECT_TRUE(reachable_within(hosts.ip(0), kRedisPort, 5s));
  std::cout << "[ info ] reachable again "
            << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()
            << " ms after link_up\n";
  ping = redis_ping_from(hosts, 1, hosts.ip(0), kRedisPort);
  EXPECT_NE(ping.find("PONG"), std::string::npos) << ping;
  // The host's own way out (default route) is back too.
  EXPECT_NE(hosts.exec(0, "ip route show default").find(hosts.gateway_ip()), std::string::npos);
}

TEST(NetnsHarness, DropAllCutsAHostOffAndUndropRestoresIt) {
  ASSERT_HOSTS_AVAILABLE();
  VirtualHosts hosts(2);
  start_redis(hosts, 0);

  hosts.drop_all(0);
  Probe cut = tcp_probe(hosts.ip(0), kRedisPort, 1s);
  EXPECT_FALSE(cut.connected) << describe(cut);
  EXPECT_LT(cut.took, 3s) << describe(cut);
  std::string ping = redis_ping_from(hosts, 1, hosts.ip(0), kRedisPort);
  EXPECT_EQ(ping.find("PONG"), std::string::npos) << ping;
  // Loopback inside the host still works: only the network is cut, not the host.
  std::string local = hosts.exec(
      0, "timeout 3 redis-cli -h " + hosts.ip(0) + " -p " + std::to_string(kRedisPort) + " ping");
  EXPECT_NE(local.find("PONG"), std::string::npos) << local;
  std::cout << "[ info ] root -> host 0 after drop_all: " << describe(cut) << "\n";

  hosts.undrop(0);
  auto start = Clock::now();
  EXPECT_TRUE(reachable_within(hosts.ip(0), kRedisPort, 5s));
  std::cout << "[ info ] reachable again "
            << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()
            << " ms after undrop\n";
  ping = redis_ping_from(hosts, 1, hosts.ip(0), kRedisPort);
  EXPECT_NE(ping.find("PONG"), std::string::npos) << ping;
}

TEST(NetnsHarness, DestructorKillsSpawnedProcessesAndRemovesEverything) {
  ASSERT_HOSTS_AVAILABLE();
  std::vector<std::string> namespaces;
  std::string gateway;
  pid_t sleeper = -1, finished = -1;
  {
    VirtualHosts hosts(2);
    namespaces = hosts.namespaces();
    gateway = hosts.gateway_device();
    sleeper = hosts.spawn(1, {"sleep", "600"});
    finished = hosts.spawn(0, {"true"});
    int status = 0;
    ASSERT_EQ(::waitpid(finished, &status, 0), finished);  // reaped here, not by the harness
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    auto before = netns_names();
    for (auto& ns : namespaces) EXPECT_TRUE(before.count(ns)) << ns;
    EXPECT_TRUE(root_links().count(gateway)) << gateway;
    EXPECT_EQ(::kill(sleeper, 0), 0);
  }
  // Reaped by the destructor: no such process (not even a zombie) any more.
  EXPECT_EQ(::waitpid(sleeper, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_EQ(::kill(sleeper, 0), -1);
  auto after = netns_names();
  for (auto& ns : namespaces) EXPECT_FALSE(after.count(ns)) << ns << " left behind";
  EXPECT_FALSE(root_links().count(gateway)) << gateway << " left behind";
}

TEST(NetnsHarness, ConstructorFailingHalfwayRemovesWhatItMade) {
  ASSERT_HOSTS_AVAILABLE();
  // The next instance's names are predictable (stem, pid, instance digit): occupy its
  // root-namespace interface name, which is claimed after all namespaces, bridge and host
  // links exist, so the constructor fails late.
  std::string last;
  { last = VirtualHosts(1).gateway_device(); }
  std::string token =
      last.substr(0, last.size() - 2) + std::to_string((last[last.size() - 2] - '0' + 1) % 10);
  std::string blocker = token + "g";
  flux::test::run_checked({"ip", "link", "add", blocker, "type", "bridge"});
  bool threw = false;
  std::string message;
  try {
    VirtualHosts hosts(2);
  } catch (const std::runtime_error& e) {
    threw = true;
    message = e.what();
  }
  auto names = netns_names();
  auto links = root_links();
  flux::test::run_argv({"ip", "link", "del", blocker});
  ASSERT_TRUE(threw) << "expected the name " << blocker << " to be taken";
  EXPECT_NE(message.find("ip link add " + blocker), std::string::npos) << message;
  for (auto suffix : {"s", "h0", "h1"}) EXPECT_FALSE(names.count(token + suffix)) << token + suffix;
  EXPECT_TRUE(links.count(blocker)) << "the harness removed an interface it did not make";
}

TEST(NetnsHarness, TwoInstancesAtOnceDoNotCollide) {
  ASSERT_HOSTS_AVAILABLE();
  VirtualHosts a(1), b(1, "fy");
  EXPECT_NE(a.gateway_ip(), b.gateway_ip());
  EXPECT_NE(a.netns(0), b.netns(0));
  EXPECT_NE(a.gateway_device(), b.gateway_device());
  // Each instance's host has its own subnet's address.
  EXPECT_NE(a.exec(0, "ip -4 -o addr show dev eth0").find(a.ip(0)), std::string::npos);
  EXPECT_NE(b.exec(0, "ip -4 -o addr show dev eth0").find(b.ip(0)), std::string::npos);
}

}  // namespace
