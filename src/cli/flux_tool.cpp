// The `flux` tool: reads a shared store (Redis) without any user code — runs, their history,
// workers, orphans. Every verb prints a table that fits 100 columns, or with --json one JSON
// document (src/cli/json.hpp has the field names), and exits with flux::ExitCode.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <thread>

#include "cli/common.hpp"
#include "cli/json.hpp"
#include "cli/resume_request.hpp"
#include "cluster/worker_directory.hpp"
#include "dashboard/server.hpp"
#include "flux/main.hpp"
#include "flux/runtime.hpp"
#include "store/open_storage.hpp"

namespace {

using flux::ExitCode;
using flux::cli::code;
using flux::cli::dump;
using flux::cli::Json;
using flux::cli::show_json;
using flux::cli::Table;

struct Global {
  std::string store;
  std::string prefix = "flux";
  bool json = false;
  std::string url;  // resolved
};

// A failure that has already chosen its exit code (and its message).
struct Exit {
  int code;
  std::string message;
};

std::shared_ptr<flux::Storage> open_store(Global& g) {
  g.url = flux::cli::store_url(g.store);
  if (g.url.empty()) {
    throw Exit{code(ExitCode::usage), "no store: give --store redis://host:port or set FLUX_STORE"};
  }
  if (g.url.rfind("redis://", 0) != 0) {
    throw Exit{code(ExitCode::usage),
               "the flux tool reads a shared store: --store must be redis://[user:password@]"
               "host:port[/db]"};
  }
  flux::Config config;
  config.store = g.url;
  config.key_prefix = g.prefix;
  config.store_retry_deadline = std::chrono::seconds(2);  // a tool answers, or says why not
  return flux::detail::open_storage(config);
}

// Runs a read; an Error(storage) becomes exit 3 (unreachable) or 5 (the record is corrupt).
template <class F>
auto read(const Global& g, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const flux::Error& e) {
    if (e.code() != flux::Errc::storage) throw;
    throw Exit{flux::cli::classify_storage_error(g.url), e.what()};
  }
}

// "2026-12-01 03:04:05" (UTC): the table form of a time.
std::string short_time(flux::Timestamp t) {
  std::string s = flux::cli::format_time(t);  // 2026-12-01T03:04:05.123456Z
  if (s.size() < 19) return s;
  s = s.substr(0, 19);
  s[10] = ' ';
  return s;
}

std::string took(const flux::RunInfo& run) {
  if (!run.finished) return "";
  return flux::cli::format_duration(*run.finished - run.created);
}

// The run id in a key "<prefix>:{<id>}:run".
std::string id_of_key(const std::string& key) {
  auto open = key.find('{'), close = key.find('}');
  if (open == std::string::npos || close == std::string::npos || close < open) return key;
  return key.substr(open + 1, close - open - 1);
}

Json corrupt_json(const std::vector<std::string>& keys) {
  Json out = Json::array();
  for (const std::string& k : keys) out.push_back({{"key", k}, {"run_id", id_of_key(k)}});
  return out;
}

// ---- runs list ------------------------------------------------------------------------------

struct ListArgs {
  std::string status;
  std::string pipeline;
  std::size_t limit = 20;
  std::string cursor;
};

