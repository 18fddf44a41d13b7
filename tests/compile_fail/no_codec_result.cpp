// A result type that has no flux::codec.
// expect-error: flux::node: the result type has no flux::codec; for your struct add FLUX_STRUCT(Type, field, ...) at global scope, or specialise flux::codec
#include <flux/flux.hpp>

struct Plain {
  int x = 0;
};

int main() {
  auto n = flux::node("make", [](std::int64_t x) { return Plain{static_cast<int>(x)}; });
  (void)n;
}
