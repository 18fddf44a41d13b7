# Flux durable record format: the Cap'n Proto schema of what Flux stores.
#
# Every stored record is one of the root structs below (Value, HistoryEntry,
# RunRecord, WorkerCard), serialized as a *packed* Cap'n Proto message and wrapped in the
# 16-byte Flux envelope (magic "FLUX", format version, record kind, reserved,
# payload length, CRC-32C of the payload) -- see src/format/record_codec.hpp.
# The envelope is verified before any byte of the message is interpreted.
#
# SCHEMA EVOLUTION RULES. Records outlive processes and binaries: a record
# written today must stay readable by every later Flux, and a reader of today
# must survive a record written by a later Flux. Therefore:
#
#  1. Only ADD fields, and only with the next unused ordinal (@N), at the end.
#     Never renumber, retype, rename-with-new-meaning or remove a field. A field
#     that is no longer used stays in the schema (comment it "deprecated") and
#     the writer simply stops setting it.
#  2. New union members are only appended (next ordinal). The first member of
#     every union is its default (what an old record without the union reads
#     as), so it must stay the "nothing" case (Value.null, error.none, ...).
#  3. Default values stay the defaults. Changing "= x" on an existing field
#     silently changes the meaning of every stored record (defaults are XORed
#     into the wire data). New fields default to zero/empty/false, and a
#     missing field (old writer) must mean "not set / the old behaviour".
#  4. Enum values are only appended, never reordered or removed.
#  5. Old readers ignore fields they do not know (Cap'n Proto does this for
#     free). Old readers that meet a union member or enum value they do not
#     know reject the record with a flux::Error(storage) naming the key -- they
#     never guess. So a writer must not produce a new union member / enum value
#     while old readers still need to read the record; roll readers out first.
#  6. A change that cannot follow these rules (a different encoding, a different
#     root type for a record kind) bumps the envelope's format version, not the
#     schema: readers refuse versions they do not know.
#  7. Group unions (HistoryEntry.error, RunRecord.failure) count as fields:
#     their members follow the same rules.
#  8. C++ names a group after its field, capitalized (`failure` ->
#     RunRecord::Failure), so a group must not share a name with a nested type.
#
# Times are Int64 nanoseconds since the Unix epoch (wall clock); durations are
# Int64 nanoseconds (measured with a monotonic clock). Text is UTF-8.

@0xb4c87f63e2d94fe1;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("flux::wire");

# A flux::Value. Same cases, in the same order, as flux::Kind.
struct Value {
  union {
    null @0 :Void;             # the default: an unset Value pointer reads as null
    bool @1 :Bool;
    int64 @2 :Int64;
    float64 @3 :Float64;       # stored bit-exactly (-0.0, NaN payloads, infinities)
    text @4 :Text;             # flux "string"
    data @5 :Data;             # flux "bytes"
    list @6 :List(Value);
    map @7 :List(Entry);       # keys unique; Flux writes them in ascending byte order
  }

  struct Entry {
    key @0 :Text;
    value @1 :Value;
  }
}

# One execution of a step (flux::HistoryEntry). Stored one record per entry.
struct HistoryEntry {
  seq @0 :UInt64;              # position in the run's history, from 0
  type @1 :Type;
  node @2 :Text;               # node name ("parallel" for a parallel as a whole)
  step @3 :Text;               # stable step id, e.g. "1.0.2"
  attempt @4 :UInt32;          # 1 for the first execution of the step
  startNs @5 :Int64;           # wall clock, ns since the Unix epoch
  endNs @6 :Int64;             # wall clock, ns since the Unix epoch
  durationNs @7 :Int64;        # monotonic, ns
  input @8 :Value;
  output @9 :Value;            # null when the step failed

  # Whether the step failed. A union (not hasError + Text) so that "failed with
  # an empty message" and "succeeded" stay distinct, and so an old record reads
  # as `none`.
  error :union {
    none @10 :Void;            # the step succeeded
    message @11 :Text;         # the step failed with this message
  }

