#pragma once
// Test support: N virtual "hosts" on one machine, each a Linux network namespace with its
// own address, joined by a bridge that the test process itself (the root namespace) also
// sits on — so cluster tests can run the driver and its workers on separate hosts and cut
// one of them off (link down, or an nftables drop-everything table) the way the failure
// experiments of distribution.md §3 did. Needs root, iproute2 and nftables.
//
// Layout (R.S chosen per process, see below):
//
//   root namespace                switch namespace <t>s        host namespace <t>h<i>
//   <t>g 10.R.S.254/24 <--veth--> uplink -+
//                                 br0 ----+- h<i> <--veth-->  eth0 10.R.S.(i+1)/24
//                                                              default via 10.R.S.254
//
// The bridge lives in a namespace of its own, not in the root namespace: with br_netfilter
// loaded (bridge-nf-call-iptables = 1, the default once Docker is installed) every frame
// bridged in the root namespace goes through the root namespace's iptables FORWARD chain,
// whose policy Docker sets to DROP — hosts could reach the root namespace but not each
// other. In a fresh namespace there are no rules, and the root namespace is only an
// endpoint (it forwards nothing), so no firewall of the machine is touched or matters.
//
// Names: <t> = stem + pid + a per-process instance digit, so two test processes (ctest -j2)
// never share a namespace or interface name; the only interface in the root namespace is
// <t>g (at most 12 characters). The subnet 10.R.S.0/24 starts from the pid and moves on to
// the next /24 while any address of the root namespace lies in it; the choice and the
// gateway address are made under a file lock, so two processes never pick the same one.

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace flux::test {

/// What a finished command left: its exit status (128 + signal if killed, -1 if it could not
/// be started or was stopped at its time limit) and its two outputs.
struct CommandResult {
  int status = -1;
  std::string out;
  std::string err;
  bool timed_out = false;
};

/// Runs `argv` (no shell; argv[0] looked up in PATH) with stdin from /dev/null, collecting
/// stdout and stderr; SIGKILLed after `limit`. Never throws for the command's own failure.
inline CommandResult run_argv(const std::vector<std::string>& argv,
                              std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  CommandResult r;
  if (argv.empty()) throw std::invalid_argument("run_argv: empty argv");
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("run_argv: pipe failed");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw std::runtime_error("run_argv: pipe failed");
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls from here on
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::execvp(args[0], args.data());
    static const char msg[] = "exec failed\n";
    [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (pid < 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    throw std::runtime_error("run_argv: fork failed");
  }
  auto deadline = std::chrono::steady_clock::now() + limit;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int k = 0; k < 2; ++k) {
      if (fds[k].fd < 0 || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      ssize_t got = ::read(fds[k].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[k]->append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        ::close(fds[k].fd);
        fds[k].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (r.timed_out)
    r.status = -1;
  else if (WIFEXITED(wstatus))
    r.status = WEXITSTATUS(wstatus);
  else if (WIFSIGNALED(wstatus))
    r.status = 128 + WTERMSIG(wstatus);
  return r;
}

/// `argv` joined with spaces, for messages.
inline std::string join_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

/// Runs `argv` and returns its stdout; throws std::runtime_error naming the command and
/// showing its output unless it exits with status 0 within `limit`.
inline std::string run_checked(const std::vector<std::string>& argv,
                               std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  CommandResult r = run_argv(argv, limit);
  if (r.status != 0) {
    throw std::runtime_error("command failed (" +
                             (r.timed_out ? "killed after " + std::to_string(limit.count()) + " ms"
                                          : "status " + std::to_string(r.status)) +
                             "): " + join_argv(argv) + "\nstdout: " + r.out + "\nstderr: " + r.err);
  }
  return r.out;
}

class VirtualHosts {
 public:
  /// Creates `count` hosts (1..99). `stem` (1..3 letters) starts every name, so
  /// leftovers of a crashed run can be told apart and removed by hand
  /// (`ip netns list`, `ip link`). Throws std::runtime_error if any step fails, after
  /// removing what it had made.
  explicit VirtualHosts(int count, std::string stem = "fx") : count_(count) {
    if (count < 1 || count > 99)
      throw std::invalid_argument("VirtualHosts: count must be 1..99, not " +
                                  std::to_string(count));
    if (stem.empty() || stem.size() > 3)
      throw std::invalid_argument("VirtualHosts: stem must be 1..3 characters: '" + stem + "'");
    for (char c : stem)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))  // digits would blur the pid
        throw std::invalid_argument("VirtualHosts: stem must be letters: '" + stem + "'");
    static std::atomic<unsigned> instances{0};
    token_ = stem + std::to_string(::getpid()) + std::to_string(instances++ % 10);
    switch_ns_ = token_ + "s";
    gateway_dev_ = token_ + "g";
    try {
      build();
    } catch (...) {
      teardown();
      throw;
    }
  }

  /// SIGKILLs and reaps every process spawned here that is still running, then removes the
  /// namespaces and the root namespace's interface. Never throws.
  ~VirtualHosts() { teardown(); }

  VirtualHosts(const VirtualHosts&) = delete;
  VirtualHosts& operator=(const VirtualHosts&) = delete;

  /// Whether this process can make hosts: root, `ip netns add`/`del` work, nft runs. On false,
  /// `why` (if given) says what is missing. For a clear assertion message: a test that
  /// needs hosts must fail without them, not skip.
  static bool available(std::string* why = nullptr) {
    auto fail = [&](std::string reason) {
      if (why) *why = std::move(reason);
      return false;
    };
    if (::geteuid() != 0) return fail("not root (euid " + std::to_string(::geteuid()) + ")");
    std::string probe = "fxprobe" + std::to_string(::getpid());
    CommandResult add = run_argv({"ip", "netns", "add", probe}, std::chrono::seconds(10));
    if (add.status != 0) return fail("`ip netns add` failed: " + add.out + add.err);
    CommandResult del = run_argv({"ip", "netns", "del", probe}, std::chrono::seconds(10));
    if (del.status != 0) return fail("`ip netns del` failed: " + del.out + del.err);
    CommandResult nft = run_argv({"nft", "--version"}, std::chrono::seconds(10));
    if (nft.status != 0) return fail("`nft --version` failed: " + nft.out + nft.err);
    return true;
  }

  int size() const { return count_; }
  /// Host i's address, 10.R.S.(i+1).
  std::string ip(int i) const { return subnet_ + std::to_string(check(i) + 1); }
  /// The root namespace's address on the hosts' network, 10.R.S.254: hosts reach servers
  /// that the test process runs when they listen on it (or on 0.0.0.0).
  std::string gateway_ip() const { return subnet_ + "254"; }
  /// Host i's namespace (for `ip netns exec`, `ip -n`).
  std::string netns(int i) const { return token_ + "h" + std::to_string(check(i)); }
  /// Every namespace this object made: the switch's, then the hosts'.
  std::vector<std::string> namespaces() const {
    std::vector<std::string> all{switch_ns_};
    for (int i = 0; i < count_; ++i) all.push_back(netns(i));
    return all;
  }
  /// The one interface this object adds to the root namespace.
  std::string gateway_device() const { return gateway_dev_; }
  /// The interface inside each host's namespace.
  static std::string host_device() { return "eth0"; }

  /// Starts `argv` (argv[0] looked up in PATH) inside host i's network namespace, with
  /// `env` added to (or replacing in) this process's environment and stdout and stderr
  /// appended to `log_path` (or /dev/null if empty). The child gets SIGKILL if the thread
  /// that called spawn exits (PR_SET_PDEATHSIG), so a crashed test leaves no worker behind.
  /// The caller may waitpid() the pid itself; whatever still runs at destruction is killed.
  pid_t spawn(int i, const std::vector<std::string>& argv,
              const std::map<std::string, std::string>& env = {},
              const std::string& log_path = {}) {
    check(i);
    if (argv.empty()) throw std::invalid_argument("VirtualHosts::spawn: empty argv");
    // Everything the child needs is made here: after fork() only async-signal-safe calls.
    std::string path = find_executable(argv[0]);
    int ns_fd = open_netns(netns(i));
    std::string log = log_path.empty() ? "/dev/null" : log_path;
    int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      ::close(ns_fd);
      throw std::runtime_error("VirtualHosts::spawn: cannot open log " + log + ": " +
                               std::strerror(errno));
    }
    std::vector<std::string> env_strings;
    for (char** e = environ; e && *e; ++e) {
      std::string entry = *e;
      auto eq = entry.find('=');
      if (eq != std::string::npos && env.count(entry.substr(0, eq))) continue;
      env_strings.push_back(std::move(entry));
    }
    for (auto& [key, value] : env) env_strings.push_back(key + "=" + value);
    std::vector<char*> envp, args;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t parent = ::getpid();

    pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      if (::setns(ns_fd, CLONE_NEWNET) != 0) child_fail("setns failed\n", log_fd);
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::execve(path.c_str(), args.data(), envp.data());
      child_fail("execve failed\n", 2);
    }
    ::close(ns_fd);
    ::close(log_fd);
    if (pid < 0) throw std::runtime_error("VirtualHosts::spawn: fork failed");
    spawned_.push_back(pid);
    return pid;
  }

  /// Takes host i's interface down inside its namespace (the cable is pulled: packets to
  /// and from the host are lost, nobody is told). `link_up` puts it back, with its address
  /// and default route.
  void link_down(int i) { ip_in(i, {"link", "set", "dev", host_device(), "down"}); }
  void link_up(int i) {
    ip_in(i, {"link", "set", "dev", host_device(), "up"});
    // Routes through a device are removed while it is down; put the default one back.
    ip_in(i, {"route", "replace", "default", "via", gateway_ip()});
  }

  /// Installs an nftables table in host i's namespace that drops every packet in and out
  /// except on loopback (a firewall cut: the link stays up). `undrop` removes it.
  void drop_all(int i) {
    run_checked({"ip", "netns", "exec", netns(i), "nft",
                 "add table inet flux_cut; "
                 "add chain inet flux_cut in { type filter hook input priority -300; "
                 "policy drop; }; "
                 "add chain inet flux_cut out { type filter hook output priority -300; "
                 "policy drop; }; "
                 "add rule inet flux_cut in iifname \"lo\" accept; "
                 "add rule inet flux_cut out oifname \"lo\" accept"});
  }
  void undrop(int i) {
    run_checked({"ip", "netns", "exec", netns(i), "nft", "delete table inet flux_cut"});
  }

  /// Runs `command` with /bin/sh inside host i's namespace and returns its stdout; throws
  /// (with command and output) unless it exits 0 within `limit`.
  std::string exec(int i, const std::string& command,
                   std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    return run_checked({"ip", "netns", "exec", netns(check(i)), "/bin/sh", "-c", command}, limit);
  }

 private:
  int check(int i) const {
    if (i < 0 || i >= count_)
      throw std::out_of_range("VirtualHosts: no host " + std::to_string(i) + " (have " +
                              std::to_string(count_) + ")");
    return i;
  }

  [[noreturn]] static void child_fail(const char* msg, int fd) {
    [[maybe_unused]] auto n = ::write(fd, msg, std::strlen(msg));
    ::_exit(127);
  }

  static std::string find_executable(const std::string& name) {
    if (name.find('/') != std::string::npos) return name;
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    while (start <= dirs.size()) {
      size_t end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      std::string candidate = dirs.substr(start, end - start);
      candidate = (candidate.empty() ? "." : candidate) + "/" + name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      start = end + 1;
    }
    throw std::runtime_error("VirtualHosts::spawn: " + name + " not found in PATH");
  }

  static int open_netns(const std::string& name) {
    for (const char* dir : {"/run/netns/", "/var/run/netns/"}) {
      int fd = ::open((dir + name).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) return fd;
    }
    throw std::runtime_error("VirtualHosts: cannot open namespace " + name +
                             " under /run/netns or /var/run/netns");
  }

  void ip_in(int i, std::vector<std::string> args) {
    args.insert(args.begin(), {"ip", "-n", netns(check(i))});
    run_checked(args);
  }

  /// Holds an exclusive flock on a machine-wide file while alive.
  struct MachineLock {
    int fd = -1;
    MachineLock() {
      for (const char* p : {"/run/lock/flux-virtual-hosts.lock", "/tmp/flux-virtual-hosts.lock"}) {
        fd = ::open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) break;
      }
      if (fd < 0) throw std::runtime_error("VirtualHosts: cannot open a lock file");
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          ::close(fd);
          throw std::runtime_error("VirtualHosts: lock file held for 60 s");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    ~MachineLock() { ::close(fd); }
    MachineLock(const MachineLock&) = delete;
    MachineLock& operator=(const MachineLock&) = delete;
  };

  void build() {
    // Namespaces first: a name already taken (a leftover of a run whose pid this process
    // now has) fails here, loudly.
    add_netns(switch_ns_);
    for (int i = 0; i < count_; ++i) add_netns(netns(i));
    auto sw = [&](std::vector<std::string> args) {
      args.insert(args.begin(), {"ip", "-n", switch_ns_});
      run_checked(args);
    };
    sw({"link", "set", "dev", "lo", "up"});
    sw({"link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"});
    sw({"link", "set", "dev", "br0", "up"});
    for (int i = 0; i < count_; ++i) {
      std::string port = "h" + std::to_string(i);
      sw({"link", "add", port, "type", "veth", "peer", "name", host_device(), "netns", netns(i)});
      sw({"link", "set", "dev", port, "master", "br0", "up"});
    }
    {
      MachineLock lock;
      subnet_ = free_subnet();
      run_checked({"ip", "link", "add", gateway_dev_, "type", "veth", "peer", "name", "uplink",
                   "netns", switch_ns_});
      made_gateway_ = true;
      run_checked({"ip", "addr", "add", gateway_ip() + "/24", "dev", gateway_dev_});
    }
    sw({"link", "set", "dev", "uplink", "master", "br0", "up"});
    run_checked({"ip", "link", "set", "dev", gateway_dev_, "up"});
    for (int i = 0; i < count_; ++i) {
      ip_in(i, {"link", "set", "dev", "lo", "up"});
      ip_in(i, {"addr", "add", ip(i) + "/24", "dev", host_device()});
      ip_in(i, {"link", "set", "dev", host_device(), "up"});
      ip_in(i, {"route", "add", "default", "via", gateway_ip()});
    }
  }

  void add_netns(const std::string& name) {
    run_checked({"ip", "netns", "add", name});
    made_ns_.push_back(name);
  }

  /// "10.R.S." for the first /24 from the pid's slot on in which the root namespace has no
  /// address. Called under MachineLock, so the gateway address added next claims it.
  std::string free_subnet() const {
    std::string used = run_checked({"ip", "-4", "-o", "addr", "show"});
    unsigned slots = 64 * 256;  // 10.128.0.0 - 10.191.255.0
    unsigned first = static_cast<unsigned>(::getpid()) % slots;
    for (unsigned k = 0; k < slots; ++k) {
      unsigned slot = (first + k) % slots;
      std::string prefix =
          "10." + std::to_string(128 + slot / 256) + "." + std::to_string(slot % 256) + ".";
      if (used.find("inet " + prefix) == std::string::npos) return prefix;
    }
    throw std::runtime_error("VirtualHosts: no free 10.128-191.x.0/24 subnet");
  }

  void teardown() noexcept {
    for (pid_t pid : spawned_) {
      // Ours and unreaped (0): its pid cannot have been reused, so killing it is safe.
      // Already reaped elsewhere (-1): leave that pid alone.
      if (::waitpid(pid, nullptr, WNOHANG) != 0) continue;
      ::kill(pid, SIGKILL);
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (::waitpid(pid, nullptr, WNOHANG) == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    spawned_.clear();
    try {
      // Deleting one end of a veth deletes both at once; a namespace's own interfaces go
      // with it only when the kernel gets round to destroying it, so the root namespace's
      // one is removed explicitly.
      if (made_gateway_) run_argv({"ip", "link", "del", gateway_dev_}, std::chrono::seconds(10));
      made_gateway_ = false;
      for (auto it = made_ns_.rbegin(); it != made_ns_.rend(); ++it)
        run_argv({"ip", "netns", "del", *it}, std::chrono::seconds(10));
      made_ns_.clear();
    } catch (...) {
    }
  }

  int count_ = 0;
  std::string token_;
  std::string switch_ns_;
  std::string gateway_dev_;
  std::string subnet_;  // "10.R.S."
  bool made_gateway_ = false;
  std::vector<std::string> made_ns_;
  std::vector<pid_t> spawned_;
};

}  // namespace flux::test
