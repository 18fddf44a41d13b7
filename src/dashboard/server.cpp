#include "dashboard/server.hpp"

// cpp-httplib as Debian builds it (a shared library; its limits are compiled in: a request
// line over 8 KiB is refused with 414 before any handler runs). Served without TLS: the
// dashboard binds loopback by default; put a TLS proxy in front of it to serve it further.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>

#include "cli/common.hpp"
#include "cli/json.hpp"
#include "cli/resume_request.hpp"
#include "cluster/worker_directory.hpp"
#include "core/stop_signal.hpp"
#include "dashboard/assets.hpp"
#include "flux/main.hpp"
#include "flux/runtime.hpp"
#include "redis/redis_client.hpp"
#include "store/open_storage.hpp"
#include "store/redis_storage.hpp"

namespace flux::dashboard {

namespace {

using cli::Json;

constexpr std::size_t k_max_body = 16 * 1024;
constexpr std::size_t k_max_page = 500;
constexpr std::size_t k_default_page = 50;
/// A filtered listing reads at most this many runs per request, then returns a cursor.
constexpr std::size_t k_max_examined = 10'000;
/// Children listed with their status in a run's detail.
constexpr std::size_t k_max_children = 200;
/// RunStatus's values, running to compensation_failed.
constexpr std::size_t k_statuses = 6;

/// A failure that has chosen its HTTP status.
struct HttpError {
  int status;
  std::string message;
};

void send_json(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(cli::dump(body), "application/json; charset=utf-8");
}

bool valid_run_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == ':';
  });
}

std::string run_id_param(const httplib::Request& req) {
  const std::string id = req.matches[1];
  if (!valid_run_id(id)) {
    throw HttpError{400, "bad run id: expected up to 128 letters, digits, '-', '_', '.' or ':'"};
  }
  return id;
}

std::optional<RunStatus> parse_status(const std::string& s) {
  if (s.empty()) return std::nullopt;
  for (std::size_t i = 0; i < k_statuses; ++i) {
    if (s == to_string(static_cast<RunStatus>(i))) return static_cast<RunStatus>(i);
  }
  throw HttpError{400, "status=" + s.substr(0, 32) +
                           ": expected running, completed, failed, cancelled, compensated or "
                           "compensation_failed"};
}

std::uint64_t parse_count(const std::string& name, const std::string& text, std::uint64_t max) {
  if (text.empty() || text.size() > 10 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    throw HttpError{400, name + ": expected a whole number"};
  }
  const std::uint64_t n = std::stoull(text);
  if (n > max) throw HttpError{400, name + ": at most " + std::to_string(max)};
  return n;
}

/// "2026-12-01T03:04:05Z" (fraction and the Z optional: UTC) or milliseconds since the epoch.
Timestamp parse_time(const std::string& name, const std::string& text) {
  const auto bad = HttpError{400, name + ": expected a UTC time like 2026-12-01T03:04:05Z or "
                                         "milliseconds since 1970"};
  if (text.empty() || text.size() > 40) throw bad;
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (text.size() > 13) throw bad;  // up to the year 2286, within int64 nanoseconds
    return Timestamp(std::chrono::milliseconds(std::stoll(text)));
  }
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    throw bad;
  }
  std::string rest = text.substr(static_cast<std::size_t>(consumed));
  long long nanos = 0;
  if (!rest.empty() && rest[0] == '.') {
    std::size_t i = 1;
    long long scale = 100'000'000;
    for (; i < rest.size() && rest[i] >= '0' && rest[i] <= '9'; ++i) {
      nanos += (rest[i] - '0') * scale;
      scale /= 10;
    }
    rest = rest.substr(i);
  }
  if (!(rest.empty() || rest == "Z")) throw bad;
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    throw bad;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t secs = ::timegm(&tm);
  // Timestamps are int64 nanoseconds: years past 2262 and before 1678 clamp to the ends.
  if (secs > 9'000'000'000) return Timestamp::max();
  if (secs < -9'000'000'000) return Timestamp::min();
  return Timestamp(std::chrono::seconds(secs)) + std::chrono::nanoseconds(nanos);
}

Json counts_json(const std::array<std::size_t, k_statuses>& counts) {
  Json out = Json::object();
  std::size_t total = 0;
  for (std::size_t i = 0; i < k_statuses; ++i) {
    out[to_string(static_cast<RunStatus>(i))] = counts[i];
    total += counts[i];
  }
  out["total"] = total;
  return out;
}

std::string param(const httplib::Request& req, const char* name) {
  return req.has_param(name) ? req.get_param_value(name) : std::string();
}

}  // namespace

