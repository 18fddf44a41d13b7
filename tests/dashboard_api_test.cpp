// The dashboard's JSON API: `flux dashboard` run as a real process against a real redis-server
// holding runs that a user's binary (tests/cli_app_main.cpp) made, asked by a plain HTTP
// client (cpp-httplib's, and raw bytes on a socket where a client would tidy the request):
// every endpoint, the same documents as the CLI's --json, and bad input.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <flux/flux.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace {

using flux::test::Background;
using flux::test::run;
using Json = nlohmann::json;

const std::string k_app = FLUX_CLI_APP;
const std::string k_flux = FLUX_TOOL;
const std::string k_token = "t0ken-for-tests";
const std::string k_close = "Connection: close\r\n\r\n";

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

/// Sends `request` as raw bytes to 127.0.0.1:port; returns the whole response.
std::string raw_http(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  // Until the server closes, or the response is complete (a refused request line keeps the
  // connection open until the server's keep-alive timeout).
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
    out.append(buf, static_cast<std::size_t>(n));
    const auto end = out.find("\r\n\r\n");
    const auto length = out.find("Content-Length: ");
    if (end != std::string::npos && length != std::string::npos && length < end &&
        out.size() >= end + 4 + std::stoul(out.substr(length + 16))) {
      break;
    }
  }
  ::close(fd);
  return out;
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

int status_of(const std::string& response) {
  // "HTTP/1.1 404 Not Found"
  if (response.size() < 12) return -1;
  return std::stoi(response.substr(9, 3));
}

/// A `flux dashboard` process on a free port.
class Dashboard {
 public:
  Dashboard(const std::vector<std::string>& env, const std::string& token)
      : process_(args(token), env) {
    line_ = process_.read_line();
    const auto start = line_.find("http://127.0.0.1:");
    if (start == std::string::npos) throw std::runtime_error("no address: " + line_);
    port_ = std::stoi(line_.substr(start + 17));
  }
  int port() const { return port_; }
  const std::string& first_line() const { return line_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(15, 0);
    return c;
  }
  Background& process() { return process_; }

 private:
  static std::vector<std::string> args(const std::string& token) {
    std::vector<std::string> a{k_flux, "dashboard", "--listen", "127.0.0.1:0"};
    if (!token.empty()) a.insert(a.end(), {"--token", token});
    return a;
  }
  Background process_;
  std::string line_;
  int port_ = 0;
};

class DashboardApi : public ::testing::Test {
 protected:
  flux::test::RedisServer& redis = flux::test::shared_redis();
  std::string prefix = flux::test::unique_prefix("dashapi");
  std::vector<std::string> env() const {
    return {"FLUX_STORE=" + redis.url(), "FLUX_KEY_PREFIX=" + prefix};
  }
  std::string make_run(const std::string& pipeline, const std::string& input) const {
    auto r = run({k_app, "run", pipeline, "--input", input}, env());
    EXPECT_TRUE(r.code == 0 || r.code == 1) << r.err;
    return first_line(r.out);
  }
  Json flux_json(std::vector<std::string> args) const {
    args.insert(args.begin(), k_flux);
    args.push_back("--json");
    auto r = run(args, env());
    EXPECT_EQ(r.code, 0) << r.err;
    return Json::parse(r.out);
  }
  static Json get_json(httplib::Client& c, const std::string& path, int expected_status) {
    auto res = c.Get(path.c_str());
    EXPECT_TRUE(res) << path;
    if (!res) return Json();
    EXPECT_EQ(res->status, expected_status) << path << ": " << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type").rfind("application/json", 0), 0u) << path;
    return Json::parse(res->body);
  }
};

