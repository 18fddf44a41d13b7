// Parallel: fan-out to branches that are nodes or whole sub-pipelines, fan-in by
// spreading the outputs over the next node's parameters. Blocking branches run on
// Flux's blocking pool, so the two 200 ms sleeps below overlap.
//
//              +--> slow_a (200 ms) ----------+
//   "flux" --> +--> slow_b (200 ms) ----------+--> report
//              +--> upper --> exclaim --------+
#include <chrono>
#include <cstdio>
#include <flux/flux.hpp>
#include <string>
#include <thread>

using namespace std::chrono_literals;

int main() {
  auto slow_a = flux::node("slow_a", [](const std::string& s) {
                  std::this_thread::sleep_for(200ms);  // blocking I/O stand-in
                  return s.size();
                }).blocking();
  auto slow_b = flux::node("slow_b", [](const std::string& s) {
                  std::this_thread::sleep_for(200ms);
                  return s + s;
                }).blocking();
  auto upper = flux::node("upper", [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  });
  auto exclaim = flux::node("exclaim", [](const std::string& s) { return s + "!"; });
  auto report =
      flux::node("report", [](std::size_t n, const std::string& twice, const std::string& loud) {
        return std::to_string(n) + " " + twice + " " + loud;
      });

  auto pipeline = flux::parallel(slow_a, slow_b, upper | exclaim) | report;

  flux::Runtime rt;
  auto t0 = std::chrono::steady_clock::now();
  auto r = rt.run(pipeline, std::string("flux"));
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  if (!r.ok()) {
    std::fprintf(stderr, "run failed: %s\n", r.error->message.c_str());
    return 1;
  }
  std::printf("%s\n  -> %s in %lld ms (the two 200 ms branches overlapped)\n",
              pipeline.describe().c_str(), r.output.to_string().c_str(),
              static_cast<long long>(ms));
  return r.value<std::string>() == "4 fluxflux FLUX!" ? 0 : 1;
}