struct Server::Impl {
  Options options;
  std::string url;           // the store's URL (with its password, if any: never sent)
  std::string store_display;  // host:port
  std::shared_ptr<Storage> storage;
  detail::RedisStorage* redis = nullptr;  // the same object, for the counts per status
  httplib::Server http;
  int port = 0;

  std::mutex directory_mu;  // guards directory (a WorkerDirectory is one connection)
  std::unique_ptr<detail::WorkerDirectory> directory;

  std::mutex runtime_mu;  // guards runtime's creation; the Runtime itself is thread-safe
  std::unique_ptr<Runtime> runtime;

  explicit Impl(Options o) : options(std::move(o)) {
    url = cli::store_url(options.store);
    if (url.rfind("redis://", 0) != 0) {
      throw Error(Errc::invalid_argument,
                  "the dashboard reads a shared store: --store must be redis://[user:password@]"
                  "host:port[/db]");
    }
    store_display = detail::parse_redis_url(url).display();
    Config config = store_config();
    storage = detail::open_storage(config);
    redis = dynamic_cast<detail::RedisStorage*>(storage.get());
    routes();
    // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, with which a second dashboard
    // (or any process of the user) could bind the same port and take half the requests.
    http.set_socket_options([](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    port = options.port == 0 ? http.bind_to_any_port(options.host)
                             : (http.bind_to_port(options.host, options.port) ? options.port : -1);
    if (port <= 0) {
      throw Error(Errc::invalid_argument, "the dashboard cannot listen on " + options.host + ":" +
                                              std::to_string(options.port) +
                                              " (in use, or not an address of this host)");
    }
  }

  Config store_config() const {
    Config config;
    config.store = url;
    config.key_prefix = options.prefix;
    config.store_retry_deadline = std::chrono::seconds(2);  // a page answers, or says why not
    config.threads = 2;
    return config;
  }

  Runtime& actions_runtime() {
    std::lock_guard lock(runtime_mu);
    if (!runtime) runtime = std::make_unique<Runtime>(store_config());
    return *runtime;
  }

  // Runs a handler: HttpError and flux::Error become JSON errors with their status.
  template <class F>
  httplib::Server::Handler guarded(F f) {
    return [this, f](const httplib::Request& req, httplib::Response& res) {
      try {
        f(req, res);
      } catch (const HttpError& e) {
        send_json(res, e.status, {{"error", e.message}});
      } catch (const Error& e) {
        int status = 500;
        switch (e.code()) {
          case Errc::invalid_argument:
          case Errc::type_mismatch:
            status = 400;
            break;
          case Errc::not_found:
            status = 404;
            break;
          case Errc::run_owned:
            status = 409;
            break;
          case Errc::storage:
            status = 503;
            break;
          default:
            break;
        }
        send_json(res, status, {{"error", e.what()}});
      } catch (const std::exception& e) {
        send_json(res, 500, {{"error", std::string("internal error: ") + e.what()}});
      }
    };
  }

  void routes() {
    http.set_payload_max_length(k_max_body);
    http.set_read_timeout(10, 0);
    http.set_write_timeout(10, 0);
    http.set_keep_alive_max_count(100);
    // The page loads only its own script and style, and is never framed.
    http.set_default_headers({{"X-Content-Type-Options", "nosniff"},
                              {"X-Frame-Options", "DENY"},
                              {"Referrer-Policy", "no-referrer"},
                              {"Cache-Control", "no-store"},
                              {"Content-Security-Policy",
                               "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'"}});
    http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.body.empty()) {
        const char* what = res.status == 404   ? "not found"
                           : res.status == 413 ? "request body too large (at most 16 KiB)"
                           : res.status == 414 ? "request line too long"
                                               : "bad request";
        send_json(res, res.status, {{"error", what}});
      }
    });

