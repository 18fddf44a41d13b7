#pragma once
// The names a documentation snippet may use without declaring them: what the prose
// around it calls "a pipeline", "inc", "your function". Kept small on purpose; a
// snippet that needs more should declare it, so that readers see it too.
// Compiled only, never run (extract_snippets.cpp).

#include <cstdint>
#include <flux/flux.hpp>
#include <string>

namespace flux_snippet_prelude {

inline const flux::Node inc = flux::node("inc", [](std::int64_t x) { return x + 1; });
inline const flux::Node dbl = flux::node("dbl", [](std::int64_t x) { return x * 2; });
inline const flux::Node sq = flux::node("sq", [](std::int64_t x) { return x * x; });
inline const flux::Node half = flux::node("half", [](std::int64_t x) { return x / 2; });
inline const flux::Node add =
    flux::node("add", [](std::int64_t a, std::int64_t b) { return a + b; });
/// Any pipeline taking and producing an int64.
inline const flux::Pipeline pipeline = inc | dbl;
/// The id of a run that failed.
inline const std::string failed_run_id = "0123456789abcdef";

/// Stands for whatever the reader does with a value.
template <class... T>
void use(const T&...) {}
/// Stand for blocking I/O in examples of async and blocking nodes.
inline std::string http_get(const std::string& url) { return url; }
inline std::string read_file(const std::string& path) { return path; }

}  // namespace flux_snippet_prelude
