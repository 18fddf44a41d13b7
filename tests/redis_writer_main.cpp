// A separate process for the cross-process test: runs pipelines against the Redis store
// given on the command line and prints one "run <id> <status>" line per run.
//   redis_writer <redis-url> <key-prefix> <runs>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <flux/flux.hpp>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s <redis-url> <key-prefix> <runs>\n", argv[0]);
    return 2;
  }
  auto inc = flux::node("inc", [](std::int64_t x) { return x + 1; });
  auto dbl = flux::node("dbl", [](std::int64_t x) { return x * 2; });
  auto sq = flux::node("sq", [](std::int64_t x) { return x * x; });
  auto add = flux::node("add", [](std::int64_t a, std::int64_t b, flux::Context& ctx) {
    ctx.save("sum", a + b);
    ctx.save("note", std::string("written by pid ") + std::to_string(::getpid()));
    ctx.shared().add("adds", 1);
    return a + b;
  });
  auto pipeline = (inc | flux::parallel(dbl, sq) | add).named("writer");
  flux::Runtime rt(flux::Config{.store = argv[1], .key_prefix = argv[2]});
  int runs = std::atoi(argv[3]);
  for (int i = 0; i < runs; ++i) {
    auto r = rt.run(pipeline, static_cast<std::int64_t>(i));
    std::printf("run %s %s\n", r.run_id.c_str(), flux::to_string(r.status));
  }
  return 0;
}
