// A generic lambda as a compensation: its parameter types cannot be read either.
// expect-error: flux::Node::compensate: cannot read the callable's parameter types; give every parameter an explicit type (no `auto`, no overloaded operator())
#include <flux/flux.hpp>

int main() {
  auto n = flux::node("inc", [](std::int64_t x) { return x + 1; }).compensate([](auto) {});
  (void)n;
}
