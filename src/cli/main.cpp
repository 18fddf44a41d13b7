// flux::main: the verbs of a user's binary (worker, run, resume, driver). CLI11 parses, every
// option also reads an environment variable, and every error becomes a message on stderr and
// an exit code (flux::ExitCode) — never an exception out of main.
#include "flux/main.hpp"

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "cli/common.hpp"
#include "cli/json.hpp"
#include "core/stop_signal.hpp"
#include "store/open_storage.hpp"

namespace flux {

namespace {

using cli::code;
using cli::dump;
using cli::Json;

// Options shared by the verbs that reach the store and the cluster.
struct Shared {
  std::string store;
  std::string prefix;
  std::string tls_cert, tls_key, tls_ca;
  bool allow_plaintext = false;
  bool json = false;
};

void add_store_options(CLI::App* app, Shared& s) {
  app->add_option("--store", s.store, "The store: redis://[user:password@]host:port[/db]")
      ->envname("FLUX_STORE");
  app->add_option("--prefix", s.prefix, "Key prefix in the store")
      ->envname("FLUX_KEY_PREFIX")
      ->capture_default_str();
  app->add_flag("--json", s.json, "Print one JSON document instead of text");
}

void add_tls_options(CLI::App* app, Shared& s) {
  app->add_option("--tls-cert", s.tls_cert, "PEM certificate of this process (mutual TLS)")
      ->envname("FLUX_TLS_CERT");
  app->add_option("--tls-key", s.tls_key, "PEM private key of --tls-cert")->envname("FLUX_TLS_KEY");
  app->add_option("--tls-ca", s.tls_ca, "PEM CA certificate peers must be signed by")
      ->envname("FLUX_TLS_CA");
  app->add_flag("--allow-plaintext", s.allow_plaintext,
                "Allow plaintext on an address other than loopback")
      ->envname("FLUX_ALLOW_PLAINTEXT");
}

void apply_tls(NetworkConfig& network, const Shared& s) {
  if (!s.tls_cert.empty()) network.tls.certificate = s.tls_cert;
  if (!s.tls_key.empty()) network.tls.key = s.tls_key;
  if (!s.tls_ca.empty()) network.tls.ca_file = s.tls_ca;
  if (s.allow_plaintext) network.allow_plaintext = true;
}

std::string names(const std::vector<std::string>& list) {
  if (list.empty()) return "(none)";
  std::string out;
  for (const auto& n : list) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// A pipeline by name, or the usage error listing the registered ones.
const Pipeline& find_pipeline(const Registry& registry, const std::string& name) {
  if (const Pipeline* p = registry.pipeline(name)) return *p;
  throw Error(Errc::invalid_argument, "unknown pipeline '" + name + "'; registered pipelines: " +
                                          names(registry.pipeline_names()));
}

Json result_json(const RunResult& r) {
  Json out;
  out["run_id"] = r.run_id;
  out["status"] = to_string(r.status);
  out["output"] = cli::to_json(r.output);
  if (r.error) {
    out["error"] = {
        {"node", r.error->node}, {"step", r.error->step}, {"message", r.error->message}};
  } else {
    out["error"] = nullptr;
  }
  return out;
}

int result_code(RunStatus status) {
  return status == RunStatus::completed ? code(ExitCode::ok) : code(ExitCode::failed);
}

// Prints a run's outcome as text: the output as JSON on stdout, or the failure on stderr.
void print_result(const std::string& program, const RunResult& r) {
  if (r.ok()) {
    std::printf("%s\n", dump(cli::to_json(r.output)).c_str());
  } else {
    std::fprintf(stderr, "%s: run %s %s: %s\n", program.c_str(), r.run_id.c_str(),
                 to_string(r.status), r.error ? r.error->message.c_str() : "(no error recorded)");
  }
}

// ---- worker ---------------------------------------------------------------------------------

struct WorkerArgs {
  Shared shared;
  WorkerConfig config;
  double drain_grace_s = 0;
};

int worker_verb(const std::string& program, const Registry& registry, WorkerArgs& a) {
  WorkerConfig config = a.config;
  if (!a.shared.store.empty()) config.store = a.shared.store;
  if (!a.shared.prefix.empty()) config.key_prefix = a.shared.prefix;
  if (a.drain_grace_s > 0) {
    config.drain_grace = std::chrono::milliseconds(static_cast<long long>(a.drain_grace_s * 1000));
  }
  apply_tls(config.network, a.shared);
  detail::StopSignal stop;  // caught from before "serving" is said: none is lost
  Worker worker(registry, config);
  const std::vector<std::string> nodes = registry.node_names();
  if (a.shared.json) {
    Json j{{"worker", worker.id()},
           {"host", config.listen_host},
           {"port", worker.port()},
           {"nodes", nodes}};
    std::printf("%s\n", dump(j).c_str());
  } else {
    std::printf("worker %s serving", worker.id().c_str());
    for (const std::string& name : nodes) std::printf(" %s", name.c_str());
    std::printf(" on %s:%u\n", config.listen_host.c_str(), static_cast<unsigned>(worker.port()));
  }
  std::fflush(stdout);
  const char* sig = stop.wait();  // SIGTERM / SIGINT: drain, withdraw, return
  std::fprintf(stderr, "flux: worker %s: %s, draining\n", worker.id().c_str(), sig);
  worker.drain();
  std::fprintf(stderr, "%s: worker %s drained\n", program.c_str(), worker.id().c_str());
  return code(ExitCode::ok);
}

// ---- run, resume, driver -------------------------------------------------------------------

struct DriverArgs {
  Shared shared;
  bool cluster = false;
  std::vector<std::string> local_nodes;
  std::string metrics;  // Config::metrics_listen (driver only)
};

Config driver_config(const MainOptions& options, const DriverArgs& a, bool cluster) {
  Config config = options.config;
  if (!a.shared.store.empty()) config.store = a.shared.store;
  if (!a.shared.prefix.empty()) config.key_prefix = a.shared.prefix;
  if (cluster) config.cluster.enabled = true;
  for (const auto& n : a.local_nodes) config.cluster.local_nodes.insert(n);
  apply_tls(config.cluster.network, a.shared);
  if (!a.metrics.empty()) config.metrics_listen = a.metrics;
  return config;
}

struct RunArgs {
  DriverArgs driver;
  std::string pipeline;
  std::string input = "null";
  bool wait = false;
  bool submit = false;
  double timeout_s = 0;
};

// --submit: the run is stored without an owner, which makes it an orphan at once; a driver
// adopting the pipeline resumes it from its first step (its lease decides which driver).
int submit(const std::string& program, const Config& config, const Pipeline& pipeline, Value input,
           const RunArgs& a) {
  const std::string url = detail::resolve_store_url(config.store);
  if (url.rfind("redis://", 0) != 0) {
    throw Error(Errc::invalid_argument,
                "--submit hands the run to a driver through the store, which must be Redis "
                "(--store redis://... or FLUX_STORE)");
  }
  std::shared_ptr<Storage> store = detail::open_storage(config);
  RunInfo run;
  run.id = cli::new_run_id();
  run.pipeline = pipeline.name();
  run.fingerprint = pipeline.fingerprint();
  run.status = RunStatus::running;
  run.created = run.updated =
      std::chrono::time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now());
  run.input = std::move(input);
  run.history_values = config.history_values;
  store->put_run(run);
  if (!a.wait) {
    if (a.driver.shared.json) {
      std::printf("%s\n", dump(Json{{"run_id", run.id}, {"status", "submitted"}}).c_str());
    } else {
      std::printf("%s\n", run.id.c_str());
    }
    return code(ExitCode::ok);
  }
  if (!a.driver.shared.json) {
    std::printf("%s\n", run.id.c_str());
    std::fflush(stdout);
  }
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long long>(a.timeout_s * 1000));
  for (;;) {
    std::optional<RunInfo> now = store->get_run(run.id);
    if (now && now->status != RunStatus::running) {
      RunResult r{now->id, now->status, now->output, now->error};
      if (a.driver.shared.json) {
        std::printf("%s\n", dump(result_json(r)).c_str());
      } else {
        print_result(program, r);
      }
      return result_code(r.status);
    }
    if (a.timeout_s > 0 && std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr,
                   "%s: run %s has not ended within %.3g s (--timeout); it goes on (a driver "
                   "adopting pipeline '%s' runs it)\n",
                   program.c_str(), run.id.c_str(), a.timeout_s, pipeline.name().c_str());
      return code(ExitCode::timed_out);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int run_verb(const std::string& program, const Registry& registry, const MainOptions& options,
             RunArgs& a) {
  const Pipeline& pipeline = find_pipeline(registry, a.pipeline);
  Value input = cli::parse_input(a.input);
  Config config = driver_config(options, a.driver, a.driver.cluster);
  if (a.submit) return submit(program, config, pipeline, std::move(input), a);
  Runtime rt(config);
  RunHandle handle = rt.start_value(pipeline, std::move(input));
  if (!a.driver.shared.json) {
    std::printf("%s\n", handle.run_id().c_str());
    std::fflush(stdout);
  }
  RunResult r = handle.wait();
  if (a.driver.shared.json) {
    std::printf("%s\n", dump(a.wait ? result_json(r)
                                    : Json{{"run_id", r.run_id}, {"status", to_string(r.status)}})
                            .c_str());
  } else if (a.wait) {
    print_result(program, r);
  } else if (!r.ok()) {
    print_result(program, r);
  }
  return result_code(r.status);
}

struct ResumeArgs {
  DriverArgs driver;
  std::string run_id;
  bool orphans = false;
};

int resume_one(const std::string& program, const Registry& registry, Runtime& rt,
               const ResumeArgs& a) {
  std::optional<RunInfo> info = rt.storage().get_run(a.run_id);
  if (!info) throw Error(Errc::not_found, "run " + a.run_id + " is not in the store");
  const Pipeline& pipeline = find_pipeline(registry, info->pipeline);
  RunResult r = rt.resume(a.run_id, pipeline);
  if (a.driver.shared.json) {
    std::printf("%s\n", dump(result_json(r)).c_str());
  } else {
    std::printf("%s\n", r.run_id.c_str());
    print_result(program, r);
  }
  return result_code(r.status);
}

int resume_orphans(const std::string& program, const Registry& registry, Runtime& rt,
                   const ResumeArgs& a) {
  Json runs = Json::array(), skipped = Json::array();
  bool all_completed = true;
  RunFilter filter{.limit = 100};
  std::vector<RunInfo> orphans;
  std::vector<std::string> corrupt;
  do {
    RunPage page = rt.list_orphans_page(filter);
    for (auto& run : page.runs) orphans.push_back(std::move(run));
    corrupt.insert(corrupt.end(), page.corrupt_keys.begin(), page.corrupt_keys.end());
    filter.cursor = page.next_cursor;
  } while (!filter.cursor.empty());
  for (const std::string& key : corrupt) {
    skipped.push_back({{"key", key}, {"reason", "corrupt record"}});
    if (!a.driver.shared.json) {
      std::fprintf(stderr, "%s: skipped %s: the record cannot be read\n", program.c_str(),
                   key.c_str());
    }
  }
  for (const RunInfo& orphan : orphans) {
    const Pipeline* pipeline = registry.pipeline(orphan.pipeline);
    std::string reason;
    if (!pipeline) {
      reason = "pipeline '" + orphan.pipeline + "' is not registered in this binary";
    } else {
      try {
        RunResult r = rt.resume(orphan.id, *pipeline);
        runs.push_back(result_json(r));
        all_completed = all_completed && r.ok();
        if (!a.driver.shared.json) {
          std::printf("%s %s", r.run_id.c_str(), to_string(r.status));
          if (r.ok()) {
            std::printf(" %s\n", dump(cli::to_json(r.output)).c_str());
          } else {
            std::printf(" %s\n", cli::one_line(r.error ? r.error->message : "").c_str());
          }
        }
        continue;
      } catch (const Error& e) {
        reason = e.what();  // another driver took it first (run_owned), another fingerprint...
      }
    }
    skipped.push_back({{"run_id", orphan.id}, {"pipeline", orphan.pipeline}, {"reason", reason}});
    if (!a.driver.shared.json) {
      std::fprintf(stderr, "%s: skipped run %s: %s\n", program.c_str(), orphan.id.c_str(),
                   reason.c_str());
    }
  }
  if (a.driver.shared.json) {
    std::printf("%s\n", dump(Json{{"resumed", runs}, {"skipped", skipped}}).c_str());
  } else if (orphans.empty() && corrupt.empty()) {
    std::printf("no orphans\n");
  }
  return all_completed ? code(ExitCode::ok) : code(ExitCode::failed);
}

int resume_verb(const std::string& program, const Registry& registry, const MainOptions& options,
                ResumeArgs& a) {
  if (a.orphans == !a.run_id.empty()) {
    throw Error(Errc::invalid_argument, "resume takes a RUN_ID or --orphans (one of them)");
  }
  Config config = driver_config(options, a.driver, a.driver.cluster);
  Runtime rt(config);
  if (a.orphans) return resume_orphans(program, registry, rt, a);
  return resume_one(program, registry, rt, a);
}

int driver_verb(const std::string& program, const Registry& registry, const MainOptions& options,
                DriverArgs& a, bool local) {
  Config config = driver_config(options, a, !local);
  config.cluster.adopt = registry;
  if (local) {
    // No workers: this process executes every step itself, and still adopts.
    config.cluster.enabled = false;
  }
  if (detail::resolve_store_url(config.store).rfind("redis://", 0) != 0) {
    throw Error(Errc::invalid_argument,
                "driver needs a Redis store (--store redis://... or FLUX_STORE): the runs it "
                "adopts and the workers it uses are found there");
  }
  detail::StopSignal stop;  // caught from before the driver says it is adopting
  Runtime rt(config);
  const std::vector<std::string> pipelines = registry.pipeline_names();
  if (a.shared.json) {
    std::printf("%s\n", dump(Json{{"driver", rt.owner_id()},
                                  {"pipelines", pipelines},
                                  {"cluster", config.cluster.enabled}})
                            .c_str());
  } else {
    std::printf("driver %s adopting %s%s\n", rt.owner_id().c_str(), names(pipelines).c_str(),
                config.cluster.enabled ? " (node steps on workers)" : " (node steps here)");
  }
  std::fflush(stdout);
  const char* sig = stop.wait();
  std::fprintf(stderr, "%s: driver %s: %s, finishing the runs in flight\n", program.c_str(),
               rt.owner_id().c_str(), sig);
  return code(ExitCode::ok);  // ~Runtime waits for the runs in flight
}

int dispatch(int argc, char** argv, const Registry& registry, const MainOptions& options) {
  std::string program = argc > 0 ? argv[0] : "flux-app";
  if (auto slash = program.rfind('/'); slash != std::string::npos) program.erase(0, slash + 1);

  CLI::App app{"A Flux application: serve its nodes, run and resume its pipelines.", program};
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 completed, 1 failed, 2 usage, 3 store unreachable, 4 unknown run, "
      "5 corrupt record, 6 run owned by another process, 7 timed out.");

  WorkerArgs worker_args;
  worker_args.config = options.worker;
  auto* worker = app.add_subcommand("worker",
                                    "Serve this binary's nodes to drivers until "
                                    "SIGTERM/SIGINT, then drain");
  add_store_options(worker, worker_args.shared);
  worker->add_option("--listen", worker_args.config.listen_host, "Address to listen on")
      ->envname("FLUX_LISTEN")
      ->capture_default_str();
  worker
      ->add_option("--metrics", worker_args.config.metrics_listen,
                   "Serve Prometheus metrics at host:port (GET /metrics), e.g. 127.0.0.1:9464")
      ->envname("FLUX_METRICS");
  worker->add_option("--port", worker_args.config.port, "Port to listen on (0: any free one)")
      ->envname("FLUX_PORT")
      ->capture_default_str();
  worker
      ->add_option("--advertise", worker_args.config.advertise_host,
                   "Address drivers connect to (default: --listen)")
      ->envname("FLUX_ADVERTISE");
  worker
      ->add_option("--capacity", worker_args.config.capacity,
                   "Steps executed at once (0: one per core)")
      ->envname("FLUX_CAPACITY")
      ->capture_default_str();
  worker->add_option("--id", worker_args.config.id, "This worker's id (default host:pid:nonce)")
      ->envname("FLUX_ID");
  worker
      ->add_option("--drain-grace", worker_args.drain_grace_s,
                   "Seconds a draining worker waits for its steps (default 30)")
      ->envname("FLUX_DRAIN_GRACE");
  add_tls_options(worker, worker_args.shared);

  auto add_driver_options = [](CLI::App* sub, DriverArgs& d, bool cluster_flag) {
    add_store_options(sub, d.shared);
    if (cluster_flag) {
      sub->add_flag("--cluster", d.cluster, "Place node steps on workers (a cluster driver)")
          ->envname("FLUX_CLUSTER");
    }
    sub->add_option("--local-nodes", d.local_nodes,
                    "Nodes executed here, not on workers (comma-separated)")
        ->delimiter(',')
        ->envname("FLUX_LOCAL_NODES");
    add_tls_options(sub, d.shared);
  };

  RunArgs run_args;
  auto* run = app.add_subcommand("run",
                                 "Run a registered pipeline; prints the run id (and "
                                 "with --wait the output, as JSON)");
  run->add_option("pipeline", run_args.pipeline, "The pipeline's registered name")->required();
  run->add_option("--input", run_args.input, "The run's input as JSON (default null)");
  run->add_flag("--wait", run_args.wait, "Print the output when the run ends");
  run->add_flag("--submit", run_args.submit,
                "Hand the run to a driver through the store and return (with --wait: wait "
                "for it)");
  run->add_option("--timeout", run_args.timeout_s,
                  "With --submit --wait: give up waiting after this many seconds (exit 7)");
  add_driver_options(run, run_args.driver, true);

  ResumeArgs resume_args;
  auto* resume = app.add_subcommand("resume", "Finish an interrupted or failed run here");
  resume->add_option("run_id", resume_args.run_id, "The run to resume");
  resume->add_flag("--orphans", resume_args.orphans,
                   "Resume every orphan (running, owner gone) of a registered pipeline");
  add_driver_options(resume, resume_args.driver, true);

  DriverArgs driver_args;
  bool driver_local = false;
  auto* driver = app.add_subcommand(
      "driver",
      "Adopt orphaned and submitted runs of the registered pipelines, placing node "
      "steps on workers, until SIGTERM/SIGINT");
  add_driver_options(driver, driver_args, false);
  driver->add_flag("--local", driver_local, "Execute every step here instead of on workers")
      ->envname("FLUX_LOCAL");
  driver
      ->add_option("--metrics", driver_args.metrics,
                   "Serve Prometheus metrics at host:port (GET /metrics), e.g. 127.0.0.1:9464")
      ->envname("FLUX_METRICS");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? code(ExitCode::ok) : code(ExitCode::usage);
  }

