// A user's binary as the command-line tests run it: a registry of pipelines and one call to
// flux::main. The pipelines cover what the tests check: a plain one, one that fails, one whose
// failure a resume can mend, a slow one (to catch runs in flight), and one whose output holds
// values JSON cannot spell as numbers.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <flux/flux.hpp>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  auto inc = flux::node("inc", [](std::int64_t x) { return x + 1; });
  auto dbl = flux::node("dbl", [](std::int64_t x) { return x * 2; });
  auto boom = flux::node("boom", [](std::int64_t) -> std::int64_t {
    throw std::runtime_error("boom: the input was refused");
  });
  // Fails until the environment says otherwise: resume mends a failed run.
  auto flaky = flux::node("flaky", [](std::int64_t x) -> std::int64_t {
    const char* fixed = std::getenv("CLI_TEST_FIXED");
    if (!fixed || std::string(fixed) != "1") throw std::runtime_error("flaky: not fixed yet");
    return x * 10;
  });
  // Sleeps `ms` milliseconds (on the blocking pool), then returns it.
  auto nap = flux::node("nap", [](std::int64_t ms) {
               std::this_thread::sleep_for(std::chrono::milliseconds(ms));
               return ms;
             }).blocking();
  auto special = flux::node("special", [](const std::vector<std::int64_t>&) {
    return flux::Value(flux::Value::List{std::numeric_limits<double>::quiet_NaN(),
                                         std::numeric_limits<double>::infinity(),
                                         -std::numeric_limits<double>::infinity(), 0.5,
                                         flux::Bytes{std::byte{0x66}, std::byte{0x6c}}});
  });

  flux::Registry registry;
  registry.add((inc | dbl).named("double-inc"));
  registry.add((inc | boom).named("fails"));
  registry.add((inc | flaky).named("mendable"));
  registry.add((nap | inc).named("slow"));
  registry.add((inc | flux::parallel(dbl, nap) | special).named("special"));
  return flux::main(argc, argv, registry);
}
