// A std::string_view parameter would point into a decoded Value that is gone.
// expect-error: flux::node: take `std::string` or `const std::string&`, not `std::string_view`: the view would outlive the decoded input
#include <flux/flux.hpp>

#include <string_view>

int main() {
  auto n = flux::node("len", [](std::string_view s) { return s.size(); });
  (void)n;
}
