#include "cluster/wire.hpp"

#include <arpa/inet.h>

#include <caf/openssl/all.hpp>

#include "cluster/tls_check.hpp"
#include "flux/error.hpp"
#include "format/worker_card.hpp"

namespace flux::detail::wire {

bool is_loopback(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

void configure_network(caf::actor_system_config& cfg, const NetworkConfig& network,
                       const std::string& who) {
  if (network.heartbeat_interval.count() <= 0 ||
      network.connection_timeout <= network.heartbeat_interval) {
    throw Error(Errc::invalid_argument,
                who + ": network.connection_timeout (" +
                    std::to_string(network.connection_timeout.count()) +
                    " ms) must be longer than network.heartbeat_interval (" +
                    std::to_string(network.heartbeat_interval.count()) + " ms), which must be > 0");
  }
  cfg.load<caf::io::middleman>();
  if (network.tls.enabled()) {
    check_tls_files(network.tls, who);  // CAF would hang or abort on bad files, later
    cfg.load<caf::openssl::manager>();
    cfg.set("openssl.certificate", network.tls.certificate);
    cfg.set("openssl.key", network.tls.key);
    cfg.set("openssl.cafile", network.tls.ca_file);
    if (std::string pass = resolve_passphrase(network.tls); !pass.empty()) {
      cfg.set("openssl.passphrase", std::move(pass));
    }
  }
  cfg.add_message_type<StepRequest>("flux.StepRequest");
  cfg.add_message_type<StepResult>("flux.StepResult");
  cfg.add_message_type<ContextCall>("flux.ContextCall");
  cfg.add_message_type<ContextReply>("flux.ContextReply");
  cfg.set("middleman.app-identifiers", std::vector<std::string>{k_wire_protocol});
  // Both ends must send heartbeats, or a healthy idle connection is dropped (distribution.md
  // §3); the values must be timespans, or CAF ignores them with a message on stderr.
  cfg.set("middleman.heartbeat-interval", caf::timespan{network.heartbeat_interval});
  cfg.set("middleman.connection-timeout", caf::timespan{network.connection_timeout});
}

caf::expected<caf::actor> connect_to(caf::actor_system& sys, const NetworkConfig& network,
                                     const std::string& host, std::uint16_t port,
                                     std::chrono::milliseconds timeout) {
  caf::io::middleman_actor manager =
      network.tls.enabled() ? sys.openssl_manager().actor_handle() : sys.middleman().actor_handle();
  caf::expected<caf::actor> out = caf::sec::cannot_connect_to_node;
  caf::scoped_actor self{sys};
  self->request(manager, timeout, caf::connect_atom::value, host, port)
      .receive(
          [&](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
            if (ptr) {
              out = caf::actor_cast<caf::actor>(std::move(ptr));
            } else {
              out = caf::make_error(caf::sec::no_actor_published_at_port,
                                    host + ":" + std::to_string(port));
            }
          },
          [&](caf::error& e) {
            if (e == caf::sec::incompatible_application_ids) {
              // Checked by CAF in the handshake: say what it means here.
              out = caf::make_error(caf::sec::incompatible_application_ids,
                                    std::string("the peer speaks another protocol than ") +
                                        k_wire_protocol + " (refused at connect)");
            } else {
              out = std::move(e);
            }
          });
  return out;
}

}  // namespace flux::detail::wire