  // The verb's store and output mode, for errors.
  const Shared& shared = *worker   ? worker_args.shared
                         : *run    ? run_args.driver.shared
                         : *resume ? resume_args.driver.shared
                                   : driver_args.shared;
  const std::string store = !shared.store.empty() ? shared.store
                            : *worker             ? options.worker.store
                                                  : options.config.store;
  try {
    if (*worker) return worker_verb(program, registry, worker_args);
    if (*run) return run_verb(program, registry, options, run_args);
    if (*resume) return resume_verb(program, registry, options, resume_args);
    if (*driver) return driver_verb(program, registry, options, driver_args, driver_local);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    // A store error where the store answers now is about the data (a record that cannot be
    // read: 5); otherwise the store is unreachable (3).
    const int rc = e.code() == Errc::storage
                       ? cli::classify_storage_error(detail::resolve_store_url(store))
                       : cli::exit_code_for(e);
    if (shared.json)
      std::printf("%s\n", dump(Json{{"error", e.what()}, {"exit_code", rc}}).c_str());
    return rc;
  }
  return code(ExitCode::usage);
}

}  // namespace

int main(int argc, char** argv, const Registry& registry, const MainOptions& options) {
  try {
    return dispatch(argc, argv, registry, options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argc > 0 ? argv[0] : "flux", e.what());
    return cli::code(ExitCode::failed);
  }
}

}  // namespace flux
