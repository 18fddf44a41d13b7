#pragma once
// The raw-CAF side of the baselines: an actor system configured like Flux's own.
//
// Flux's Engine sets only "scheduler.max-threads" (Config::threads, default one per
// core) and keeps CAF's default policy (work stealing), so the baselines do the same
// unless `--caf-policy=sharing` asks otherwise (to see what the policy is worth).

#include <caf/all.hpp>

#include <cstddef>
#include <memory>
#include <string>

#include "bench_common.hpp"

namespace bench {

class CafSystem {
 public:
  CafSystem(std::size_t threads, const std::string& policy) {
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

inline std::string caf_policy(const Args& args) { return args.str("caf-policy", "stealing"); }

}  // namespace bench