int runs_list(Global& g, const ListArgs& a) {
  auto store = open_store(g);
  flux::RunFilter filter;
  if (!a.status.empty()) {
    if (a.status == "running")
      filter.status = flux::RunStatus::running;
    else if (a.status == "completed")
      filter.status = flux::RunStatus::completed;
    else if (a.status == "failed")
      filter.status = flux::RunStatus::failed;
    else if (a.status == "cancelled")
      filter.status = flux::RunStatus::cancelled;
    else if (a.status == "compensated")
      filter.status = flux::RunStatus::compensated;
    else if (a.status == "compensation_failed")
      filter.status = flux::RunStatus::compensation_failed;
    else {
      throw Exit{code(ExitCode::usage),
                 "--status " + a.status +
                     ": expected running, completed, failed, cancelled, compensated or "
                     "compensation_failed"};
    }
  }
  if (a.limit == 0) throw Exit{code(ExitCode::usage), "--limit must be at least 1"};
  filter.cursor = a.cursor;
  // With --pipeline, pages are read until `limit` runs match, never more than `limit` at a
  // time (so the cursor returned is exact), and at most 10,000 runs per call: a rare pipeline
  // in a big store returns a short page and a cursor, never a scan of everything.
  std::vector<flux::RunInfo> runs;
  std::vector<std::string> corrupt;
  std::size_t examined = 0;
  std::string next;
  for (;;) {
    filter.limit = a.limit - runs.size();
    flux::RunPage page = read(g, [&] { return store->list_runs_page(filter); });
    examined += page.runs.size() + page.corrupt_keys.size();
    for (auto& run : page.runs) {
      if (a.pipeline.empty() || run.pipeline == a.pipeline) runs.push_back(std::move(run));
    }
    corrupt.insert(corrupt.end(), page.corrupt_keys.begin(), page.corrupt_keys.end());
    next = page.next_cursor;
    if (next.empty() || runs.size() >= a.limit || examined >= 10'000) break;
    filter.cursor = next;
  }
  if (g.json) {
    Json list = Json::array();
    for (const auto& run : runs) list.push_back(flux::cli::run_json(run));
    std::printf("%s\n", dump(Json{{"runs", std::move(list)},
                                  {"next_cursor", next.empty() ? Json(nullptr) : Json(next)},
                                  {"corrupt", corrupt_json(corrupt)}})
                            .c_str());
    return code(ExitCode::ok);
  }
  Table table({{"ID", 36}, {"PIPELINE", 14}, {"STATUS", 9}, {"CREATED", 19}, {"ERROR", 0}});
  for (const auto& run : runs) {
    table.add({run.id, run.pipeline, flux::to_string(run.status), short_time(run.created),
               run.error ? run.error->message : ""});
  }
  for (const auto& key : corrupt) table.add({id_of_key(key), "?", "corrupt", "", "unreadable"});
  if (table.empty()) {
    std::printf("no runs\n");
  } else {
    std::fputs(table.render().c_str(), stdout);
  }
  for (const auto& key : corrupt) std::printf("corrupt record (cannot be read): %s\n", key.c_str());
  if (!next.empty()) std::printf("more: --cursor %s\n", next.c_str());
  return code(ExitCode::ok);
}

// ---- runs show / follow / export --------------------------------------------------------------

// The run and its history, or the exit that says why not (4 unknown, 5 corrupt, 3 unreachable).
flux::RunInfo load_run(const Global& g, flux::Storage& store, const std::string& id) {
  std::optional<flux::RunInfo> run = read(g, [&] { return store.get_run(id); });
  if (!run) throw Exit{code(ExitCode::not_found), "run " + id + " is not in the store"};
  run->history = read(g, [&] { return store.history(id, 0); });
  return *run;
}

Table history_table() {
  return Table({{"SEQ", 4},
                {"STEP", 9},
                {"NODE", 14},
                {"ATTEMPT", 7},
                {"WORKER", 18},
                {"DURATION", 10},
                {"STATUS", 6},
                {"ERROR", 0}});
}

void add_entry(Table& table, const flux::HistoryEntry& e) {
  table.add({std::to_string(e.seq), e.step, e.node, std::to_string(e.attempt),
             e.worker.empty() ? "(owner)" : e.worker, flux::cli::format_duration(e.duration),
             // A compensation (Node::compensate) says what it did: its step was undone.
             !e.ok() ? "failed"
             : e.type == flux::HistoryEntry::Type::compensate ? "undone"
                                                             : "ok",
             e.error.value_or("")});
}

std::string value_line(const flux::Value& v) {
  std::string s = flux::cli::one_line(dump(flux::cli::to_json(v)));
  return s.size() > 88 ? s.substr(0, 85) + "..." : s;
}

void print_run(const flux::RunInfo& run) {
  std::printf("run       %s\n", run.id.c_str());
  std::printf("pipeline  %s (fingerprint %s)\n", run.pipeline.c_str(), run.fingerprint.c_str());
  std::printf("status    %s\n", flux::to_string(run.status));
  std::printf("created   %s\n", flux::cli::format_time(run.created).c_str());
  if (run.finished) {
    std::printf("finished  %s (took %s)\n", flux::cli::format_time(*run.finished).c_str(),
                took(run).c_str());
  } else {
    std::printf("updated   %s\n", flux::cli::format_time(run.updated).c_str());
  }
  std::printf("owner     %s\n", run.owner.empty() ? "(none)" : run.owner.c_str());
  if (!run.parent_run_id.empty()) {
    std::printf("parent    %s step %s\n", run.parent_run_id.c_str(), run.parent_step.c_str());
  }
  if (run.steps_total) {
    // A running run's done count is not in its record (written at its end): its history's.
    const std::uint32_t done =
        run.steps_done ? *run.steps_done : flux::completed_steps(run.history);
    std::printf("steps     %u of %u done\n", static_cast<unsigned>(done),
                static_cast<unsigned>(*run.steps_total));
  }
  std::printf("input     %s\n", value_line(run.input).c_str());
  if (run.status == flux::RunStatus::completed) {
    std::printf("output    %s\n", value_line(run.output).c_str());
  }
  if (run.error) std::printf("error     %s\n", flux::cli::one_line(run.error->message).c_str());
}

int runs_show(Global& g, const std::string& id) {
  auto store = open_store(g);
  flux::RunInfo run = load_run(g, *store, id);
  if (g.json) {
    std::printf("%s\n", dump(show_json(run)).c_str());
    return code(ExitCode::ok);
  }
  print_run(run);
  const std::string ids[] = {id};
  auto requests = read(g, [&] { return store->resume_requests(ids); });
  if (!requests.empty() && requests[0]) {
    const flux::ResumeRequest& r = *requests[0];
    std::printf("%-9s requested by %s at %s: %s\n", flux::to_string(r.verb), r.by.c_str(),
                flux::cli::format_time(r.at).c_str(),
                r.refusal
                    ? ("refused: " + flux::cli::one_line(*r.refusal)).c_str()
                    : ("pending, for a driver adopting pipeline '" + run.pipeline + "'").c_str());
  }
  std::printf("\n");
  Table table = history_table();
  for (const auto& e : run.history) add_entry(table, e);
  if (table.empty()) {
    std::printf("no history yet\n");
  } else {
    std::fputs(table.render().c_str(), stdout);
  }
  return code(ExitCode::ok);
}

struct FollowArgs {
  std::string id;
  double timeout_s = 0;
  int interval_ms = 200;
};

int runs_follow(Global& g, const FollowArgs& a) {
  auto store = open_store(g);
  flux::RunInfo run = load_run(g, *store, a.id);
  std::size_t shown = 0;
  bool said_orphan = false;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long long>(a.timeout_s * 1000));
  if (!g.json) {
    std::printf("following run %s (pipeline %s)\n", run.id.c_str(), run.pipeline.c_str());
  }
  for (;;) {
    // History first, then the record: a run that ended has all its history stored before its
    // final record, so nothing printed after "ended" is missing.
    std::vector<flux::HistoryEntry> fresh = read(g, [&] { return store->history(a.id, shown); });
    std::optional<flux::RunInfo> now = read(g, [&] { return store->get_run(a.id); });
    if (!now) throw Exit{code(ExitCode::not_found), "run " + a.id + " is no longer in the store"};
    if (!g.json) {
      for (const auto& e : fresh) {
        Table one = history_table();
        add_entry(one, e);
        // Each entry as its table row (without the header after the first).
        std::string rendered = one.render();
        if (shown > 0) rendered = rendered.substr(rendered.find('\n') + 1);
        std::fputs(rendered.c_str(), stdout);
        ++shown;
      }
      std::fflush(stdout);
    } else {
      shown += fresh.size();
    }
    if (now->status != flux::RunStatus::running) {
      now->history = read(g, [&] { return store->history(a.id, 0); });
      if (g.json) {
        std::printf("%s\n", dump(show_json(*now)).c_str());
      } else if (now->status == flux::RunStatus::completed) {
        std::printf("run %s completed: %s\n", now->id.c_str(), value_line(now->output).c_str());
      } else {
        std::printf("run %s %s: %s\n", now->id.c_str(), flux::to_string(now->status),
                    now->error ? flux::cli::one_line(now->error->message).c_str() : "");
      }
      return now->status == flux::RunStatus::completed ? code(ExitCode::ok)
                                                       : code(ExitCode::failed);
    }
    if (!said_orphan && !read(g, [&] { return store->lease_holder(a.id); })) {
      said_orphan = true;
      std::fprintf(stderr,
                   "flux: run %s has no owner now (an orphan): it goes on when a driver adopts "
                   "it or `resume` runs it\n",
                   a.id.c_str());
    }
    if (a.timeout_s > 0 && std::chrono::steady_clock::now() >= deadline) {
      throw Exit{code(ExitCode::timed_out),
                 "run " + a.id + " has not ended within " +
                     flux::cli::format_duration(
                         std::chrono::milliseconds(static_cast<long long>(a.timeout_s * 1000))) +
                     " (--timeout)"};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(a.interval_ms));
  }
}

