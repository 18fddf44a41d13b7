#pragma once
// The raw-CAF side of the baselines: an actor system configured like Flux's own.
//
// Flux sets "scheduler.max-threads" (Config::threads, default one per core) and the
// policy (Config::scheduler, default sharing). `--policy=sharing|stealing` sets the
// policy of both sides, so a ratio always compares like with like.

#include <caf/all.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "bench_common.hpp"

namespace bench {

class CafSystem {
 public:
  /// `configure`, if given, adds settings (e.g. the network layer) before the system starts.
  CafSystem(std::size_t threads, const std::string& policy,
            const std::function<void(caf::actor_system_config&)>& configure = {}) {
    if (configure) configure(cfg_);
    cfg_.set("scheduler.max-threads", threads);
    if (policy == "sharing") cfg_.set("scheduler.policy", caf::atom("sharing"));
    if (policy == "stealing") cfg_.set("scheduler.policy", caf::atom("stealing"));
    sys_ = std::make_unique<caf::actor_system>(cfg_);
  }
  caf::actor_system& sys() { return *sys_; }

 private:
  caf::actor_system_config cfg_;  // before sys_: the system keeps a reference to it
  std::unique_ptr<caf::actor_system> sys_;
};

/// The policy this program runs both sides with (set by caf_policy from `--policy`).
inline std::string& policy_setting() {
  static std::string policy = "sharing";
  return policy;
}
inline std::string caf_policy(const Args& args) {
  return policy_setting() = args.str("policy", "sharing");
}

/// The same policy for Flux's side.
template <class Config>
void set_flux_policy(Config& config) {
  config.scheduler =
      policy_setting() == "stealing" ? Config::Scheduler::stealing : Config::Scheduler::sharing;
}

}  // namespace bench