    // DNS rebinding: a page of another site whose name was made to resolve to 127.0.0.1
    // reaches this server with its own name in Host. On loopback, only loopback names pass.
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!loopback() || host_allowed(req.get_header_value("Host"))) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      send_json(res, 403,
                {{"error", "Host " + req.get_header_value("Host").substr(0, 100) +
                               " is not this dashboard's address (a loopback one)"}});
      return httplib::Server::HandlerResponse::Handled;
    });

    http.Get("/api/info", guarded([this](const httplib::Request&, httplib::Response& res) {
      Json pipelines = Json::array();
      if (options.registry) {
        for (const auto& n : options.registry->pipeline_names()) pipelines.push_back(n);
      }
      const bool actions = !options.token.empty();
      send_json(res, 200,
                {{"store", store_display},
                 {"prefix", options.prefix},
                 {"read_only", !actions},
                 {"actions", {{"cancel", actions}, {"resume", actions}, {"retry", actions}}},
                 // "here": this dashboard resumes runs itself (it has their pipelines);
                 // "driver": it hands them to a driver through the store.
                 {"resume_mode", options.registry ? "here" : "driver"},
                 {"pipelines", std::move(pipelines)}});
    }));
    http.Get("/api/runs", guarded([this](const httplib::Request& req, httplib::Response& res) {
      list_runs(req, res);
    }));
    http.Get(R"(/api/runs/([^/]+))",
             guarded([this](const httplib::Request& req, httplib::Response& res) {
               run_detail(req, res);
             }));
    http.Get(R"(/api/runs/([^/]+)/export)",
             guarded([this](const httplib::Request& req, httplib::Response& res) {
               export_run(req, res);
             }));
    http.Get("/api/workers", guarded([this](const httplib::Request&, httplib::Response& res) {
      workers(res);
    }));
    http.Post(R"(/api/runs/([^/]+)/(cancel|resume|retry))",
              guarded([this](const httplib::Request& req, httplib::Response& res) {
                action(req, res);
              }));
    // Everything else under /api/ is unknown; any other path is an embedded asset or nothing.
    // Assets are looked up by exact name in a table: no path reaches the file system.
    http.Get(R"(/.*)", [](const httplib::Request& req, httplib::Response& res) {
      const Asset* a = req.path.rfind("/api/", 0) == 0 ? nullptr : find_asset(req.path);
      if (!a) {
        send_json(res, 404, {{"error", "not found"}});
        return;
      }
      res.status = 200;
      res.set_content(a->data, a->size, a->content_type);
    });
  }

  bool loopback() const {
    return options.host == "127.0.0.1" || options.host == "localhost" || options.host == "::1";
  }

  bool host_allowed(const std::string& host) const {
    const std::string p = ":" + std::to_string(port);
    return host == "127.0.0.1" + p || host == "localhost" + p || host == "[::1]" + p;
  }

  detail::RedisStorage& redis_store() {
    if (!redis) throw HttpError{500, "the dashboard's store is not Redis"};
    return *redis;
  }

  std::vector<HistoryEntry> history_of(const std::string& id) { return storage->history(id, 0); }

  RunInfo load(const std::string& id) {
    std::optional<RunInfo> run = storage->get_run(id);
    if (!run) throw HttpError{404, "run " + id + " is not in the store"};
    return *run;
  }

  void list_runs(const httplib::Request& req, httplib::Response& res) {
    RunFilter filter;
    filter.status = parse_status(param(req, "status"));
    const std::string pipeline = param(req, "pipeline");
    const std::string id_prefix = param(req, "id");
    if (pipeline.size() > 200) throw HttpError{400, "pipeline: at most 200 characters"};
    if (id_prefix.size() > 128) throw HttpError{400, "id: at most 128 characters"};
    std::optional<Timestamp> since, until;
    if (!param(req, "since").empty()) since = parse_time("since", param(req, "since"));
    if (!param(req, "until").empty()) until = parse_time("until", param(req, "until"));
    const std::size_t limit =
        req.has_param("limit") ? parse_count("limit", param(req, "limit"), k_max_page)
                               : k_default_page;
    if (limit == 0) throw HttpError{400, "limit: at least 1"};
    filter.cursor = param(req, "cursor");
    if (filter.cursor.size() > 200) throw HttpError{400, "cursor: not one this dashboard gave"};
    const bool filtered = !pipeline.empty() || !id_prefix.empty() || since || until;

    std::vector<RunInfo> runs;
    std::vector<std::string> corrupt;
    std::size_t examined = 0;
    std::string next;
    for (;;) {
      // Never more than what is still wanted per read, so that the cursor returned is exact.
      filter.limit = limit - runs.size();
      RunPage page;
      try {
        page = storage->list_runs_page(filter);
      } catch (const Error& e) {
        if (e.code() == Errc::invalid_argument) {
          throw HttpError{400, "cursor: not one this dashboard gave (" + std::string(e.what()) +
                                   ")"};
        }
        throw;
      }
      examined += page.runs.size() + page.corrupt_keys.size();
      next = page.next_cursor;
      bool older_than_since = false;
      for (auto& run : page.runs) {
        // Compared at the microseconds runs are shown with, so that "since" and "until" a
        // run's displayed time include it.
        const Timestamp created = std::chrono::floor<std::chrono::microseconds>(run.created);
        if (since && created < *since) {
          older_than_since = true;  // newest first: every later run is older still
          break;
        }
        if (until && created > *until) continue;
        if (!pipeline.empty() && run.pipeline != pipeline) continue;
        if (!id_prefix.empty() && run.id.rfind(id_prefix, 0) != 0) continue;
        runs.push_back(std::move(run));
      }
      corrupt.insert(corrupt.end(), page.corrupt_keys.begin(), page.corrupt_keys.end());
      if (older_than_since) next.clear();
      if (next.empty() || runs.size() >= limit || (filtered && examined >= k_max_examined)) break;
      filter.cursor = next;
    }
    const std::array<std::size_t, k_statuses> counts = redis_store().count_by_status();
    Json list = Json::array();
    for (auto& run : runs) {
      // A running run's record has no done count (it is written at the run's end, never per
      // step): counted from its history, for the rows of this page only.
      if (run.status == RunStatus::running && !run.steps_done) {
        run.steps_done = completed_steps(history_of(run.id));
      }
      list.push_back(cli::run_json(run));
    }
    Json bad = Json::array();
    for (const auto& k : corrupt) bad.push_back({{"key", k}});
    send_json(res, 200,
              {{"runs", std::move(list)},
               {"next_cursor", next.empty() ? Json(nullptr) : Json(next)},
               {"examined", examined},
               {"corrupt", std::move(bad)},
               {"counts", counts_json(counts)}});
  }

  void run_detail(const httplib::Request& req, httplib::Response& res) {
    const std::string id = run_id_param(req);
    const std::size_t from =
        req.has_param("from") ? parse_count("from", param(req, "from"), 1'000'000'000) : 0;
    const std::string trace = param(req, "trace");
    if (!(trace.empty() || trace == "0" || trace == "1")) throw HttpError{400, "trace: 0 or 1"};
    // History first, then the record: a run that ended has all its history stored before
    // its final record, so a page that sees "ended" has every entry.
    std::vector<HistoryEntry> history = history_of(id);
    RunInfo run = load(id);
    run.history = std::move(history);
    Json entries = Json::array();
    for (std::size_t i = from; i < run.history.size(); ++i) {
      entries.push_back(cli::history_json(run.history[i]));
    }
    // Children, with their status, in the order their parents' steps started them.
    Json children = Json::array();
    for (const auto& e : run.history) {
      for (const auto& child : e.children) {
        if (children.size() >= k_max_children) break;
        std::optional<RunInfo> c = storage->get_run(child);
        children.push_back({{"id", child},
                            {"step", e.step},
                            {"node", e.node},
                            {"status", c ? Json(to_string(c->status)) : Json(nullptr)}});
      }
    }
    Json parent = nullptr;
    if (!run.parent_run_id.empty()) {
      std::optional<RunInfo> p = storage->get_run(run.parent_run_id);
      parent = {{"id", run.parent_run_id},
                {"step", run.parent_step},
                {"status", p ? Json(to_string(p->status)) : Json(nullptr)}};
    }
    const std::optional<std::string> holder = storage->lease_holder(id);
    if (run.status == RunStatus::running && !run.steps_done) {
      run.steps_done = completed_steps(run.history);
    }
    const std::string ids[] = {id};
    std::vector<std::optional<ResumeRequest>> requests;
    try {
      requests = storage->resume_requests(ids);
    } catch (const Error& e) {
      // A request that cannot be read does not hide the run; a driver replaces it by its
      // refusal.
      if (e.code() != Errc::storage) throw;
      requests = {ResumeRequest{ResumeRequest::Verb::resume, "", {}, std::string(e.what())}};
    }
    Json out = {{"run", cli::run_json(run)},
                {"resume_request", !requests.empty() && requests[0]
                                       ? cli::resume_request_json(*requests[0], run.pipeline)
                                       : Json(nullptr)},
                {"history", std::move(entries)},
                {"history_from", from},
                {"history_length", run.history.size()},
                {"kv", cli::to_json(Value(storage->keys(id, Scope::kv)))},
                {"shared", cli::to_json(Value(storage->keys(id, Scope::shared)))},
                {"parent", std::move(parent)},
                {"children", std::move(children)},
                {"lease_holder", holder ? Json(*holder) : Json(nullptr)}};
    if (trace == "1") out["trace"] = cli::trace_json(run);
    send_json(res, 200, out);
  }

  void export_run(const httplib::Request& req, httplib::Response& res) {
    const std::string id = run_id_param(req);
    const std::string format = req.has_param("format") ? param(req, "format") : "json";
    if (format != "json" && format != "trace") throw HttpError{400, "format: json or trace"};
    std::vector<HistoryEntry> history = history_of(id);
    RunInfo run = load(id);
    run.history = std::move(history);
    const Json doc = format == "trace" ? cli::trace_json(run) : cli::show_json(run);
    res.set_header("Content-Disposition", "attachment; filename=\"run-" + id +
                                              (format == "trace" ? ".trace" : "") + ".json\"");
    // As `flux runs export` writes it: one line, then a newline.
    res.status = 200;
    res.set_content(cli::dump(doc) + "\n", "application/json; charset=utf-8");
  }

  void workers(httplib::Response& res) {
    std::vector<detail::WorkerCard> cards;
    std::vector<std::string> corrupt;
    std::vector<std::optional<std::chrono::milliseconds>> ttl;
    {
      std::lock_guard lock(directory_mu);
      if (!directory) directory = std::make_unique<detail::WorkerDirectory>(url, options.prefix);
      cards = directory->live(&corrupt);
      std::vector<std::string> ids;
      for (const auto& c : cards) ids.push_back(c.id);
      ttl = directory->expires_in(ids);
    }
    send_json(res, 200, cli::workers_json(cards, ttl, corrupt));
  }

  // Actions: the token in a header (a page of another site cannot set one without CORS,
  // which this server never grants), and, when the browser says where the request comes
  // from, this dashboard's own origin.
  void authorize(const httplib::Request& req) {
    if (options.token.empty()) {
      throw HttpError{403,
                      "this dashboard is read-only: start it with --token or "
                      "FLUX_DASHBOARD_TOKEN to allow actions"};
    }
    const std::string given = req.get_header_value("X-Flux-Token");
    // Compared in constant time for equal lengths.
    bool same = given.size() == options.token.size();
    unsigned char diff = 0;
    for (std::size_t i = 0; same && i < given.size(); ++i) {
      diff |= static_cast<unsigned char>(given[i] ^ options.token[i]);
    }
    if (!same || diff != 0) {
      throw HttpError{403, given.empty() ? "this action needs the token (header X-Flux-Token)"
                                         : "wrong token (header X-Flux-Token)"};
    }
    if (req.has_header("Origin")) {
      const std::string origin = req.get_header_value("Origin");
      const std::string host = req.get_header_value("Host");
      if (host.empty() || origin != "http://" + host) {
        throw HttpError{403, "cross-origin request refused: Origin " + origin.substr(0, 100) +
                                 " is not this dashboard"};
      }
    }
    if (req.get_header_value("Sec-Fetch-Site") == "cross-site") {
      throw HttpError{403, "cross-origin request refused (Sec-Fetch-Site: cross-site)"};
    }
  }

  void action(const httplib::Request& req, httplib::Response& res) {
    authorize(req);
    const std::string id = run_id_param(req);
    const std::string verb = req.matches[2];
    std::string reason = "cancelled from the dashboard";
    if (!req.body.empty()) {
      Json body = Json::parse(req.body, nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        throw HttpError{400, "the body must be a JSON object, e.g. {\"reason\": \"...\"}"};
      }
      if (body.contains("reason")) {
        if (!body["reason"].is_string()) throw HttpError{400, "reason: expected a string"};
        reason = body["reason"].get<std::string>().substr(0, 1000);
      }
    }
    RunInfo run = load(id);
    if (verb == "cancel") {
      Runtime& rt = actions_runtime();
      const bool requested = rt.cancel(id, reason);
      std::optional<RunInfo> after = storage->get_run(id);
      send_json(res, 200,
                {{"run_id", id},
                 {"cancelled", requested},
                 {"status", after ? to_string(after->status) : "unknown"}});
      return;
    }
    // resume (an interrupted or cancelled run) and retry (a failed run, from the failed
    // step): both are Runtime::resume, which needs the pipeline's code.
    const auto rverb = verb == "retry" ? ResumeRequest::Verb::retry : ResumeRequest::Verb::resume;
    if (auto why = cli::resume_refusal(run, rverb)) throw HttpError{409, *why};
    if (!options.registry) {
      // Without the code: handed to a driver that adopts the pipeline, through the store.
      const std::string by = "flux dashboard at " + options.host + ":" + std::to_string(port) +
                             " (client " + req.remote_addr + ")";
      send_json(res, 202, cli::request_resume(*storage, run, rverb, by));
      return;
    }
    const Pipeline* pipeline = options.registry->pipeline(run.pipeline);
    if (!pipeline) {
      throw HttpError{409, "pipeline '" + run.pipeline + "' is not registered in this application"};
    }
    ResumeOptions ro;
    ro.cancelled = run.status == RunStatus::cancelled;
    RunHandle handle = actions_runtime().start_resume(id, *pipeline, ro);
    send_json(res, 202,
              {{"run_id", handle.run_id()},
               {verb == "retry" ? "retried" : "resumed", true},
               {"status", "running"}});
  }
};

