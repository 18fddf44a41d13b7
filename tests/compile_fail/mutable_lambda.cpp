// A mutable lambda: its captured state would be changed by concurrent runs at once.
// expect-error: flux::node: the callable must not be `mutable`: one node runs in many runs at once; keep changing state in flux::Context or behind a mutex
#include <flux/flux.hpp>

int main() {
  auto n = flux::node("count", [calls = 0](std::int64_t x) mutable { return x + ++calls; });
  (void)n;
}
