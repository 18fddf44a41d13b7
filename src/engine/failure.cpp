// How failures travel between Flux's actors (see failure.hpp).

#include "engine/failure.hpp"

#include <cstdio>

#include "engine/run_driver.hpp"

namespace flux::detail {

caf::error make_failure(flux_errc code, const std::string& node, const std::string& step,
                        const std::string& message) {
  return caf::error(static_cast<std::uint8_t>(code), caf::atom("flux"),
                    caf::make_message(node, step, message));
}

RunFailure failure_of(const caf::error& e) {
  if (e.category() == caf::atom("flux") &&
      e.context().match_elements<std::string, std::string, std::string>()) {
    const auto& ctx = e.context();
    return RunFailure{ctx.get_as<std::string>(0), ctx.get_as<std::string>(1),
                      ctx.get_as<std::string>(2)};
  }
  return RunFailure{"", "", "internal error: " + caf::to_string(e)};
}

bool is_cancelled(const caf::error& e) {
  return e.category() == caf::atom("flux") &&
         e.code() == static_cast<std::uint8_t>(flux_errc::cancelled);
}

caf::error timed_out(const std::string& node, const std::string& step,
                     std::chrono::milliseconds limit) {
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.3f", static_cast<double>(limit.count()) / 1000.0);
  return make_failure(flux_errc::timed_out, node, step,
                      "node '" + node + "' (step " + step + ") timed out after " + seconds + " s");
}

std::string source_text(const std::string* source) {
  if (!source) return "its input";
  return source == &k_run_input ? "the run input" : "the output of '" + *source + "'";
}

caf::error current_node_failure(const std::string& node, const std::string& step,
                                const std::string& source) {
  std::string where = "node '" + node + "' (step " + step + ")";
  try {
    throw;
  } catch (const InputError& e) {
    return make_failure(flux_errc::type_mismatch, node, step,
                        "type mismatch: " + where + " cannot take " + source + ": " + e.what());
  } catch (const std::exception& e) {
    return make_failure(flux_errc::node_failed, node, step, where + " failed: " + e.what());
  } catch (...) {
    return make_failure(flux_errc::node_failed, node, step,
                        where + " failed: unknown exception (not derived from std::exception)");
  }
}

std::optional<caf::error> check_output_depth(const std::string& node, const std::string& step,
                                             const Value& output) {
  if (const std::size_t depth = output.depth(); depth > k_max_value_depth) {
    return make_failure(flux_errc::node_failed, node, step,
                        "node '" + node + "' (step " + step + ") returned a value nested " +
                            std::to_string(depth) + " levels deep (lists/maps); the limit is " +
                            std::to_string(k_max_value_depth) + " (flux::k_max_value_depth)");
  }
  return std::nullopt;
}

}  // namespace flux::detail