Server::Server(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Server::~Server() { stop(); }

const std::string& Server::host() const noexcept { return impl_->options.host; }
std::uint16_t Server::port() const noexcept { return static_cast<std::uint16_t>(impl_->port); }

void Server::serve() { impl_->http.listen_after_bind(); }

bool Server::serving() const { return impl_->http.is_running(); }

void Server::stop() {
  if (impl_) impl_->http.stop();
}

int serve_until_signal(Options options, const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw Error(Errc::invalid_argument,
                "--listen " + listen + ": expected host:port, e.g. 127.0.0.1:8080");
  }
  options.host = listen.substr(0, colon);
  if (options.host.size() > 2 && options.host.front() == '[') {
    options.host = options.host.substr(1, options.host.size() - 2);
  }
  const std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(port) > 65535) {
    throw Error(Errc::invalid_argument, "--listen " + listen + ": the port must be 0 to 65535");
  }
  options.port = static_cast<std::uint16_t>(std::stoi(port));
  const bool read_only = options.token.empty();
  Server server(std::move(options));
  detail::StopSignal stop;  // before the announcement: a SIGTERM sent on it stops us cleanly
  std::thread serving([&] { server.serve(); });
  // httplib ignores a stop() that comes before its loop runs: announce only once it does.
  for (int i = 0; i < 5000 && !server.serving(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const std::string& host = server.host();
  std::printf("dashboard at http://%s:%u/ (%s)\n", host.c_str(),
              static_cast<unsigned>(server.port()),
              read_only ? "read-only: no --token" : "actions need the token");
  std::fflush(stdout);
  const char* sig = stop.wait();
  server.stop();
  serving.join();
  std::fprintf(stderr, "flux: dashboard stopped (%s)\n", sig);
  return cli::code(ExitCode::ok);
}

}  // namespace flux::dashboard
