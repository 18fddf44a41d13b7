#pragma once
/// \file
/// Errors that Flux reports to its users.
///
/// User code throws whatever it likes; Flux catches it at the node boundary and
/// records it. What Flux itself throws is a `flux::Error` (or a subclass) whose
/// `code()` says how the caller should react, and whose `what()` names what
/// failed and where (node, step, key, address).

#include <stdexcept>
#include <string>

namespace flux {

/// What kind of failure an `Error` is, grouped by the reaction it calls for.
enum class Errc {
  invalid_argument,  ///< the caller passed something unusable; fix the call
  type_mismatch,     ///< a value does not have the type a node or codec expects
  node_failed,       ///< user code in a node threw; the run is failed
  not_found,         ///< a run id (or key) that the store does not know
  storage,           ///< the store failed or holds data that cannot be read
  run_owned,         ///< another live process owns the run; retry after its lease expires
  unavailable,       ///< a cluster peer did not answer in time; retry later
};

/// Returns a stable lower-case name for `code`, e.g. "type_mismatch".
const char* to_string(Errc code) noexcept;

/// The exception type thrown by Flux. Thread-safe to copy and read.
class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

/// A value did not have the expected type. `what()` names both types.
class TypeError : public Error {
 public:
  explicit TypeError(const std::string& message) : Error(Errc::type_mismatch, message) {}
};

}  // namespace flux
