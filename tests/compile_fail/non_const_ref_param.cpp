// A non-const reference parameter: the input is decoded into a temporary.
// expect-error: flux::node: a parameter cannot be a non-const reference (only flux::Context& can); take it by value or by const reference
#include <flux/flux.hpp>

#include <string>

int main() {
  auto n = flux::node("shout", [](std::string& s) { return s += "!"; });
  (void)n;
}
