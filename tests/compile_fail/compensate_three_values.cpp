// A compensation takes the step's output and, optionally, its input: not three values.
// expect-error: flux::Node::compensate: the compensation takes the step's output, optionally followed by the step's input, and any flux::Context& -- at most two other parameters
#include <flux/flux.hpp>

int main() {
  auto n = flux::node("inc", [](std::int64_t x) { return x + 1; })
               .compensate([](std::int64_t, std::int64_t, std::int64_t) {});
  (void)n;
}