TEST_F(DashboardApi, ServesItsEmbeddedPageWithAPolicyThatAllowsOnlyItsOwnScript) {
  Dashboard d(env(), "");
  EXPECT_NE(d.first_line().find("read-only"), std::string::npos) << d.first_line();
  auto c = d.client();
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<title>Flux"), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("script-src 'self'"),
            std::string::npos);
  EXPECT_EQ(page->get_header_value("X-Frame-Options"), "DENY");
  auto index = c.Get("/index.html");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->body, page->body);
  auto js = c.Get("/app.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200);
  EXPECT_EQ(js->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_GT(js->body.size(), 1000u);
  auto css = c.Get("/app.css");
  ASSERT_TRUE(css);
  EXPECT_EQ(css->status, 200);
  EXPECT_EQ(css->get_header_value("Content-Type"), "text/css; charset=utf-8");

  Json info = get_json(c, "/api/info", 200);
  EXPECT_EQ(info.at("read_only"), true);
  EXPECT_EQ(info.at("actions").at("cancel"), false);
  EXPECT_EQ(info.at("prefix"), prefix);
  EXPECT_EQ(info.at("store"), redis.url().substr(8));  // host:port

  EXPECT_EQ(d.process().terminate(), 0) << d.process().err();
}

TEST_F(DashboardApi, RunsAreListedNewestFirstAsTheCliListsThemWithCountsPerStatus) {
  const std::string a = make_run("double-inc", "1");
  const std::string b = make_run("fails", "2");
  const std::string c3 = make_run("double-inc", "3");
  Dashboard d(env(), "");
  auto c = d.client();

  Json all = get_json(c, "/api/runs", 200);
  ASSERT_EQ(all.at("runs").size(), 3u);
  EXPECT_EQ(all["runs"][0].at("id"), c3);
  EXPECT_EQ(all["runs"][1].at("id"), b);
  EXPECT_EQ(all["runs"][2].at("id"), a);
  // Steps done of total: double-inc completed both, fails stopped at its second.
  EXPECT_EQ(all["runs"][0].at("steps_done"), 2);
  EXPECT_EQ(all["runs"][0].at("steps_total"), 2);
  EXPECT_EQ(all["runs"][1].at("steps_done"), 1);
  EXPECT_EQ(all["runs"][1].at("steps_total"), 2);
  EXPECT_EQ(all["runs"][1].at("error").at("node"), "boom");
  EXPECT_TRUE(all.at("next_cursor").is_null());
  EXPECT_EQ(all.at("counts"),
            (Json{{"running", 0},
                  {"completed", 2},
                  {"failed", 1},
                  {"cancelled", 0},
                  {"compensated", 0},
                  {"compensation_failed", 0},
                  {"total", 3}}));
  // Each run (none running) is the object `flux runs list --json` prints.
  Json cli = flux_json({"runs", "list"});
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(all["runs"][i], cli["runs"][i]) << i;

  // Filters: status, pipeline, id prefix, time range.
  Json failed = get_json(c, "/api/runs?status=failed", 200);
  ASSERT_EQ(failed.at("runs").size(), 1u);
  EXPECT_EQ(failed["runs"][0].at("id"), b);
  EXPECT_EQ(failed.at("counts").at("total"), 3);  // counts are the store's, not the page's
  Json by_pipeline = get_json(c, "/api/runs?pipeline=double-inc", 200);
  ASSERT_EQ(by_pipeline.at("runs").size(), 2u);
  EXPECT_EQ(by_pipeline["runs"][0].at("id"), c3);
  EXPECT_EQ(by_pipeline["runs"][1].at("id"), a);
  Json by_id = get_json(c, "/api/runs?id=" + b.substr(0, 8), 200);
  ASSERT_GE(by_id.at("runs").size(), 1u);
  EXPECT_EQ(by_id["runs"][0].at("id"), b);
  for (const auto& r : by_id["runs"]) {
    EXPECT_EQ(r.at("id").get<std::string>().rfind(b.substr(0, 8), 0), 0u);
  }
  EXPECT_TRUE(get_json(c, "/api/runs?since=2999-01-01T00:00:00Z", 200).at("runs").empty());
  EXPECT_TRUE(get_json(c, "/api/runs?until=2000-01-01T00:00:00Z", 200).at("runs").empty());
  const std::string created_b = all["runs"][1].at("created");  // 2026-...T...Z, microseconds
  Json from_b = get_json(c, "/api/runs?since=" + created_b, 200);
  ASSERT_EQ(from_b.at("runs").size(), 2u);
  EXPECT_EQ(from_b["runs"][1].at("id"), b);
  Json until_b = get_json(c, "/api/runs?until=" + created_b, 200);
  ASSERT_EQ(until_b.at("runs").size(), 2u);
  EXPECT_EQ(until_b["runs"][0].at("id"), b);

  // Pages: limit, then the cursor given.
  Json p1 = get_json(c, "/api/runs?limit=2", 200);
  ASSERT_EQ(p1.at("runs").size(), 2u);
  ASSERT_TRUE(p1.at("next_cursor").is_string());
  Json p2 = get_json(c, "/api/runs?limit=2&cursor=" +
                            url_encode(p1["next_cursor"]), 200);
  ASSERT_EQ(p2.at("runs").size(), 1u);
  EXPECT_EQ(p2["runs"][0].at("id"), a);
  Json pp1 = get_json(c, "/api/runs?pipeline=double-inc&limit=1", 200);
  ASSERT_EQ(pp1.at("runs").size(), 1u);
  Json pp2 = get_json(c, "/api/runs?pipeline=double-inc&limit=1&cursor=" +
                             url_encode(pp1["next_cursor"]), 200);
  ASSERT_EQ(pp2.at("runs").size(), 1u);
  EXPECT_EQ(pp2["runs"][0].at("id"), a);

  // Bad input: 400 with a message naming the parameter.
  EXPECT_EQ(get_json(c, "/api/runs?cursor=not-a-cursor", 400).at("error").get<std::string>().rfind(
                "cursor: ", 0),
            0u);
  EXPECT_EQ(get_json(c, "/api/runs?status=lost", 400).at("error"),
            "status=lost: expected running, completed, failed, cancelled, compensated or "
            "compensation_failed");
  EXPECT_EQ(get_json(c, "/api/runs?limit=0", 400).at("error"), "limit: at least 1");
  EXPECT_EQ(get_json(c, "/api/runs?limit=many", 400).at("error"), "limit: expected a whole number");
  EXPECT_EQ(get_json(c, "/api/runs?limit=501", 400).at("error"), "limit: at most 500");
  EXPECT_EQ(get_json(c, "/api/runs?since=yesterday", 400)
                .at("error")
                .get<std::string>()
                .rfind("since: expected a UTC time", 0),
            0u);
  EXPECT_EQ(d.process().terminate(), 0) << d.process().err();
}

TEST_F(DashboardApi, ARunsDetailHasItsHistoryFromACursorItsKvAndItsTraceAsTheCliShowsThem) {
  const std::string id = make_run("special", "3");
  Dashboard d(env(), "");
  auto c = d.client();
  Json detail = get_json(c, "/api/runs/" + id, 200);
  Json shown = flux_json({"runs", "show", id});
  EXPECT_EQ(detail.at("run"), shown.at("run"));
  EXPECT_EQ(detail.at("history"), shown.at("history"));
  EXPECT_EQ(detail.at("history_from"), 0);
  EXPECT_EQ(detail.at("history_length"), 5);
  EXPECT_TRUE(detail.at("kv").is_object());
  EXPECT_TRUE(detail.at("shared").is_object());
  EXPECT_TRUE(detail.at("parent").is_null());
  EXPECT_TRUE(detail.at("children").empty());
  EXPECT_TRUE(detail.at("lease_holder").is_null());
  EXPECT_FALSE(detail.contains("trace"));
  // Live polling: only what came after the cursor.
  Json later = get_json(c, "/api/runs/" + id + "?from=3", 200);
  ASSERT_EQ(later.at("history").size(), 2u);
  EXPECT_EQ(later["history"][0].at("seq"), 3);
  EXPECT_EQ(later.at("history_length"), 5);
  EXPECT_TRUE(get_json(c, "/api/runs/" + id + "?from=5", 200).at("history").empty());
  Json with_trace = get_json(c, "/api/runs/" + id + "?trace=1", 200);
  Json trace = flux_json({"runs", "export", id, "--format", "trace"});
  EXPECT_EQ(with_trace.at("trace"), trace);

  // Bad input.
  EXPECT_EQ(get_json(c, "/api/runs/00000000-0000-4000-8000-000000000000", 404).at("error"),
            "run 00000000-0000-4000-8000-000000000000 is not in the store");
  EXPECT_EQ(get_json(c, "/api/runs/" + id + "?from=minus", 400).at("error"),
            "from: expected a whole number");
  EXPECT_EQ(get_json(c, "/api/runs/a%20b%3Cscript%3E", 400).at("error").get<std::string>().rfind(
                "bad run id", 0),
            0u);
  EXPECT_EQ(get_json(c, "/api/nothing-here", 404).at("error"), "not found");
  EXPECT_EQ(d.process().terminate(), 0) << d.process().err();
}

TEST_F(DashboardApi, ExportGivesTheBytesFluxRunsExportWrites) {
  const std::string id = make_run("double-inc", "4");
  Dashboard d(env(), "");
  auto c = d.client();
  for (const std::string format : {"json", "trace"}) {
    auto res = c.Get(("/api/runs/" + id + "/export?format=" + format).c_str());
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    auto cli = run({k_flux, "runs", "export", id, "--format", format}, env());
    ASSERT_EQ(cli.code, 0) << cli.err;
    EXPECT_EQ(res->body, cli.out) << format;
    EXPECT_EQ(res->get_header_value("Content-Disposition"),
              "attachment; filename=\"run-" + id + (format == "trace" ? ".trace" : "") +
                  ".json\"");
  }
  EXPECT_EQ(get_json(c, "/api/runs/" + id + "/export?format=xml", 400).at("error"),
            "format: json or trace");
  get_json(c, "/api/runs/00000000-0000-4000-8000-000000000000/export", 404);
  EXPECT_EQ(d.process().terminate(), 0) << d.process().err();
}

TEST_F(DashboardApi, WorkersAreWhatFluxWorkersPrints) {
  Dashboard d(env(), "");
  auto c = d.client();
  EXPECT_TRUE(get_json(c, "/api/workers", 200).at("workers").empty());
  std::vector<std::string> worker_env = env();
  worker_env.insert(worker_env.end(), {"FLUX_ID=dash-worker-1", "FLUX_CAPACITY=3"});
  Background worker({k_app, "worker"}, worker_env);
  ASSERT_EQ(worker.read_line().rfind("worker dash-worker-1 serving", 0), 0u);
  Json mine = get_json(c, "/api/workers", 200);
  Json cli = flux_json({"workers"});
  ASSERT_EQ(mine.at("workers").size(), 1u);
  EXPECT_EQ(mine["workers"][0].at("id"), "dash-worker-1");
  EXPECT_EQ(mine["workers"][0].at("capacity"), 3);
  EXPECT_FALSE(mine["workers"][0].at("nodes").empty());
  EXPECT_GT(mine["workers"][0].at("expires_in_ms").get<int>(), 0);
  Json a = mine["workers"][0], b = cli["workers"][0];
  a.erase("expires_in_ms");  // read at another moment
  b.erase("expires_in_ms");
  EXPECT_EQ(a, b);
  EXPECT_EQ(worker.terminate(), 0) << worker.err();
  EXPECT_EQ(d.process().terminate(), 0) << d.process().err();
}

TEST_F(DashboardApi, ActionsNeedTheTokenInAHeaderAndTheDashboardsOwnOrigin) {
  const std::string done = make_run("double-inc", "1");
  // A run that sleeps 10 s on its owner (cli_app), so that it is running while we act.
  Background owner({k_app, "run", "slow", "--input", "10000"}, env());
  const std::string id = owner.read_line();
  {
    Dashboard read_only(env(), "");
    auto c = read_only.client();
    auto res = c.Post(("/api/runs/" + id + "/cancel").c_str(),
                      httplib::Headers{{"X-Flux-Token", k_token}}, "", "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 403);
    EXPECT_EQ(Json::parse(res->body).at("error"),
              "this dashboard is read-only: start it with --token or FLUX_DASHBOARD_TOKEN to allow "
              "actions");
    EXPECT_EQ(read_only.process().terminate(), 0) << read_only.process().err();
  }
  // The token from the environment.
  std::vector<std::string> with_token = env();
  with_token.push_back("FLUX_DASHBOARD_TOKEN=" + k_token);
  Dashboard d(with_token, "");
  EXPECT_NE(d.first_line().find("actions need the token"), std::string::npos) << d.first_line();
  auto c = d.client();
  Json info = get_json(c, "/api/info", 200);
  EXPECT_EQ(info.at("read_only"), false);
  EXPECT_EQ(info.at("actions").at("cancel"), true);
  EXPECT_EQ(info.at("actions").at("resume"), true);
  EXPECT_EQ(info.at("resume_mode"), "driver");  // no pipelines in the flux tool
  const std::string cancel = "/api/runs/" + id + "/cancel";
  auto post = [&](const std::string& path, httplib::Headers headers, const std::string& body = "") {
    auto res = c.Post(path.c_str(), headers, body, "application/json");
    EXPECT_TRUE(res) << path;
    return std::make_pair(res ? res->status : -1, res ? Json::parse(res->body) : Json());
  };
  auto [s1, e1] = post(cancel, {});
  EXPECT_EQ(s1, 403);
  EXPECT_EQ(e1.at("error"), "this action needs the token (header X-Flux-Token)");
  auto [s2, e2] = post(cancel, {{"X-Flux-Token", "guess"}});
  EXPECT_EQ(s2, 403);
  EXPECT_EQ(e2.at("error"), "wrong token (header X-Flux-Token)");
  auto [s3, e3] = post(cancel, {{"X-Flux-Token", k_token}, {"Origin", "http://evil.example"}});
  EXPECT_EQ(s3, 403);
  EXPECT_EQ(e3.at("error"),
            "cross-origin request refused: Origin http://evil.example is not this dashboard");
  auto [s4, e4] = post(cancel, {{"X-Flux-Token", k_token}}, "{not json");
  EXPECT_EQ(s4, 400);
  // The run is still running: nothing above acted.
  EXPECT_EQ(get_json(c, "/api/runs/" + id, 200).at("run").at("status"), "running");
  auto [s5, e5] = post("/api/runs/00000000-0000-4000-8000-000000000000/cancel",
                       {{"X-Flux-Token", k_token}});
  EXPECT_EQ(s5, 404);

  const std::string origin = "http://127.0.0.1:" + std::to_string(d.port());
  auto [s6, e6] = post(cancel, {{"X-Flux-Token", k_token}, {"Origin", origin}},
                       R"({"reason": "stopped in a test"})");
  EXPECT_EQ(s6, 200) << e6;
  EXPECT_EQ(e6.at("run_id"), id);
  EXPECT_EQ(e6.at("cancelled"), true);
  // Its owner stops it at its next lease renewal; the store then says cancelled.
  std::string status;
  for (int i = 0; i < 150 && status != "cancelled"; ++i) {
    status = get_json(c, "/api/runs/" + id, 200).at("run").at("status");
    if (status != "cancelled") std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, "cancelled");
  const std::string message =
      get_json(c, "/api/runs/" + id, 200).at("run").at("error").at("message");
  EXPECT_NE(message.find("stopped in a test"), std::string::npos) << message;
  // `run` exits 1 for a cancelled run (once the abandoned sleep has ended: its thread is
  // joined when the owner's Runtime is destroyed).
  EXPECT_EQ(owner.wait(std::chrono::seconds(30)), 1);

  // Resume and retry need the pipelines' code, which the flux tool does not have: handed to
  // a driver through the store (none runs here: the request stays pending). They need the
  // token as the other actions do.
  auto [s7a, e7a] = post("/api/runs/" + id + "/resume", {});
  EXPECT_EQ(s7a, 403);
  auto [s7b, e7b] = post("/api/runs/" + id + "/resume",
                         {{"X-Flux-Token", k_token}, {"Origin", "http://evil.example"}});
  EXPECT_EQ(s7b, 403);
  EXPECT_TRUE(get_json(c, "/api/runs/" + id, 200).at("resume_request").is_null());
  auto [s7, e7] = post("/api/runs/" + id + "/resume", {{"X-Flux-Token", k_token}});
  EXPECT_EQ(s7, 202) << e7;
  EXPECT_EQ(e7.at("requested"), "resume");
  EXPECT_EQ(e7.at("status"), "cancelled");
  EXPECT_EQ(e7.at("pipeline"), "slow");
  EXPECT_NE(e7.at("message").get<std::string>().find("handed to a driver adopting pipeline 'slow'"),
            std::string::npos)
      << e7;
  Json pending = get_json(c, "/api/runs/" + id, 200).at("resume_request");
  EXPECT_EQ(pending.at("state"), "pending");
  EXPECT_EQ(pending.at("verb"), "resume");
  EXPECT_EQ(pending.at("waiting_for"), "a driver adopting pipeline 'slow'");
  EXPECT_TRUE(pending.at("refusal").is_null());
  EXPECT_EQ(pending.at("by").get<std::string>().rfind("flux dashboard at 127.0.0.1:", 0), 0u)
      << pending;
  // The same 409 texts as a dashboard with the pipelines: the run's status refuses it.
  auto [s7c, e7c] = post("/api/runs/" + id + "/retry", {{"X-Flux-Token", k_token}});
  EXPECT_EQ(s7c, 409);
  EXPECT_EQ(e7c.at("error"), "run " + id +
                                 " is cancelled: retry is for failed runs (resume for "
                                 "interrupted or cancelled ones)");
  auto [s7d, e7d] = post("/api/runs/" + done + "/resume", {{"X-Flux-Token", k_token}});
  EXPECT_EQ(s7d, 409);
  EXPECT_EQ(e7d.at("error"),
            "run " + done + " is completed: resume is for interrupted or cancelled runs");
  // An action on a run that has ended: cancel says so, and changes nothing.
  auto [s8, e8] = post("/api/runs/" + done + "/cancel", {{"X-Flux-Token", k_token}});
  EXPECT_EQ(s8, 200);
  EXPECT_EQ(e8.at("cancelled"), false);
  EXPECT_EQ(e8.at("status"), "completed");
  EXPECT_EQ(d.process().terminate(), 0) << d.process().err();
}

/// The run's detail once `done(detail)` holds, reading it every 100 ms up to `tries` times
/// (the last one read otherwise, for the assertions to say what it was).
template <class Done>
Json detail_once(httplib::Client& c, const std::string& id, Done done, int tries = 600) {
  Json detail;
  for (int i = 0; i < tries; ++i) {
    auto res = c.Get(("/api/runs/" + id).c_str());
    if (res && res->status == 200) {
      detail = Json::parse(res->body);
      if (done(detail)) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return detail;
}

std::vector<std::string> entry_types(const Json& detail) {
  std::vector<std::string> out;
  for (const auto& e : detail.at("history")) out.push_back(e.at("type"));
  return out;
}

TEST_F(DashboardApi, ARunningRowsStepsDoneComeFromItsHistoryAndABranchNodeCountsPerBranch) {
  // special = inc | parallel(dbl, nap) | special: 4 node steps. With a 60 s nap, the run stays
  // running with inc and dbl done.
  Background owner({k_app, "run", "special", "--input", "60000"}, env());
  const std::string id = owner.read_line();
  Dashboard d(env(), "");
  auto c = d.client();
  Json detail = detail_once(c, id, [](const Json& j) {
    return j.at("run").at("steps_done").is_number() && j.at("run").at("steps_done") == 2;
  });
  EXPECT_EQ(detail.at("run").at("status"), "running");
  EXPECT_EQ(detail.at("run").at("steps_done"), 2) << detail;
  EXPECT_EQ(detail.at("run").at("steps_total"), 4);
  Json list = get_json(c, "/api/runs", 200);
  ASSERT_EQ(list.at("runs").size(), 1u);
  EXPECT_EQ(list["runs"][0].at("status"), "running");
  EXPECT_EQ(list["runs"][0].at("steps_done"), 2);
  EXPECT_EQ(list["runs"][0].at("steps_total"), 4);
  // The record itself has no done count while the run is running (it is not written per
  // step): the CLI, which prints the record, says null.
  Json cli = flux_json({"runs", "list"});
  EXPECT_TRUE(cli["runs"][0].at("steps_done").is_null());
  EXPECT_EQ(cli["runs"][0].at("steps_total"), 4);
  EXPECT_EQ(d.process().terminate(), 0) << d.process().err();
}

TEST_F(DashboardApi, ResumeAndRetryWithoutPipelinesAreHandedToADriverThatAdoptsThePipeline) {
  std::vector<std::string> with_token = env();
  with_token.push_back("FLUX_DASHBOARD_TOKEN=" + k_token);
  Dashboard d(with_token, "");
  auto c = d.client();
  const std::string origin = "http://127.0.0.1:" + std::to_string(d.port());
  auto post = [&](const std::string& id, const std::string& verb) {
    auto res = c.Post(("/api/runs/" + id + "/" + verb).c_str(),
                      httplib::Headers{{"X-Flux-Token", k_token}, {"Origin", origin}}, "",
                      "application/json");
    EXPECT_TRUE(res);
    return std::make_pair(res ? res->status : -1, res ? Json::parse(res->body) : Json());
  };

  // 1. A failed run (its step `flaky` fails until CLI_TEST_FIXED=1, which the driver below
  // has: the user mended what the step needed), retried.
  const std::string failed = make_run("mendable", "4");
  ASSERT_EQ(get_json(c, "/api/runs/" + failed, 200).at("run").at("status"), "failed");
  auto [s1, a1] = post(failed, "retry");
  ASSERT_EQ(s1, 202) << a1;
  EXPECT_EQ(a1.at("run_id"), failed);
  EXPECT_EQ(a1.at("requested"), "retry");
  EXPECT_EQ(a1.at("status"), "failed");
  EXPECT_EQ(a1.at("pipeline"), "mendable");

  // 2. A cancelled run (cancelled while its first step naps; its owner stops it at its next
  // lease renewal, within 3.4 s), resumed: the nap runs again.
  Background owner({k_app, "run", "slow", "--input", "10000"}, env());
  const std::string cancelled = owner.read_line();
  detail_once(c, cancelled, [](const Json& j) { return j.at("run").at("status") == "running"; });
  auto [sc, ac] = post(cancelled, "cancel");
  ASSERT_EQ(sc, 200) << ac;
  Json was = detail_once(c, cancelled,
                         [](const Json& j) { return j.at("run").at("status") == "cancelled"; });
  ASSERT_EQ(was.at("run").at("status"), "cancelled") << was;
  auto [s2, a2] = post(cancelled, "resume");
  ASSERT_EQ(s2, 202) << a2;
  EXPECT_EQ(a2.at("requested"), "resume");

  // 3. A run of a pipeline the driver does not have: recorded here, in this process.
  flux::Config config{.store = redis.url(), .key_prefix = prefix};
  std::string foreign, unresumable;
  {
    flux::Runtime rt(config);
    auto lost = flux::node(
        "lost", [](std::int64_t) -> std::int64_t { throw std::runtime_error("lost: always"); });
    foreign = rt.run(flux::Pipeline(lost).named("not-in-the-driver"), std::int64_t{1}).run_id;
  }
  // 4. A run of a pipeline the driver has (same nodes, same fingerprint), recorded without
  // full history values: it cannot be resumed, and the driver says why.
  {
    flux::Config no_values = config;
    no_values.history_values = flux::HistoryValues::none;
    flux::Runtime rt(no_values);
    auto inc = flux::node("inc", [](std::int64_t x) { return x + 1; });
    auto flaky = flux::node("flaky", [](std::int64_t) -> std::int64_t {
      throw std::runtime_error("flaky: not fixed yet");
    });
    unresumable = rt.run((inc | flaky).named("mendable"), std::int64_t{1}).run_id;
  }
  auto [s3, a3] = post(foreign, "retry");
  ASSERT_EQ(s3, 202) << a3;
  auto [s4, a4] = post(unresumable, "retry");
  ASSERT_EQ(s4, 202) << a4;
  for (const auto& id : {failed, cancelled, foreign, unresumable}) {
    EXPECT_EQ(get_json(c, "/api/runs/" + id, 200).at("resume_request").at("state"), "pending")
        << id;
  }

  // A driver of cli_app's pipelines takes the requests.
  std::vector<std::string> fixed = env();
  fixed.push_back("CLI_TEST_FIXED=1");
  Background driver({k_app, "driver", "--local"}, fixed);
  Json retried =
      detail_once(c, failed, [](const Json& j) { return j.at("run").at("status") == "completed"; });
  ASSERT_EQ(retried.at("run").at("status"), "completed") << retried << driver.err();
  EXPECT_EQ(retried.at("run").at("output"), 50);  // (4 + 1) * 10
  EXPECT_EQ(retried.at("run").at("steps_done"), 2);
  EXPECT_EQ(retried.at("run").at("steps_total"), 2);
  EXPECT_TRUE(retried.at("run").at("error").is_null());
  EXPECT_TRUE(retried.at("resume_request").is_null());
  // Its history: inc, flaky failed, the resume mark, flaky again (attempt 2).
  EXPECT_EQ(entry_types(retried), (std::vector<std::string>{"node", "node", "resume", "node"}));
  EXPECT_EQ(retried.at("history")[3].at("attempt"), 2);
  EXPECT_EQ(retried.at("history")[2].at("input").at("from_status"), "failed");

  Json resumed = detail_once(c, cancelled,
                             [](const Json& j) { return j.at("run").at("status") == "completed"; });
  ASSERT_EQ(resumed.at("run").at("status"), "completed") << resumed << driver.err();
  EXPECT_EQ(resumed.at("run").at("output"), 10001);
  EXPECT_TRUE(resumed.at("resume_request").is_null());
  const auto types = entry_types(resumed);
  EXPECT_NE(std::find(types.begin(), types.end(), "cancel"), types.end()) << resumed;
  EXPECT_NE(std::find(types.begin(), types.end(), "resume"), types.end()) << resumed;
  EXPECT_EQ(resumed.at("run").at("steps_done"), 2);

  Json refused = detail_once(c, unresumable, [](const Json& j) {
    return j.at("resume_request").is_object() && j.at("resume_request").at("state") == "refused";
  });
  ASSERT_TRUE(refused.at("resume_request").is_object()) << refused;
  EXPECT_EQ(refused.at("resume_request").at("state"), "refused") << refused;
  EXPECT_EQ(refused.at("resume_request").at("verb"), "retry");
  EXPECT_NE(refused.at("resume_request")
                .at("refusal")
                .get<std::string>()
                .find("was recorded without full history values"),
            std::string::npos)
      << refused;
  EXPECT_EQ(refused.at("run").at("status"), "failed");  // untouched

  // The driver went through every pending request in the passes above: the foreign one is
  // still pending, waiting for a driver that adopts its pipeline.
  Json waiting = get_json(c, "/api/runs/" + foreign, 200);
  EXPECT_EQ(waiting.at("resume_request").at("state"), "pending") << waiting;
  EXPECT_EQ(waiting.at("resume_request").at("waiting_for"),
            "a driver adopting pipeline 'not-in-the-driver'");
  EXPECT_EQ(waiting.at("run").at("status"), "failed");
  EXPECT_EQ(driver.terminate(), 0) << driver.err();
  EXPECT_NE(driver.err().find("leaves the retry request of run " + foreign), std::string::npos)
      << driver.err();
  EXPECT_NE(driver.err().find("cannot retry run " + unresumable), std::string::npos)
      << driver.err();
  EXPECT_EQ(d.process().terminate(), 0) << d.process().err();
}

TEST_F(DashboardApi, NoPathOutsideTheEmbeddedAssetsIsServedAndRequestsAreBounded) {
  Dashboard d(env(), "");
  const std::string host = "Host: 127.0.0.1:" + std::to_string(d.port()) + "\r\n";
  for (const std::string& path : std::vector<std::string>{
           "/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
           "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "/..%2f..%2f..%2fetc%2fpasswd",
           "/app.js/../../../etc/passwd", "/./app.js/..%2f..%2fCMakeCache.txt",
        "/%252e%252e/etc/passwd", "/....//....//etc/passwd", "/etc/passwd", "/CMakeLists.txt",
        "/src/dashboard/assets/app.js", "/assets/app.js", "/..\\..\\etc\\passwd"}) {
    const std::string response =
        raw_http(d.port(), "GET " + path + " HTTP/1.1\r\n" + host + k_close);
    EXPECT_EQ(status_of(response), 404) << path << "\n" << response.substr(0, 200);
    EXPECT_EQ(response.find("root:"), std::string::npos) << path;
    EXPECT_NE(response.find("{\"error\":\"not found\"}"), std::string::npos) << path;
  }
  // DNS rebinding: a name that is not a loopback one in Host is refused, for reads too.
  const std::string rebound = raw_http(
      d.port(), "GET /api/runs HTTP/1.1\r\nHost: evil.example:" + std::to_string(d.port()) +
                    "\r\n" + k_close);
  EXPECT_EQ(status_of(rebound), 403) << rebound;
  EXPECT_NE(rebound.find("is not this dashboard's address"), std::string::npos) << rebound;
  for (const std::string name : {"127.0.0.1:", "localhost:"}) {
    EXPECT_EQ(status_of(raw_http(d.port(), "GET /api/info HTTP/1.1\r\nHost: " + name +
                                               std::to_string(d.port()) + "\r\n" + k_close)),
              200)
        << name;
  }
  // Bounded: a request line over 8 KiB (414), a body over 16 KiB (413).
  const std::string long_query = "/api/runs?id=" + std::string(9000, 'a');
  EXPECT_EQ(status_of(raw_http(d.port(), "GET " + long_query +
                                             " HTTP/1.1\r\n" + host + k_close)),
            414);
  const std::string body(20000, 'x');
  EXPECT_EQ(status_of(raw_http(d.port(), "POST /api/runs/abc/cancel HTTP/1.1\r\n" + host +
                                         "Connection: close\r\nContent-Length: " +
                                             std::to_string(body.size()) + "\r\n\r\n" + body)),
            413);
  // The server still answers.
  auto c = d.client();
  get_json(c, "/api/info", 200);
  EXPECT_EQ(d.process().terminate(), 0) << d.process().err();
}

TEST_F(DashboardApi, StopsCleanlyOnSigtermOrSigintEvenRightAfterItsAnnouncement) {
  Dashboard d(env(), "");
  EXPECT_EQ(d.process().terminate(), 0) << d.process().err();
  EXPECT_NE(d.process().err().find("dashboard stopped (SIGTERM)"), std::string::npos)
      << d.process().err();
  Dashboard e(env(), "");
  e.process().signal(SIGINT);
  EXPECT_EQ(e.process().wait(std::chrono::seconds(10)), 0);
  // Bad command lines: exit 2 naming the problem.
  auto bad = run({k_flux, "dashboard", "--listen", "127.0.0.1:99999"}, env());
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--listen 127.0.0.1:99999: the port must be 0 to 65535"),
            std::string::npos)
      << bad.err;
  auto no_port = run({k_flux, "dashboard", "--listen", "localhost"}, env());
  EXPECT_EQ(no_port.code, 2);
  EXPECT_NE(no_port.err.find("expected host:port"), std::string::npos) << no_port.err;
  Dashboard f(env(), "");
  auto busy = run({k_flux, "dashboard", "--listen", "127.0.0.1:" + std::to_string(f.port())},
                  env(), std::chrono::seconds(20));
  EXPECT_EQ(busy.code, 2);
  EXPECT_NE(busy.err.find("cannot listen on 127.0.0.1:" + std::to_string(f.port())),
            std::string::npos)
      << busy.err;
  auto no_store = run({k_flux, "dashboard", "--store", "redis://127.0.0.1:1"}, {});
  EXPECT_EQ(no_store.code, 3) << no_store.err;
  EXPECT_EQ(f.process().terminate(), 0) << f.process().err();
}

TEST_F(DashboardApi, TheStorePasswordIsInNoResponse) {
  const std::string password = "s3cret-store-pass";
  flux::test::RedisServer locked(password);
  std::vector<std::string> locked_env{"FLUX_STORE=" + locked.url(), "FLUX_KEY_PREFIX=" + prefix};
  auto made = run({k_app, "run", "fails", "--input", "1"}, locked_env);
  ASSERT_EQ(made.code, 1) << made.err;
  const std::string id = first_line(made.out);
  Dashboard d(locked_env, k_token);
  EXPECT_EQ(d.first_line().find(password), std::string::npos);
  auto c = d.client();
  for (const std::string& path : std::vector<std::string>{
           "/", "/app.js", "/api/info", "/api/runs", "/api/runs/" + id,
           "/api/runs/" + id + "?trace=1",
        "/api/runs/" + id + "/export", "/api/workers", "/api/runs/nope", "/api/runs?cursor=x"}) {
    auto res = c.Get(path.c_str());
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->body.find(password), std::string::npos) << path;
    for (const auto& [k, v] : res->headers) EXPECT_EQ(v.find(password), std::string::npos) << k;
  }
  auto res = c.Post(("/api/runs/" + id + "/retry").c_str(),
                    httplib::Headers{{"X-Flux-Token", k_token}}, "", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body.find(password), std::string::npos);
  EXPECT_EQ(d.process().terminate(), 0) << d.process().err();
}

}  // namespace
