#pragma once
/// \file
/// `flux::main`: the standard command line of a Flux application — one call in the user's
/// `main` turns a binary that registers its pipelines into a worker, a driver and a client:
///
/// ```cpp not-compiled: a whole program
/// int main(int argc, char** argv) {
///   flux::Registry registry;
///   registry.add(make_pipeline().named("wordcount"));
///   return flux::main(argc, argv, registry);
/// }
/// ```
///
/// Verbs (`app --help`, `app VERB --help` for every option):
///
/// | verb | what it does |
/// |---|---|
/// | `worker` | serves the registry's nodes to drivers until SIGTERM/SIGINT, then drains |
/// | `run PIPELINE --input JSON` | starts a run, prints its id; `--wait` also prints the output |
/// | `run ... --submit` | hands the run to a `driver` through the store and returns at once |
/// | `resume RUN_ID`, `resume --orphans` | finishes interrupted or failed runs |
/// | `driver` | adopts orphans and submitted runs, places node steps on workers |
///
/// Every option can also come from an environment variable (named in `--help`: FLUX_STORE,
/// FLUX_LISTEN, FLUX_CAPACITY, ...), so a container needs no flags; a flag wins over the
/// variable, the variable over `MainOptions`.
///
/// Thread safety: call it once, from the program's main thread (it installs SIGTERM/SIGINT
/// handlers for `worker` and `driver`).

#include "flux/cluster.hpp"
#include "flux/registry.hpp"
#include "flux/runtime.hpp"

namespace flux {

/// What `flux::main` and the `flux` tool return. Stable: scripts test them.
enum class ExitCode : int {
  ok = 0,                 ///< done; a run completed
  failed = 1,             ///< a run failed (or was cancelled)
  usage = 2,              ///< bad command line or configuration: unknown pipeline, bad JSON...
  store_unreachable = 3,  ///< the store could not be reached (the message names its address)
  not_found = 4,          ///< the store does not know the run id
  corrupt = 5,            ///< the store holds a record that cannot be read (named by its key)
  run_owned = 6,          ///< another live process owns the run (retry after its lease expires)
  timed_out = 7,          ///< `--timeout` passed before the run ended
};

/// Defaults for what the command line does not say. Flags and environment variables
/// override them field by field; e.g. `config.cluster.local_nodes` keeps cheap nodes on the
/// driver, `config.observers` watch every run the binary drives.
struct MainOptions {
  Config config{};        ///< for `run`, `resume` and `driver`
  WorkerConfig worker{};  ///< for `worker`
};

/// Parses `argv`, runs the verb and returns its exit code (see ExitCode); never throws.
/// Errors are printed to stderr naming what and where (never a store password); results go
/// to stdout, as text or, with `--json`, as one JSON document.
int main(int argc, char** argv, const Registry& registry, const MainOptions& options = {});

}  // namespace flux