struct ExportArgs {
  std::string id;
  std::string format = "json";
  std::string output;
};

int runs_export(Global& g, const ExportArgs& a) {
  auto store = open_store(g);
  flux::RunInfo run = load_run(g, *store, a.id);
  const Json doc = a.format == "trace" ? flux::cli::trace_json(run) : show_json(run);
  const std::string text = dump(doc) + "\n";
  if (a.output.empty() || a.output == "-") {
    std::fputs(text.c_str(), stdout);
    return code(ExitCode::ok);
  }
  std::ofstream out(a.output, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw Exit{code(ExitCode::usage), "cannot write " + a.output};
  if (g.json) {
    std::printf("%s\n",
                dump(Json{{"run_id", run.id}, {"format", a.format}, {"file", a.output}}).c_str());
  } else {
    std::printf("run %s exported as %s to %s\n", run.id.c_str(), a.format.c_str(),
                a.output.c_str());
  }
  return code(ExitCode::ok);
}

// ---- runs cancel ------------------------------------------------------------------------------

struct CancelArgs {
  std::string id;
  std::string reason = "cancelled with the flux tool";
};

// Through a Runtime on the store, so that the tool cancels as any process sharing it does: the
// owner is asked through the store (and ends the run within its lease renewal), an orphan is
// recorded cancelled here.
int runs_cancel(Global& g, const CancelArgs& a) {
  auto store = open_store(g);
  (void)load_run(g, *store, a.id);  // exit 4 for an unknown run, 5 for a corrupt record
  flux::Config config;
  config.store = g.url;
  config.key_prefix = g.prefix;
  config.store_retry_deadline = std::chrono::seconds(2);
  config.threads = 1;
  bool requested = false;
  std::optional<flux::RunInfo> after;
  read(g, [&] {
    flux::Runtime rt(config);
    requested = rt.cancel(a.id, a.reason);
    after = rt.get_run(a.id);
    return 0;
  });
  const std::string status = after ? flux::to_string(after->status) : "unknown";
  if (g.json) {
    std::printf("%s\n",
                dump(Json{{"run_id", a.id}, {"cancelled", requested}, {"status", status}}).c_str());
  } else if (!requested) {
    std::printf("run %s had already ended: %s\n", a.id.c_str(), status.c_str());
  } else if (status == "cancelled") {
    std::printf("run %s cancelled\n", a.id.c_str());
  } else {
    std::printf("run %s: cancel requested; its owner stops it at its next lease renewal\n",
                a.id.c_str());
  }
  return code(ExitCode::ok);
}

// ---- runs resume / retry ----------------------------------------------------------------------

// The tool has no pipelines: the request goes through the store to a driver that adopts the
// run's pipeline (flux::main's `driver` verb), which resumes the run and clears the request —
// or, if it cannot, records why (`flux runs show` and the dashboard print it).
int runs_resume(Global& g, const std::string& id, flux::ResumeRequest::Verb verb) {
  auto store = open_store(g);
  flux::RunInfo run = load_run(g, *store, id);  // exit 4 for an unknown run, 5 for a corrupt one
  char host[256] = "?";
  ::gethostname(host, sizeof host - 1);
  const std::string by = std::string("flux runs ") + flux::to_string(verb) + " on " + host +
                         " (pid " + std::to_string(::getpid()) + ")";
  Json answer;
  try {
    answer = read(g, [&] { return flux::cli::request_resume(*store, run, verb, by); });
  } catch (const flux::Error& e) {
    throw Exit{flux::cli::exit_code_for(e), e.what()};  // 2: its status refuses it; 6: owned
  }
  if (g.json) {
    std::printf("%s\n", dump(answer).c_str());
  } else {
    std::printf("%s; follow it with `flux runs follow %s`\n",
                answer.at("message").get<std::string>().c_str(), id.c_str());
  }
  return code(ExitCode::ok);
}

// ---- workers, orphans -------------------------------------------------------------------------

/// A short duration for a narrow column: "0.4 s", "12.0 s", then "12m 05s".
std::string short_duration(std::chrono::nanoseconds d) {
  if (d < std::chrono::seconds(60)) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.1f s", std::max(0.0, d.count() / 1e9));
    return buf;
  }
  return flux::cli::format_duration(d);
}

