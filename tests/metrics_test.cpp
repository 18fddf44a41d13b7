// Prometheus metrics (flux/metrics.hpp), scraped over real TCP connections with a raw HTTP
// client and parsed as the text format: metric names, TYPE lines, counter values against the
// runs executed; a worker's load; a re-dispatch after a worker process is killed (real
// redis-server and worker processes, as in cluster_test). Every wait is bounded.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <flux/flux.hpp>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/cluster_nodes.hpp"
#include "support/redis_server.hpp"
#include "support/worker_process.hpp"

namespace {

using namespace std::chrono_literals;

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

/// Sends `request` as is to 127.0.0.1:`port` and reads until the server closes (at most 5 s).
std::string raw_exchange(std::uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
  }
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      ::close(fd);
      throw std::runtime_error("no complete answer within 5 s; got: " + out);
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

HttpResponse parse_response(const std::string& raw) {
  HttpResponse r;
  const auto head_end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos) {
    throw std::runtime_error("not an HTTP response: " + raw.substr(0, 200));
  }
  r.status = std::stoi(raw.substr(9, 3));
  std::istringstream head(raw.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
  }
  r.body = raw.substr(head_end + 4);
  return r;
}

HttpResponse get(std::uint16_t port, const std::string& path, const std::string& method = "GET") {
  return parse_response(raw_exchange(
      port, method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: flux-test\r\n\r\n"));
}

/// A scrape, parsed: every sample by its series ("name" or "name{labels}" as written), and
/// each family's TYPE. Throws if a sample's family has no TYPE line before it, a line is
/// malformed, or a series appears twice.
struct Scrape {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;

  double at(const std::string& series) const {
    auto it = samples.find(series);
    if (it == samples.end()) throw std::runtime_error("no series " + series + " in the scrape");
    return it->second;
  }
};

std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = name.substr(0, name.size() - s.size());
      auto it = types.find(base);
      if (it != types.end() && it->second == "histogram") return base;
    }
  }
  return name;
}

Scrape parse_metrics(const std::string& text) {
  Scrape s;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      if (s.types.count(name)) throw std::runtime_error("TYPE given twice for " + name);
      s.types[name] = type;
      continue;
    }
    if (line[0] == '#') continue;  // HELP
    const auto space = line.rfind(' ');
    if (space == std::string::npos) throw std::runtime_error("malformed line: " + line);
    const std::string series = line.substr(0, space);
    const std::string name = series.substr(0, series.find('{'));
    if (name.rfind("flux_", 0) != 0) throw std::runtime_error("not a flux_ metric: " + line);
    if (!s.types.count(family_of(name, s.types))) {
      throw std::runtime_error("sample before its TYPE line: " + line);
    }
    if (!s.samples.emplace(series, std::stod(line.substr(space + 1))).second) {
      throw std::runtime_error("series given twice: " + series);
    }
  }
  return s;
}

Scrape scrape(std::uint16_t port) {
  HttpResponse r = get(port, "/metrics");
  if (r.status != 200) throw std::runtime_error("GET /metrics: " + std::to_string(r.status));
  return parse_metrics(r.body);
}

