#include "cluster/wire.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <caf/openssl/all.hpp>

#include "cluster/openssl_error_queue.hpp"
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
    if (!tls::error_queue_guard_active()) {
      static const bool warned = [] {
        std::fprintf(stderr,
                     "flux: warning: this executable does not export libflux's SSL_read: one "
                     "TLS peer that dies can make this process drop its other TLS peers "
                     "(link it with -rdynamic; see src/cluster/openssl_error_queue.hpp)\n");
        return true;
      }();
      (void)warned;
    }
    cfg.set("openssl.certificate", network.tls.certificate);
    cfg.set("openssl.key", network.tls.key);
    cfg.set("openssl.cafile", network.tls.ca_file);
    if (std::string pass = resolve_passphrase(network.tls); !pass.empty()) {
      cfg.set("openssl.passphrase", std::move(pass));
    }
  }
  cfg.add_message_type<StepRequest>("flux.StepRequest");
  cfg.add_message_type<StepResult>("flux.StepResult");
  cfg.add_message_type<CancelStep>("flux.CancelStep");
  cfg.add_message_type<ContextCall>("flux.ContextCall");
  cfg.add_message_type<ContextReply>("flux.ContextReply");
  cfg.set("middleman.app-identifiers", std::vector<std::string>{k_wire_protocol});
  // Both ends must send heartbeats, or a healthy idle connection is dropped (distribution.md
  // §3); the values must be timespans, or CAF ignores them with a message on stderr.
  cfg.set("middleman.heartbeat-interval", caf::timespan{network.heartbeat_interval});
  cfg.set("middleman.connection-timeout", caf::timespan{network.connection_timeout});
}

namespace {

caf::expected<caf::actor> connect_once(caf::actor_system& sys, const NetworkConfig& network,
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

}  // namespace

caf::expected<caf::actor> connect_to(caf::actor_system& sys, const NetworkConfig& network,
                                     const std::string& host, std::uint16_t port,
                                     std::chrono::milliseconds timeout) {
  caf::expected<caf::actor> out = caf::sec::cannot_connect_to_node;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    out = connect_once(sys, network, host, port, timeout);
    if (out || out.error() != caf::sec::connection_timeout) break;
  }
  return out;
}

std::vector<std::string> probe_tcp(const std::vector<std::pair<std::string, std::uint16_t>>& to,
                                   std::chrono::milliseconds timeout) {
  std::vector<std::string> why(to.size());
  std::vector<pollfd> fds;
  std::vector<std::size_t> index;  // fds[i] probes to[index[i]]
  for (std::size_t i = 0; i < to.size(); ++i) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(to[i].second);
    if (int rc = ::getaddrinfo(to[i].first.c_str(), service.c_str(), &hints, &found); rc != 0) {
      why[i] = std::string("cannot resolve ") + to[i].first + ": " + ::gai_strerror(rc);
      continue;
    }
    int fd = ::socket(found->ai_family, found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                      found->ai_protocol);
    if (fd < 0) {
      why[i] = std::string("socket: ") + std::strerror(errno);
    } else if (::connect(fd, found->ai_addr, found->ai_addrlen) == 0) {
      ::close(fd);  // accepted at once (loopback)
    } else if (errno != EINPROGRESS) {
      why[i] = std::strerror(errno);
      ::close(fd);
    } else {
      fds.push_back(pollfd{fd, POLLOUT, 0});
      index.push_back(i);
    }
    ::freeaddrinfo(found);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t open = fds.size();
  while (open > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].fd < 0 || fds[k].revents == 0) continue;
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(fds[k].fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) why[index[k]] = std::strerror(err);
      ::close(fds[k].fd);
      fds[k].fd = -1;  // poll ignores negative descriptors
      --open;
    }
  }
  for (std::size_t k = 0; k < fds.size(); ++k) {
    if (fds[k].fd < 0) continue;
    ::close(fds[k].fd);
    why[index[k]] = "no answer within " + std::to_string(timeout.count()) + " ms";
  }
  return why;
}

}  // namespace flux::detail::wire