int workers(Global& g) {
  (void)open_store(g);  // the same checks and messages as every verb
  std::vector<flux::detail::WorkerCard> cards;
  std::vector<std::string> corrupt;
  std::vector<std::optional<std::chrono::milliseconds>> ttl;
  read(g, [&] {
    flux::detail::WorkerDirectory directory(g.url, g.prefix);
    cards = directory.live(&corrupt);
    std::vector<std::string> ids;
    for (const auto& c : cards) ids.push_back(c.id);
    ttl = directory.expires_in(ids);
    return 0;
  });
  if (g.json) {
    std::printf("%s\n", dump(flux::cli::workers_json(cards, ttl, corrupt)).c_str());
    return code(ExitCode::ok);
  }
  Table table({{"ID", 24},
               {"ADDRESS", 21},
               {"LOAD", 7},
               {"TLS", 3},
               {"UP", 8},
               {"BEAT", 7},
               {"TTL", 7},
               {"NODES", 0}});
  const auto now = std::chrono::system_clock::now();
  for (std::size_t i = 0; i < cards.size(); ++i) {
    const auto& c = cards[i];
    std::string nodes;
    for (const auto& [name, sig] : c.nodes) nodes += (nodes.empty() ? "" : ", ") + name;
    // LOAD: steps executing or queued / capacity, at the last heartbeat (BEAT ago).
    table.add({c.id, c.host + ":" + std::to_string(c.port),
               std::to_string(c.busy) + "/" + std::to_string(c.capacity), c.tls ? "yes" : "no",
               short_duration(now - c.started), short_duration(now - c.heartbeat),
               ttl.at(i) ? short_duration(*ttl[i]) : "gone", nodes});
  }
  if (table.empty() && corrupt.empty()) {
    std::printf("no workers\n");
  } else if (!table.empty()) {
    std::fputs(table.render().c_str(), stdout);
  }
  for (const auto& k : corrupt)
    std::printf("corrupt worker card (cannot be read): %s\n", k.c_str());
  return code(ExitCode::ok);
}

