// Built against an installed Flux through find_package(flux CONFIG); prints the result.
#include <cstdio>
#include <flux/flux.hpp>

int main() {
  auto inc = flux::node("inc", [](std::int64_t x) { return x + 1; });
  auto dbl = flux::node("dbl", [](std::int64_t x) { return x * 2; });
  flux::Runtime rt;
  auto r = rt.run(inc | dbl, 20);
  std::printf("consumer result: %lld\n", static_cast<long long>(r.value<std::int64_t>()));
  return r.value<std::int64_t>() == 42 ? 0 : 1;
}
