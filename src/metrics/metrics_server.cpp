// flux::MetricsServer: a minimal HTTP/1.x server for Prometheus scrapes (include/flux/metrics.hpp).
//
// One thread, one connection at a time: a scrape is a few KiB produced in microseconds, and a
// Prometheus server scrapes every few seconds. A client gets at most `k_request_time` to send
// its request head (at most `k_max_request` bytes) and as long to take the answer, so a slow
// or silent client delays the next scrape by that much at worst, never forever. Every answer
// closes the connection (no keep-alive to manage).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "flux/error.hpp"
#include "flux/metrics.hpp"

namespace flux {
namespace detail {
namespace {

constexpr auto k_request_time = std::chrono::seconds(2);
constexpr std::size_t k_max_request = 8192;

std::string errno_text(int err) { return std::strerror(err); }

/// "host:port" / "[v6]:port" -> (host, port); throws naming `listen` when malformed.
std::pair<std::string, std::string> split_listen(const std::string& listen) {
  auto bad = [&](const std::string& why) {
    return Error(Errc::invalid_argument,
                 "metrics: cannot listen on '" + listen + "': " + why +
                     " (expected host:port, e.g. 127.0.0.1:9464, or [::1]:9464)");
  };
  std::string host, port;
  if (!listen.empty() && listen.front() == '[') {
    const auto close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      throw bad("malformed IPv6 address");
    }
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) throw bad("no port");
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  if (host.empty()) throw bad("no host");
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535) {
    throw bad("the port must be a number from 0 to 65535");
  }
  return {host, port};
}

std::string response(int code, const char* reason, const std::string& content_type,
                     const std::string& body, bool head) {
  std::string out = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\n";
  out += "Content-Type: " + content_type + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (code == 405) out += "Allow: GET, HEAD\r\n";
  out += "Connection: close\r\n\r\n";
  if (!head) out += body;
  return out;
}

/// The answer to a request head (everything up to the blank line, or what arrived of it).
std::string answer(const std::string& request, bool complete) {
  const char* text = "text/plain; charset=utf-8";
  if (!complete)
    return response(400, "Bad Request", text, "incomplete or oversized request\n", false);
  const auto line_end = request.find("\r\n");
  const std::string line = request.substr(0, line_end);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || line.compare(sp2 + 1, 5, "HTTP/") != 0) {
    return response(400, "Bad Request", text, "malformed request line\n", false);
  }
  const std::string method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  const bool head = method == "HEAD";
  if (method != "GET" && !head)
    return response(405, "Method Not Allowed", text, "use GET\n", false);
  if (target == "/metrics") {
    return response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", metrics_text(), head);
  }
  if (target == "/") {
    return response(200, "OK", text, "Flux metrics: GET /metrics (Prometheus text format)\n", head);
  }
  return response(404, "Not Found", text, "not found; the metrics are at /metrics\n", head);
}

/// Milliseconds left until `deadline` (0 when passed).
int left_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

/// Serves one connection, bounded by k_request_time each way; `stop` (a pipe's read end)
/// cuts it short.
void serve(int fd, int stop) {
  const auto deadline = std::chrono::steady_clock::now() + k_request_time;
  std::string request;
  bool complete = false;
  char buf[2048];
  while (!complete && request.size() <= k_max_request) {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop, POLLIN, 0}};
    const int ms = left_ms(deadline);
    if (ms == 0 || ::poll(p, 2, ms) <= 0 || (p[1].revents & POLLIN)) return;  // too slow
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;  // closed or failed before a whole request: nothing to answer
    request.append(buf, static_cast<std::size_t>(n));
    complete =
        request.find("\r\n\r\n") != std::string::npos || request.find("\n\n") != std::string::npos;
  }
  const std::string out = answer(request, complete);
  const auto send_deadline = std::chrono::steady_clock::now() + k_request_time;
  std::size_t sent = 0;
  while (sent < out.size()) {
    pollfd p[2] = {{fd, POLLOUT, 0}, {stop, POLLIN, 0}};
    const int ms = left_ms(send_deadline);
    if (ms == 0 || ::poll(p, 2, ms) <= 0 || (p[1].revents & POLLIN)) return;
    const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
}

}  // namespace

class MetricsServerImpl {
 public:
  explicit MetricsServerImpl(const std::string& listen) {
    auto [host, port] = split_listen(listen);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
      throw Error(Errc::invalid_argument,
                  "metrics: cannot listen on '" + listen + "': " + ::gai_strerror(rc));
    }
    std::string why = "no address";
    for (addrinfo* a = found; a && fd_ < 0; a = a->ai_next) {
      int fd =
          ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
      if (fd < 0) {
        why = errno_text(errno);
        continue;
      }
      int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 16) != 0) {
        why = errno_text(errno);
        ::close(fd);
        continue;
      }
      fd_ = fd;
    }
    ::freeaddrinfo(found);
    if (fd_ < 0)
      throw Error(Errc::invalid_argument, "metrics: cannot listen on '" + listen + "': " + why);
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    if (::pipe2(stop_, O_CLOEXEC) != 0) {
      ::close(fd_);
      throw Error(Errc::invalid_argument, "metrics: cannot create a pipe: " + errno_text(errno));
    }
    thread_ = std::thread([this] { loop(); });
  }

  ~MetricsServerImpl() {
    const char c = 0;
    ssize_t ignored = ::write(stop_[1], &c, 1);
    (void)ignored;
    thread_.join();
    ::close(fd_);
    ::close(stop_[0]);
    ::close(stop_[1]);
  }

  std::uint16_t port() const noexcept { return port_; }

 private:
  void loop() {
    for (;;) {
      pollfd p[2] = {{fd_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[1].revents & POLLIN) return;
      const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (client < 0) continue;  // e.g. the client gave up already
      serve(client, stop_[0]);
      ::close(client);
    }
  }

  int fd_ = -1;
  int stop_[2] = {-1, -1};
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace detail

MetricsServer::MetricsServer(const std::string& listen)
    : impl_(std::make_unique<detail::MetricsServerImpl>(listen)) {}
MetricsServer::~MetricsServer() = default;
std::uint16_t MetricsServer::port() const noexcept { return impl_->port(); }

}  // namespace flux
