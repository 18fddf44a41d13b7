// A compensation parameter type without a flux::codec: the fix is FLUX_STRUCT.
// expect-error: flux::Node::compensate: a parameter type has no flux::codec; for your struct add FLUX_STRUCT(Type, field, ...) at global scope, or specialise flux::codec
#include <flux/flux.hpp>

struct Plain {
  int x = 0;
};

int main() {
  auto n = flux::node("inc", [](std::int64_t x) { return x + 1; }).compensate([](Plain) {});
  (void)n;
}
