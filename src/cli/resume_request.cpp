#include "cli/resume_request.hpp"

#include <chrono>

namespace flux::cli {

namespace {

std::string waiting_for(const std::string& pipeline) {
  return "a driver adopting pipeline '" + pipeline + "'";
}

}  // namespace

std::optional<std::string> resume_refusal(const RunInfo& run, ResumeRequest::Verb verb) {
  if (verb == ResumeRequest::Verb::retry && run.status != RunStatus::failed) {
    return "run " + run.id + " is " + to_string(run.status) +
           ": retry is for failed runs (resume for interrupted or cancelled ones)";
  }
  if (verb == ResumeRequest::Verb::resume && run.status != RunStatus::running &&
      run.status != RunStatus::cancelled) {
    return "run " + run.id + " is " + to_string(run.status) +
           ": resume is for interrupted or cancelled runs" +
           (run.status == RunStatus::failed ? " (retry a failed one)" : "");
  }
  return std::nullopt;
}

Json request_resume(Storage& store, const RunInfo& run, ResumeRequest::Verb verb,
                    const std::string& by) {
  if (auto why = resume_refusal(run, verb)) throw Error(Errc::invalid_argument, *why);
  // A run that a live process owns is going on (or ending) there: resuming it is refused, as
  // Runtime::resume refuses it.
  if (auto holder = store.lease_holder(run.id)) {
    throw Error(Errc::run_owned, "run " + run.id + " is owned by " + *holder +
                                     " (its lease is live); " + to_string(verb) + " refused");
  }
  ResumeRequest request;
  request.verb = verb;
  request.by = by;
  request.at =
      std::chrono::time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now());
  store.request_resume(run.id, request);
  return Json{{"run_id", run.id},
              {"requested", to_string(verb)},
              {"status", to_string(run.status)},
              {"pipeline", run.pipeline},
              {"message", std::string(to_string(verb)) + " of run " + run.id + " handed to " +
                              waiting_for(run.pipeline) +
                              " (the `driver` verb of a binary that registers it)"}};
}

Json resume_request_json(const ResumeRequest& request, const std::string& pipeline) {
  return Json{{"verb", to_string(request.verb)},
              {"by", request.by},
              {"at", format_time(request.at)},
              {"state", request.refusal ? "refused" : "pending"},
              {"refusal", request.refusal ? Json(*request.refusal) : Json(nullptr)},
              {"waiting_for", waiting_for(pipeline)}};
}

}  // namespace flux::cli