int orphans(Global& g) {
  auto store = open_store(g);
  std::vector<flux::RunInfo> found;
  std::vector<std::string> corrupt;
  flux::RunFilter filter{.status = flux::RunStatus::running, .limit = 200};
  do {
    flux::RunPage page = read(g, [&] { return store->list_runs_page(filter); });
    std::vector<std::string> ids;
    for (const auto& r : page.runs) ids.push_back(r.id);
    auto holders = read(g, [&] { return store->lease_holders(ids); });
    for (std::size_t i = 0; i < page.runs.size() && i < holders.size(); ++i) {
      if (!holders[i]) found.push_back(std::move(page.runs[i]));
    }
    corrupt.insert(corrupt.end(), page.corrupt_keys.begin(), page.corrupt_keys.end());
    filter.cursor = page.next_cursor;
  } while (!filter.cursor.empty());
  if (g.json) {
    Json list = Json::array();
    for (const auto& run : found) list.push_back(flux::cli::run_json(run));
    std::printf(
        "%s\n",
        dump(Json{{"orphans", std::move(list)}, {"corrupt", corrupt_json(corrupt)}}).c_str());
    return code(ExitCode::ok);
  }
  Table table({{"ID", 36}, {"PIPELINE", 16}, {"CREATED", 19}, {"LAST OWNER", 0}});
  for (const auto& run : found) {
    table.add({run.id, run.pipeline, short_time(run.created),
               run.owner.empty() ? "(none: submitted)" : run.owner});
  }
  if (table.empty() && corrupt.empty()) {
    std::printf("no orphans\n");
  } else if (!table.empty()) {
    std::fputs(table.render().c_str(), stdout);
  }
  for (const auto& key : corrupt) std::printf("corrupt record (cannot be read): %s\n", key.c_str());
  return code(ExitCode::ok);
}