/// The buckets of histogram `name`{`labels`} are cumulative and end with +Inf == _count.
void expect_consistent_histogram(const Scrape& s, const std::string& name,
                                 const std::string& labels) {
  const std::string sep = labels.empty() ? "" : ",";
  // By bound (the map orders the series as text).
  std::vector<std::pair<double, double>> by_bound;
  for (const auto& [series, value] : s.samples) {
    const std::string head = name + "_bucket{" + labels + sep + "le=\"";
    if (series.rfind(head, 0) != 0) continue;
    const std::string bound = series.substr(head.size(), series.size() - head.size() - 2);
    by_bound.emplace_back(bound == "+Inf" ? 1e300 : std::stod(bound), value);
  }
  std::sort(by_bound.begin(), by_bound.end());
  EXPECT_GT(by_bound.size(), 2u) << name << "{" << labels << "}";
  if (!by_bound.empty()) {
    EXPECT_EQ(by_bound.back().first, 1e300) << "no +Inf bucket";
  }
  for (std::size_t i = 1; i < by_bound.size(); ++i) {
    EXPECT_GE(by_bound[i].second, by_bound[i - 1].second) << name << " le=" << by_bound[i].first;
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  ASSERT_FALSE(by_bound.empty());
  EXPECT_EQ(by_bound.back().second, s.at(name + "_count" + braces));
}

/// Scrapes until `done(scrape)` holds, at most `bound`; returns the last scrape.
template <class F>
Scrape scrape_until(std::uint16_t port, F done, std::chrono::milliseconds bound = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  Scrape s = scrape(port);
  while (!done(s) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    s = scrape(port);
  }
  return s;
}

TEST(Metrics, ARuntimeCountsItsRunsAndStepsAndServesThemAsPrometheusText) {
  flux::Config config;
  config.store = "memory";
  config.metrics_listen = "127.0.0.1:0";
  flux::Runtime rt(config);
  ASSERT_NE(rt.metrics_port(), 0);
  auto check = flux::node("check", [](std::int64_t x) {
    if (x < 0) throw std::runtime_error("negative input");
    return x;
  });
  auto twice = flux::node("twice", [](std::int64_t x) { return 2 * x; });
  auto pipeline = check | twice;
  for (std::int64_t x : {1, 2, 3}) ASSERT_TRUE(rt.run(pipeline, x).ok());
  EXPECT_FALSE(rt.run(pipeline, std::int64_t{-1}).ok());

  HttpResponse r = get(rt.metrics_port(), "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.headers["content-length"], std::to_string(r.body.size()));
  Scrape s = parse_metrics(r.body);

  EXPECT_EQ(s.types["flux_runs_started_total"], "counter");
  EXPECT_EQ(s.types["flux_runs_completed_total"], "counter");
  EXPECT_EQ(s.types["flux_runs_failed_total"], "counter");
  EXPECT_EQ(s.types["flux_steps_in_flight"], "gauge");
  EXPECT_EQ(s.types["flux_step_duration_seconds"], "histogram");
  EXPECT_EQ(s.types["flux_step_failures_total"], "counter");
  EXPECT_EQ(s.types["flux_step_redispatches_total"], "counter");
  EXPECT_EQ(s.types["flux_persistence_queue_depth"], "gauge");
  EXPECT_EQ(s.types["flux_store_write_seconds"], "histogram");
  EXPECT_EQ(s.types["flux_store_writes_total"], "counter");
  EXPECT_EQ(s.types["flux_worker_steps_in_flight"], "gauge");
  EXPECT_EQ(s.types["flux_worker_capacity"], "gauge");

  EXPECT_EQ(s.at("flux_runs_started_total"), 4);
  EXPECT_EQ(s.at("flux_runs_completed_total"), 3);
  EXPECT_EQ(s.at("flux_runs_failed_total"), 1);
  EXPECT_EQ(s.at("flux_steps_in_flight"), 0);
  EXPECT_EQ(s.at("flux_step_duration_seconds_count{node=\"check\"}"), 4);
  EXPECT_EQ(s.at("flux_step_duration_seconds_count{node=\"twice\"}"), 3);
  EXPECT_EQ(s.at("flux_step_failures_total{node=\"check\"}"), 1);
  EXPECT_EQ(s.at("flux_step_failures_total{node=\"twice\"}"), 0);
  EXPECT_GT(s.at("flux_step_duration_seconds_sum{node=\"check\"}"), 0);
  expect_consistent_histogram(s, "flux_step_duration_seconds", "node=\"check\"");
  expect_consistent_histogram(s, "flux_step_duration_seconds", "node=\"twice\"");
  EXPECT_EQ(s.at("flux_step_redispatches_total"), 0);
  // Each run wrote records (its start, 1-2 steps, its end) through the persistence actor.
  EXPECT_GE(s.at("flux_store_writes_total"), 4 * 3);
  EXPECT_GE(s.at("flux_store_write_seconds_count"), 1);
  expect_consistent_histogram(s, "flux_store_write_seconds", "");
  s = scrape_until(rt.metrics_port(),
                   [](const Scrape& x) { return x.at("flux_persistence_queue_depth") == 0; });
  EXPECT_EQ(s.at("flux_persistence_queue_depth"), 0);
}

TEST(Metrics, AStepInFlightIsSeenWhileItRuns) {
  flux::Config config;
  config.store = "memory";
  config.metrics_listen = "127.0.0.1:0";
  flux::Runtime rt(config);
  std::atomic<bool> release{false};
  auto wait = flux::node("wait_for_release", [&release](std::int64_t x) {
                const auto deadline = std::chrono::steady_clock::now() + 10s;
                while (!release && std::chrono::steady_clock::now() < deadline) {
                  std::this_thread::sleep_for(5ms);
                }
                return x;
              }).blocking();
  auto handle = rt.start(flux::Pipeline(wait), std::int64_t{7});
  Scrape s = scrape_until(rt.metrics_port(),
                          [](const Scrape& x) { return x.at("flux_steps_in_flight") == 1; });
  EXPECT_EQ(s.at("flux_steps_in_flight"), 1);
  EXPECT_EQ(s.at("flux_runs_started_total"), 1);
  EXPECT_EQ(s.at("flux_runs_completed_total"), 0);
  release = true;
  auto r = handle.wait_for(10s);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->ok());
  s = scrape(rt.metrics_port());
  EXPECT_EQ(s.at("flux_steps_in_flight"), 0);
  EXPECT_EQ(s.at("flux_runs_completed_total"), 1);
  EXPECT_EQ(s.at("flux_step_duration_seconds_count{node=\"wait_for_release\"}"), 1);
}

TEST(Metrics, TheEndpointAnswersOnlyMetricsAndBadRequestsPlainly) {
  flux::MetricsServer server("127.0.0.1:0");
  const std::uint16_t port = server.port();
  ASSERT_NE(port, 0);
  EXPECT_EQ(get(port, "/nope").status, 404);
  EXPECT_EQ(get(port, "/metrics?x=1").status, 200);
  HttpResponse head = get(port, "/metrics", "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  HttpResponse post = get(port, "/metrics", "POST");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers["allow"], "GET, HEAD");
  HttpResponse garbage = parse_response(raw_exchange(port, "hello\r\n\r\n"));
  EXPECT_EQ(garbage.status, 400);
  EXPECT_EQ(garbage.body, "malformed request line\n");
  // A request head that never ends: refused once 8 KiB have come.
  HttpResponse huge =
      parse_response(raw_exchange(port, "GET /metrics HTTP/1.1\r\nX: " + std::string(10000, 'a')));
  EXPECT_EQ(huge.status, 400);
  EXPECT_EQ(huge.body, "incomplete or oversized request\n");
}

TEST(Metrics, ASilentClientDoesNotStopTheNextScrape) {
  flux::MetricsServer server("127.0.0.1:0");
  const int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  // Served once the silent one's 2 s are up (raw_exchange waits up to 5 s).
  EXPECT_EQ(get(server.port(), "/metrics").status, 200);
  ::close(silent);
}

TEST(Metrics, ABadListenAddressIsRefusedNamingIt) {
  auto message = [](const std::string& listen) {
    try {
      flux::MetricsServer server(listen);
    } catch (const flux::Error& e) {
      EXPECT_EQ(e.code(), flux::Errc::invalid_argument);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message("nonsense"),
            "metrics: cannot listen on 'nonsense': no port (expected host:port, e.g. "
            "127.0.0.1:9464, or [::1]:9464)");
  EXPECT_EQ(message("127.0.0.1:99999"),
            "metrics: cannot listen on '127.0.0.1:99999': the port must be a number from 0 to "
            "65535 (expected host:port, e.g. 127.0.0.1:9464, or [::1]:9464)");
  EXPECT_EQ(message(":9464"),
            "metrics: cannot listen on ':9464': no host (expected host:port, e.g. "
            "127.0.0.1:9464, or [::1]:9464)");
  EXPECT_EQ(message("[::1:9464"),
            "metrics: cannot listen on '[::1:9464': malformed IPv6 address (expected host:port, "
            "e.g. 127.0.0.1:9464, or [::1]:9464)");
  EXPECT_NE(message("no-such-host.invalid:9464")
                .find("metrics: cannot listen on "
                      "'no-such-host.invalid:9464': "),
            std::string::npos);
  flux::MetricsServer taken("127.0.0.1:0");
  const std::string at = "127.0.0.1:" + std::to_string(taken.port());
  EXPECT_EQ(message(at), "metrics: cannot listen on '" + at + "': Address already in use");
  // Through Config: the Runtime is not created.
  flux::Config config;
  config.store = "memory";
  config.metrics_listen = at;
  EXPECT_THROW(flux::Runtime rt(config), flux::Error);
}

TEST(Metrics, LabelValuesAreEscaped) {
  flux::Config config;
  config.store = "memory";
  config.metrics_listen = "127.0.0.1:0";
  flux::Runtime rt(config);
  auto odd = flux::node("say \"hi\"\\now", [](std::int64_t x) { return x; });
  ASSERT_TRUE(rt.run(flux::Pipeline(odd), std::int64_t{1}).ok());
  Scrape s = scrape(rt.metrics_port());
  EXPECT_EQ(s.at("flux_step_duration_seconds_count{node=\"say \\\"hi\\\"\\\\now\"}"), 1);
}

// Cluster: a driver and a worker (in this process) with metrics, a worker process killed.
class ClusterMetrics : public ::testing::Test {
 protected:
  std::string prefix = flux::test::unique_prefix("metrics");

  flux::Config driver_config() {
    flux::Config config;
    config.store = flux::test::shared_redis().url();
    config.key_prefix = prefix;
    config.cluster.enabled = true;
    config.metrics_listen = "127.0.0.1:0";
    return config;
  }
};

TEST_F(ClusterMetrics, AWorkerServesItsLoadAndTheDriverCountsARedispatch) {
  ::setenv("FLUX_TEST_SLOW_MS", "1000", 1);  // worker B's, in this process (before any thread)
  // Worker A: a process of its own, killed while it executes the slow step.
  auto a = std::make_unique<flux::test::WorkerProcess>(
      FLUX_CLUSTER_NODE, "A",
      std::vector<std::string>{"--store", flux::test::shared_redis().url(), "--prefix", prefix,
                               "--id", "A", "--nodes", "slow"},
      std::vector<std::string>{"FLUX_TEST_SLOW_MS=3000"});
  flux::Runtime rt(driver_config());
  auto handle = rt.start(flux::Pipeline(flux::test::slow_node()), std::int64_t{10});
  Scrape s = scrape_until(rt.metrics_port(),
                          [](const Scrape& x) { return x.at("flux_steps_in_flight") == 1; });
  ASSERT_EQ(s.at("flux_steps_in_flight"), 1);
  std::this_thread::sleep_for(500ms);  // placed on A, the only worker (discovery: 100 ms)
  // Worker B: in this process, serving its metrics too (the same process-wide numbers).
  flux::Worker b(flux::test::cluster_registry("slow"), {.store = flux::test::shared_redis().url(),
                                                        .key_prefix = prefix,
                                                        .capacity = 3,
                                                        .id = "B",
                                                        .metrics_listen = "127.0.0.1:0"});
  ASSERT_NE(b.metrics_port(), 0);
  s = scrape(b.metrics_port());
  EXPECT_EQ(s.at("flux_worker_capacity{worker=\"B\"}"), 3);
  EXPECT_EQ(s.at("flux_worker_steps_in_flight{worker=\"B\"}"), 0);
  std::this_thread::sleep_for(300ms);  // the driver discovers B (every 100 ms)
  a->signal(SIGKILL);
  // The step is placed again, on B: its load shows it.
  s = scrape_until(b.metrics_port(), [](const Scrape& x) {
    return x.at("flux_worker_steps_in_flight{worker=\"B\"}") == 1;
  });
  EXPECT_EQ(s.at("flux_worker_steps_in_flight{worker=\"B\"}"), 1);
  auto r = handle.wait_for(20s);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->ok()) << r->error->message;
  EXPECT_EQ(r->output.as_int(), 11);
  s = scrape(rt.metrics_port());
  EXPECT_EQ(s.at("flux_step_redispatches_total"), 1);
  EXPECT_EQ(s.at("flux_runs_completed_total"), 1);
  EXPECT_EQ(s.at("flux_steps_in_flight"), 0);
  // The driver saw two attempts of "slow" (the lost one is a failure); B executed one.
  EXPECT_EQ(s.at("flux_step_duration_seconds_count{node=\"slow\"}"), 2);
  EXPECT_EQ(s.at("flux_step_failures_total{node=\"slow\"}"), 1);
  EXPECT_EQ(s.at("flux_worker_step_duration_seconds_count{node=\"slow\"}"), 1);
  EXPECT_GE(s.at("flux_worker_step_duration_seconds_sum{node=\"slow\"}"), 1.0);
  expect_consistent_histogram(s, "flux_worker_step_duration_seconds", "node=\"slow\"");
  EXPECT_EQ(s.at("flux_worker_steps_in_flight{worker=\"B\"}"), 0);
}

}  // namespace
