// A generic lambda: its parameter types cannot be read, so Flux cannot decode its input.
// expect-error: flux::node: cannot read the callable's parameter types; give every parameter an explicit type (no `auto`, no overloaded operator())
#include <flux/flux.hpp>

int main() {
  auto n = flux::node("inc", [](auto x) { return x + 1; });
  (void)n;
}