// ---- dashboard ---------------------------------------------------------------------------------

struct DashboardArgs {
  std::string listen = "127.0.0.1:8080";
  std::string token;
};

int dashboard(Global& g, const DashboardArgs& a) {
  (void)open_store(g);  // the same checks and messages as every verb
  flux::dashboard::Options options;
  options.store = g.url;
  options.prefix = g.prefix;
  options.token = a.token;
  return read(g, [&] { return flux::dashboard::serve_until_signal(options, a.listen); });
}

int dispatch(int argc, char** argv) {
  CLI::App app{"flux: inspect the runs and workers of a Flux store (Redis).", "flux"};
  app.require_subcommand(1);
  app.fallthrough();
  app.footer(
      "Exit codes: 0 ok (a followed run completed), 1 a followed run failed, 2 usage, 3 store "
      "unreachable, 4 unknown run, 5 corrupt record, 7 timed out.");
  Global g;
  app.add_option("--store", g.store, "The store: redis://[user:password@]host:port[/db]")
      ->envname("FLUX_STORE");
  app.add_option("--prefix", g.prefix, "Key prefix in the store")
      ->envname("FLUX_KEY_PREFIX")
      ->capture_default_str();
  app.add_flag("--json", g.json, "Print one JSON document instead of text");

  auto* runs =
      app.add_subcommand("runs", "Runs: list, show, follow, export, cancel, resume, retry");
  runs->require_subcommand(1);
  runs->fallthrough();

  ListArgs list_args;
  auto* list = runs->add_subcommand("list", "Runs, newest first");
  list->add_option("--status", list_args.status, "Only runs with this status")
      ->check(CLI::IsMember({"running", "completed", "failed", "cancelled", "compensated",
                             "compensation_failed"}));
  list->add_option("--pipeline", list_args.pipeline, "Only runs of this pipeline");
  list->add_option("--limit", list_args.limit, "At most this many runs")->capture_default_str();
  list->add_option("--cursor", list_args.cursor, "Where the page starts (printed by the last one)");
  list->fallthrough();

  std::string show_id;
  auto* show = runs->add_subcommand("show", "A run's record, then its history as a table");
  show->add_option("run_id", show_id, "The run")->required();
  show->fallthrough();

  FollowArgs follow_args;
  auto* follow = runs->add_subcommand(
      "follow", "Print a run's history as it grows, until it ends (exit 0 completed, 1 failed)");
  follow->add_option("run_id", follow_args.id, "The run")->required();
  follow->add_option("--timeout", follow_args.timeout_s,
                     "Give up after this many seconds (exit 7)");
  follow->add_option("--interval-ms", follow_args.interval_ms, "How often the store is read")
      ->capture_default_str()
      ->check(CLI::Range(10, 60000));
  follow->fallthrough();

  ExportArgs export_args;
  auto* exp = runs->add_subcommand(
      "export", "A run as JSON, or as a Chrome trace (chrome://tracing, Perfetto)");
  exp->add_option("run_id", export_args.id, "The run")->required();
  exp->add_option("--format", export_args.format, "json or trace")
      ->capture_default_str()
      ->check(CLI::IsMember({"json", "trace"}));
  exp->add_option("--output,-o", export_args.output, "Write to this file instead of stdout");
  exp->fallthrough();

  CancelArgs cancel_args;
  auto* cancel = runs->add_subcommand(
      "cancel",
      "Cancel a running run, wherever it runs: no new step starts, running ones see "
      "ctx.cancelled(), it ends with status cancelled (exit 0 also if it had already ended)");
  cancel->add_option("run_id", cancel_args.id, "The run")->required();
  cancel->add_option("--reason", cancel_args.reason, "Recorded in the run's history and error")
      ->capture_default_str();
  cancel->fallthrough();

  std::string resume_id, retry_id;
  auto* resume = runs->add_subcommand(
      "resume",
      "Resume an interrupted or cancelled run: the request is stored for a driver adopting its "
      "pipeline (the tool has no pipelines), which resumes it and clears the request");
  resume->add_option("run_id", resume_id, "The run")->required();
  resume->fallthrough();
  auto* retry = runs->add_subcommand(
      "retry",
      "Retry a failed run from the step that failed, through a driver adopting its pipeline "
      "(as resume)");
  retry->add_option("run_id", retry_id, "The run")->required();
  retry->fallthrough();

  auto* workers_cmd = app.add_subcommand(
      "workers",
      "Live workers: address, load (steps executing or queued / capacity) at the last heartbeat, "
      "time since it, time left before the card expires, nodes");
  workers_cmd->fallthrough();
  auto* orphans_cmd =
      app.add_subcommand("orphans", "Running runs whose owner is gone (lease expired)");
  orphans_cmd->fallthrough();

  DashboardArgs dashboard_args;
  auto* dashboard_cmd = app.add_subcommand(
      "dashboard",
      "Serve a web dashboard of the store's runs and workers, and its JSON API under /api/ "
      "(README, \"Dashboard\"), until SIGTERM or SIGINT");
  dashboard_cmd
      ->add_option("--listen", dashboard_args.listen, "host:port to serve on (port 0: any)")
      ->capture_default_str();
  dashboard_cmd
      ->add_option("--token", dashboard_args.token,
                   "Allow actions (cancel) to requests that send it in header X-Flux-Token; "
                   "without it the dashboard is read-only")
      ->envname("FLUX_DASHBOARD_TOKEN");
  dashboard_cmd->fallthrough();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? code(ExitCode::ok) : code(ExitCode::usage);
  }
  try {
    if (*list) return runs_list(g, list_args);
    if (*show) return runs_show(g, show_id);
    if (*follow) return runs_follow(g, follow_args);
    if (*exp) return runs_export(g, export_args);
    if (*cancel) return runs_cancel(g, cancel_args);
    if (*resume) return runs_resume(g, resume_id, flux::ResumeRequest::Verb::resume);
    if (*retry) return runs_resume(g, retry_id, flux::ResumeRequest::Verb::retry);
    if (*workers_cmd) return workers(g);
    if (*orphans_cmd) return orphans(g);
    if (*dashboard_cmd) return dashboard(g, dashboard_args);
  } catch (const Exit& e) {
    std::fprintf(stderr, "flux: %s\n", e.message.c_str());
    if (g.json) {
      std::printf("%s\n", dump(Json{{"error", e.message}, {"exit_code", e.code}}).c_str());
    }
    return e.code;
  } catch (const flux::Error& e) {
    std::fprintf(stderr, "flux: %s\n", e.what());
    return flux::cli::exit_code_for(e);
  }
  return code(ExitCode::usage);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flux: %s\n", e.what());
    return code(ExitCode::failed);
  }
}
