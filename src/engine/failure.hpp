#pragma once
// Internal: how a failure travels between Flux's actors — a caf::error of category "flux"
// whose context is (node, step, message) — and how a node's exception becomes one.

#include <caf/all.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "flux/record.hpp"
#include "flux/value.hpp"

namespace flux::detail {

/// Error codes carried in caf::error (category "flux") between Flux's actors. The
/// error's context is (node, step, message).
enum class flux_errc : std::uint8_t { node_failed = 1, type_mismatch, cancelled, timed_out };

caf::error make_failure(flux_errc code, const std::string& node, const std::string& step,
                        const std::string& message);
/// The failure described by `e`; for errors not made by make_failure, the CAF rendering.
RunFailure failure_of(const caf::error& e);
bool is_cancelled(const caf::error& e);
/// The failure of an attempt that exceeded its node's `.timeout(limit)`.
caf::error timed_out(const std::string& node, const std::string& step,
                     std::chrono::milliseconds limit);

/// What produced a step's input, for messages: "the run input", "the output of 'inc'".
std::string source_text(const std::string* source);
/// The failure that the exception in flight stands for, thrown by node `node` at `step`
/// whose input is described by `source` (a type mismatch for an InputError). Call in a catch.
caf::error current_node_failure(const std::string& node, const std::string& step,
                                const std::string& source);
/// The failure of a node whose output nests deeper than a store can keep, if it does.
std::optional<caf::error> check_output_depth(const std::string& node, const std::string& step,
                                             const Value& output);

}  // namespace flux::detail
