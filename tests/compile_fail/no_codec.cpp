// A parameter type that has no flux::codec: the fix is FLUX_STRUCT.
// expect-error: flux::node: a parameter type has no flux::codec; for your struct add FLUX_STRUCT(Type, field, ...) at global scope, or specialise flux::codec
#include <flux/flux.hpp>

struct Plain {
  int x = 0;
};

int main() {
  auto n = flux::node("plain", [](Plain p) { return p.x; });
  (void)n;
}
