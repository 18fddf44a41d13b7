#pragma once
// Internal: the messages between cluster processes, and the CAF settings every cluster
// process must share.
//
// Why frozen CAF structs carrying Cap'n Proto bytes (notes/distribution.md §1): CAF checks
// nothing but a type's registered name — a field added to a struct on one side only arrives
// as garbage or is silently dropped. So these envelopes never change without bumping
// k_wire_protocol (checked at connect through `middleman.app-identifiers`), and everything
// that evolves — values, history entries — travels as the sealed Cap'n Proto records the
// store keeps (record_codec.hpp), one encoding for store and wire. No field is a
// `std::vector<std::byte>` (serialized element by element: 500x slower than a string).

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "flux/cluster.hpp"

namespace flux::detail::wire {

/// Driver → worker: execute one step. Answered by a StepResult message to its sender (not a
/// response: the worker's executing thread sends it).
struct StepRequest {
  std::string run_id;
  std::string step;       ///< step id, e.g. "1.0.0"
  std::string node;       ///< node name
  std::string signature;  ///< the driver's signature of the node: the worker refuses another
  std::string source;     ///< what produced the input, for messages: "the output of 'inc'"
  std::uint32_t attempt = 1;
  std::uint64_t fence = 0;     ///< the run's fencing token at the driver
  std::uint64_t dispatch = 0;  ///< the driver's id of this dispatch; context calls carry it
  std::string input;           ///< sealed Value
  std::int64_t timeout_ns = 0;   ///< the node's timeout (0: none), counted from its start there
  std::int64_t deadline_ns = 0;  ///< the run's deadline, ns since the epoch (0: none)
};

/// Driver → worker: the step of dispatch `dispatch` was abandoned (its run was cancelled or
/// reached its deadline): its ctx.cancelled() turns true, and it is not started if it still
/// waits. Not answered: the driver has recorded the step already and ignores its result.
struct CancelStep {
  std::uint64_t dispatch = 0;
  std::string reason;
};

/// How a step ended on a worker.
enum class StepOutcome : std::uint8_t {
  ok = 0,       ///< `output` holds the sealed Value
  failed = 1,   ///< the node failed: `error`; a type mismatch sets `type_mismatch`
  refused = 2,  ///< not executed (draining, node not hosted): the driver places it elsewhere
  timed_out = 3,  ///< it exceeded its timeout on the worker: `error` says so
};

/// Worker → driver: the outcome of a StepRequest, matched by `dispatch` and `worker`.
struct StepResult {
  std::uint64_t dispatch = 0;
  std::uint8_t outcome = 0;  ///< a StepOutcome
  bool type_mismatch = false;
  std::string output;  ///< sealed Value when ok
  std::string error;   ///< the failure (or refusal) message
  std::int64_t start_ns = 0;
  std::int64_t duration_ns = 0;
  std::string worker;  ///< the worker's id
};

/// What a remote Context asks the run's owner.
enum class ContextOp : std::uint8_t {
  get = 0,
  put = 1,
  erase = 2,
  compare_and_set = 3,  ///< `value` if the key holds `expected` (absent when !has_expected)
  snapshot = 4,         ///< the whole scope as one map Value
  history = 5,          ///< the run's history entries, sealed, in `items`
};

/// Worker → driver: one Context call of a step being executed. Answered with a ContextReply.
struct ContextCall {
  std::uint64_t dispatch = 0;  ///< the StepRequest's: the call is valid while it is
  std::string run_id;
  std::uint64_t fence = 0;
  std::uint8_t op = 0;     ///< a ContextOp
  std::uint8_t scope = 0;  ///< a flux::Scope
  std::string key;
  std::string value;  ///< sealed Value (put, compare_and_set)
  bool has_expected = false;
  std::string expected;  ///< sealed Value (compare_and_set)
};

struct ContextReply {
  bool ok = true;  ///< false: `error` says why (the step is no longer the driver's, ...)
  std::string error;
  bool found = false;  ///< get: present; erase: existed; compare_and_set: applied
  std::string value;   ///< get / snapshot / a failed compare_and_set: the value now (sealed)
  std::vector<std::string> items;  ///< history: sealed entries
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, StepRequest& x) {
  return f(caf::meta::type_name("flux.StepRequest"), x.run_id, x.step, x.node, x.signature,
           x.source, x.attempt, x.fence, x.dispatch, x.input, x.timeout_ns, x.deadline_ns);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, CancelStep& x) {
  return f(caf::meta::type_name("flux.CancelStep"), x.dispatch, x.reason);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, StepResult& x) {
  return f(caf::meta::type_name("flux.StepResult"), x.dispatch, x.outcome, x.type_mismatch,
           x.output, x.error, x.start_ns, x.duration_ns, x.worker);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ContextCall& x) {
  return f(caf::meta::type_name("flux.ContextCall"), x.dispatch, x.run_id, x.fence, x.op, x.scope,
           x.key, x.value, x.has_expected, x.expected);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ContextReply& x) {
  return f(caf::meta::type_name("flux.ContextReply"), x.ok, x.error, x.found, x.value, x.items);
}

/// Prepares `cfg` for a cluster process: loads the network layer (and the TLS module when
/// `network.tls` is set), registers the wire messages, sets the protocol id checked at connect
/// and turns heartbeats on (CAF's are off by default: a hung peer would never be noticed).
/// Checks the TLS files first (they make CAF hang or abort later otherwise).
void configure_network(caf::actor_system_config& cfg, const NetworkConfig& network,
                       const std::string& who);

/// Connects to the gateway published at host:port, waiting at most `timeout` (CAF's own
/// connect has no bound: a peer that accepts but never answers would hold the caller).
///
/// Probe the address first (probe_tcp): CAF 0.17 opens the TCP connection with a blocking
/// connect() inside its middleman actor, so one address that does not answer (a host gone
/// from the network) holds every later connect of the process for the kernel's SYN timeout
/// (about two minutes). A connection that CAF's heartbeat check closes during its handshake
/// (CAF gives a new outgoing connection a "last seen" of zero, so the first tick after it
/// opens drops it unless the handshake is done: seen under load with TLS) is tried again at
/// once, up to three times.
caf::expected<caf::actor> connect_to(caf::actor_system& sys, const NetworkConfig& network,
                                     const std::string& host, std::uint16_t port,
                                     std::chrono::milliseconds timeout);

/// Opens (and closes) a TCP connection to each host:port at once, waiting at most `timeout`
/// for all of them: per address, empty when it accepted, else why not ("connection refused",
/// "no answer within 1000 ms", ...).
std::vector<std::string> probe_tcp(const std::vector<std::pair<std::string, std::uint16_t>>& to,
                                   std::chrono::milliseconds timeout);

/// Whether `host` is a loopback address (plaintext allowed there).
bool is_loopback(const std::string& host);

}  // namespace flux::detail::wire
