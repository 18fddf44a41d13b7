// Persistence: each run has its own id, key/value store, shared state and history;
// the runtime lists runs and reads any of them back. A failing run is recorded with
// the node, the step and the message, and does not affect the others.
//
//   order -> price -> (charge | refuse)
#include <cstdio>
#include <flux/flux.hpp>
#include <stdexcept>
#include <string>

struct Order {
  std::string item;
  std::int64_t qty = 0;
};
FLUX_STRUCT(Order, item, qty)

int main() {
  auto price = flux::node("price", [](const Order& o, flux::Context& ctx) {
    ctx.save("item", o.item);       // per-run kv
    ctx.shared().add("priced", 1);  // shared state (atomic)
    if (o.qty <= 0)
      throw std::invalid_argument("quantity must be positive, got " + std::to_string(o.qty));
    return o.qty * 250;  // cents
  });
  auto charge = flux::node("charge", [](std::int64_t cents, flux::Context& ctx) {
    ctx.save("charged", cents);
    return "charged " + std::to_string(cents) + " cents for " + ctx.get<std::string>("item", "?");
  });
  auto pipeline = (price | charge).named("checkout");

  flux::Runtime rt;
  auto ok = rt.run(pipeline, Order{"book", 2});
  auto bad = rt.run(pipeline, Order{"pen", 0});

  std::printf("run %s: %s -> %s\n", ok.run_id.c_str(), flux::to_string(ok.status),
              ok.output.to_string().c_str());
  std::printf("run %s: %s -> %s\n", bad.run_id.c_str(), flux::to_string(bad.status),
              bad.error ? bad.error->message.c_str() : "");

  std::printf("all runs, newest first:\n");
  for (const flux::RunInfo& info : rt.list_runs()) {
    auto full = rt.get_run(info.id);
    std::printf("  %s  %-9s %s, %zu history entries, kv %s\n", info.id.c_str(),
                flux::to_string(info.status), info.pipeline.c_str(), full->history.size(),
                flux::Value(rt.run_keys(info.id)).to_string().c_str());
  }
  bool as_expected = ok.ok() && ok.value<std::string>() == "charged 500 cents for book" &&
                     bad.status == flux::RunStatus::failed && bad.error->node == "price";
  return as_expected ? 0 : 1;
}
