#pragma once
// Internal: resume and retry without the pipeline's code — what `flux runs resume|retry` and
// the dashboard served by the `flux` tool do. The request is stored for a driver that adopts
// the run's pipeline (Storage::request_resume; the driver's side is Engine::adopt_orphans), so
// both check the run's state here with the same texts, and print the same JSON.

#include <optional>
#include <string>

#include "cli/json.hpp"
#include "flux/storage.hpp"

namespace flux::cli {

/// Why `run` cannot be resumed (`verb` resume: an interrupted or cancelled run) or retried
/// (`verb` retry: a failed run) in its status; nullopt when it can. The dashboard answers these
/// with 409, whether it resumes the run itself or hands it to a driver.
std::optional<std::string> resume_refusal(const RunInfo& run, ResumeRequest::Verb verb);

/// Stores `verb`'s request for `run` by `by` (replacing any earlier one, refused or not) after
/// checking its status (Error(invalid_argument) with `resume_refusal`'s text) and that no live
/// process owns it (Error(run_owned) naming the owner). Returns the answer both print:
/// {"run_id", "requested": "resume"|"retry", "status", "pipeline", "message"}.
Json request_resume(Storage& store, const RunInfo& run, ResumeRequest::Verb verb,
                    const std::string& by);

/// A run's resume request as the dashboard shows it: {"verb", "by", "at", "state": "pending" |
/// "refused", "refusal": text | null, "waiting_for": "a driver adopting pipeline 'P'"}.
Json resume_request_json(const ResumeRequest& request, const std::string& pipeline);

}  // namespace flux::cli
