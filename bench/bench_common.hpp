#pragma once
// Shared by the benchmark programs: argument parsing, timing, statistics, heap
// measurement and the JSON-lines result format read by bench_report.
//
// Every result is one line on stdout:
//   {"row":"W1 chain latency","workload":"W1","side":"flux","name":"...","unit":"us/node",
//    "better":"lower","target":"ratio<=2","rep":1,"value":3.2, ...extra fields}
// `row` groups a Flux figure with its baseline (side "baseline"); bench_report takes the
// median, min and max of each side over the repetitions and the ratio flux/baseline.
// Progress and diagnostics go to stderr, so stdout stays machine-readable.

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifndef FLUX_BENCH_BUILD_TYPE
#define FLUX_BENCH_BUILD_TYPE "unknown"
#endif

namespace bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
inline double micros_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

/// Median of `v` (mean of the two middle values for an even count); 0 for none.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
/// The q-quantile (0..1) of `v`, nearest rank.
inline double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}
inline double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

/// `--name=value` or `--name value` options; `--help` lists what was asked for.
class Args {
 public:
  Args(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) throw std::invalid_argument("unexpected argument: " + a);
      a = a.substr(2);
      auto eq = a.find('=');
      if (eq != std::string::npos) {
        kv_[a.substr(0, eq)] = a.substr(eq + 1);
      } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
        kv_[a] = argv[++i];
      } else {
        kv_[a] = "1";
      }
    }
  }
  long num(const std::string& name, long fallback) const {
    auto it = kv_.find(name);
    return it == kv_.end() ? fallback : std::stol(it->second);
  }
  std::string str(const std::string& name, const std::string& fallback) const {
    auto it = kv_.find(name);
    return it == kv_.end() ? fallback : it->second;
  }
  bool has(const std::string& name) const { return kv_.count(name) != 0; }
  /// `--only=flux` or `--only=baseline` restricts a program to one side (for profiling).
  bool side_enabled(const std::string& side) const {
    auto only = str("only", "");
    return only.empty() || only == side;
  }

 private:
  std::map<std::string, std::string> kv_;
};

/// One JSON object on one line.
class Json {
 public:
  Json& str(const std::string& k, const std::string& v) {
    key(k);
    out_ += '"';
    for (char c : v) {
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\t':
          out_ += "\\t";
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out_ += buf;
          } else {
            out_ += c;
          }
      }
    }
    out_ += '"';
    return *this;
  }
  Json& num(const std::string& k, double v) {
    key(k);
    char buf[64];
    if (std::isfinite(v)) {
      std::snprintf(buf, sizeof buf, "%.9g", v);
    } else {
      std::snprintf(buf, sizeof buf, "null");
    }
    out_ += buf;
    return *this;
  }
  /// Prints the line to stdout and flushes (the runner may be reading a pipe).
  void emit() {
    std::printf("{%s}\n", out_.c_str());
    std::fflush(stdout);
  }

 private:
  void key(const std::string& k) {
    if (!out_.empty()) out_ += ',';
    out_ += '"' + k + "\":";
  }
  std::string out_;
};

/// The common fields of a result line; add extra fields to the returned Json, then emit().
struct Result {
  std::string workload;  // "W1"
  std::string row;       // the table row this figure belongs to
  std::string side;      // "flux" or "baseline"
  std::string name;      // what exactly was measured
  std::string unit;      // "us/node", "runs/s", ...
  std::string better;    // "lower" or "higher"
  std::string target;    // optional, on the flux side: "ratio<=2", "ratio>=0.5", "value>=1e6"
};
/// Appended to every row this program reports, e.g. " (strict durability)": the program
/// measures a variant of the standard rows (Flux and its baseline, in the same sitting) —
/// reported beside them, without their targets.
inline std::string& row_variant() {
  static std::string variant;
  return variant;
}
inline Json result_line(const Result& r, int rep, double value) {
  Json j;
  j.str("row", r.row + row_variant()).str("workload", r.workload).str("side", r.side);
  j.str("name", r.name + row_variant()).str("unit", r.unit).str("better", r.better);
  if (!r.target.empty() && row_variant().empty()) j.str("target", r.target);
  j.num("rep", rep).num("value", value);
  return j;
}

/// `--durability slow_steps|strict|batched`: Config::durability of the Flux side. A mode
/// other than Flux's default (slow_steps) makes every row of the program a variant.
inline std::string& durability_setting() {
  static std::string mode = "slow_steps";
  return mode;
}
inline void parse_durability(const Args& args) {
  const std::string mode = args.str("durability", "slow_steps");
  if (mode != "slow_steps" && mode != "strict" && mode != "batched") {
    throw std::invalid_argument("--durability is slow_steps, strict or batched, not '" + mode +
                                "'");
  }
  durability_setting() = mode;
  if (mode != "slow_steps") row_variant() += " (" + mode + " durability)";
}
template <class Config>
void set_flux_durability(Config& config) {
  const std::string& mode = durability_setting();
  config.durability = mode == "strict"    ? Config::Durability::strict
                      : mode == "batched" ? Config::Durability::batched
                                          : Config::Durability::slow_steps;
}

/// Describes the build and machine once per program (bench_report shows it).
inline void emit_meta(const std::string& program) {
  Json j;
  j.str("meta", program).str("build_type", FLUX_BENCH_BUILD_TYPE);
#ifdef NDEBUG
  j.num("ndebug", 1);
#else
  j.num("ndebug", 0);
#endif
  j.num("hardware_threads", std::thread::hardware_concurrency());
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3) j.num("loadavg1", load[0]);
  j.emit();
}

/// Heap bytes in use right now, all arenas: small chunks (uordblks) plus mmap'd ones (hblkhd).
inline std::size_t heap_in_use() {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

/// Resident set size in bytes, from /proc/self/statm.
inline std::size_t rss_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<std::size_t>(resident) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

/// Prints a progress note to stderr.
template <class... A>
void note(const char* fmt, A... a) {
  std::fprintf(stderr, fmt, a...);
  std::fputc('\n', stderr);
}

/// Thread count shared by Flux and the raw-CAF baselines, so that both run on the same
/// scheduler size: Flux's Config::threads, and CAF's "scheduler.max-threads".
inline std::size_t scheduler_threads(const Args& args) {
  long t = args.num("threads", 0);
  if (t > 0) return static_cast<std::size_t>(t);
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? hc : 2;  // what Flux picks for Config::threads == 0
}

}  // namespace bench
