#pragma once
// Internal: the process-wide metrics behind include/flux/metrics.hpp, and the hooks the
// engine, the dispatcher and the worker call. Every hook is cheap (relaxed atomics, or a
// mutex-guarded map lookup per node name) and always on: the cost of the opt-in is only the
// observer (Config::metrics_listen) and the HTTP server.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace flux::detail::metrics {

/// Records queued for (+n) or taken by (-n) a persistence actor.
void persistence_queued(std::int64_t delta) noexcept;
/// One batch of `records` written to the store (`Storage::apply`), however it ended.
void store_write(std::chrono::nanoseconds took, std::size_t records) noexcept;
/// A step placed again because the worker executing it was lost.
void step_redispatched() noexcept;
/// A step a Worker executed (its node's own time).
void worker_step(const std::string& node, std::chrono::nanoseconds took);

/// A Worker's load, read at each scrape while registered. Returns a handle for `unwatch`.
std::uint64_t watch_worker(std::string id, std::function<std::size_t()> busy, std::size_t capacity);
void unwatch_worker(std::uint64_t handle);

}  // namespace flux::detail::metrics