  enum Type {
    node @0;
    parallel @1;
    resume @2;                 # the run was resumed here (node "resume", step "")
    cancel @3;                 # the run was cancelled here (node "cancel", step ""; input:
                               # {"by": who, "reason": why})
    compensating @4;           # the run began undoing its completed steps here (node
                               # "compensation", step ""; input: {"status": "failed" or
                               # "cancelled", "node", "step", "message": why it stopped})
    compensate @5;             # one attempt of one step's compensation (node and step: the
                               # step undone; input: that step's output)
  }

  children @12 :List(Text);    # ids of the child runs the execution started, in order
  worker @13 :Text;            # the worker that executed the step; empty: the run's owner
}

# A run's metadata (flux::RunInfo without its history, which is stored as
# separate HistoryEntry records).
struct RunRecord {
  id @0 :Text;
  pipeline @1 :Text;           # the pipeline's name
  fingerprint @2 :Text;        # hash of the pipeline's shape and node names (hex)
  status @3 :Status;
  createdNs @4 :Int64;         # ns since the Unix epoch
  updatedNs @5 :Int64;         # ns since the Unix epoch
  finishedNs @6 :Int64;        # ns since the Unix epoch; meaningful only if hasFinished
  hasFinished @7 :Bool;
  input @8 :Value;
  output @9 :Value;

  # Why the run failed, if it did.
  failure :union {
    none @10 :Void;
    failed @11 :RunFailure;
  }

  owner @12 :Text;             # the process that owns (last owned) the run: "host:pid:nonce"
  historyValues @13 :HistoryValues;  # what history keeps of values; resume needs `full`
  parentRunId @14 :Text;       # a child run: the run that started it (empty otherwise)
  parentStep @15 :Text;        # ... and the step
  deadlineNs @16 :Int64;       # the run's deadline, ns since the Unix epoch; if hasDeadline
  hasDeadline @17 :Bool;       # false for records written before deadlines existed
  stepsTotal @18 :UInt32;      # node steps a complete run executes; if hasStepsTotal
  stepsDone @19 :UInt32;       # distinct node steps completed, written at the run's end;
                               # if hasStepsDone
  hasStepsTotal @20 :Bool;     # false for records written before the step counts existed
  hasStepsDone @21 :Bool;      # false while the run is running, and for older records

  enum Status {
    running @0;
    completed @1;
    failed @2;
    cancelled @3;              # Runtime::cancel or a deadline; readers before it refuse it
    compensated @4;            # failed (or cancelled), then every compensation succeeded
    compensationFailed @5;     # failed (or cancelled), then a compensation failed too
  }

  enum HistoryValues {
    full @0;                   # the default, also for records written before the field
    none @1;
    truncated @2;
  }
}

# Why a run failed (flux::RunFailure).
struct RunFailure {
  node @0 :Text;               # empty if the failure is not a node's (e.g. the store)
  step @1 :Text;
  message @2 :Text;
}

# A worker's card in the cluster's worker directory (cluster/worker_directory.hpp): who it
# is, where drivers connect, and the nodes it hosts. Stored under the worker's key with a
# TTL that the worker keeps refreshing.
struct WorkerCard {
  id @0 :Text;                 # the worker's id; equal to the one its key is for, never empty
  host @1 :Text;               # where drivers connect
  port @2 :UInt16;
  capacity @3 :UInt32;         # how much work it takes at once
  protocol @4 :Text;           # the wire protocol it speaks, e.g. "flux-wire-1"
  tls @5 :Bool;                # whether connections to it use TLS
  pid @6 :Int64;               # its process id (for operators)
  startedNs @7 :Int64;         # when it started: ns since the Unix epoch
  nodes @8 :List(NodeSignature);  # strictly ascending by name
  busy @9 :UInt32;             # steps executing or queued when the card was last written
  heartbeatNs @10 :Int64;      # when the card was last written (every third of its TTL)

  struct NodeSignature {
    name @0 :Text;
    signature @1 :Text;
  }
}
