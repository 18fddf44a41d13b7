#pragma once
// Test support: running a real binary as a user's shell would — arguments, added environment
// variables, captured stdout and stderr, its exit code — always within a bound (a process
// that outlives it is killed and the test fails saying so). `Background` keeps one running
// (a worker, a driver, a follower) and reads its output line by line.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace flux::test {

struct Exit {
  int code = -1;  ///< exit status; 128 + signal if killed by one; -1 if it had to be killed
  std::string out;
  std::string err;
};

namespace detail_process {

// This process's environment with `env` ("KEY=value") added or replacing, built before fork:
// between fork and exec the child only calls async-signal-safe functions (no malloc, which
// another thread of the test may have held at the fork).
inline std::vector<std::string> environment_with(const std::vector<std::string>& env) {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    const std::string key = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& add : env) replaced = replaced || add.substr(0, add.find('=')) == key;
    if (!replaced) out.push_back(entry);
  }
  out.insert(out.end(), env.begin(), env.end());
  return out;
}

inline pid_t spawn(const std::vector<std::string>& argv_in, const std::vector<std::string>& env,
                   int out_fd, int err_fd) {
  std::vector<std::string> args = argv_in;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> vars = environment_with(env);
  std::vector<char*> envp;
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    ::setpgid(0, 0);
    ::execvpe(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

inline int status_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace detail_process

/// Runs `argv` with `env` ("KEY=value") added to this process's environment; waits at most
/// `bound` (then kills it: code -1).
inline Exit run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                std::chrono::milliseconds bound = std::chrono::seconds(60)) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  pid_t pid = detail_process::spawn(argv, env, out[1], err[1]);
  ::close(out[1]);
  ::close(err[1]);
  Exit result;
  const auto deadline = std::chrono::steady_clock::now() + bound;
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd fds[2] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    if (out_open && (fds[0].revents & (POLLIN | POLLHUP))) {
      ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0)
        out_open = false;
      else
        result.out.append(buf, static_cast<size_t>(n));
    }
    if (err_open && (fds[1].revents & (POLLIN | POLLHUP))) {
      ssize_t n = ::read(err[0], buf, sizeof buf);
      if (n <= 0)
        err_open = false;
      else
        result.err.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      result.code = detail_process::status_code(status);
      return result;
    }
    ::usleep(10000);
  }
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  result.code = -1;
  result.err += "\n[test: killed after " + std::to_string(bound.count()) + " ms]";
  return result;
}

/// A process kept running in the background; killed (with its process group) on destruction.
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    char tmpl[] = "/tmp/flux-cli-stderr-XXXXXX";
    err_fd_ = ::mkstemp(tmpl);
    err_path_ = tmpl;
    pid_ = detail_process::spawn(argv, env, out[1], err_fd_);
    ::close(out[1]);
    out_ = out[0];
  }
  ~Background() {
    kill();
    if (out_ >= 0) ::close(out_);
    if (err_fd_ >= 0) ::close(err_fd_);
    ::unlink(err_path_.c_str());
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  /// The next line on its stdout, waiting at most `bound`; throws if none comes.
  std::string read_line(std::chrono::milliseconds bound = std::chrono::seconds(15)) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (buffer_.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{out_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        throw std::runtime_error("no line within " + std::to_string(bound.count()) +
                                 " ms; stderr: " + err());
      }
      char buf[1024];
      ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) throw std::runtime_error("the process closed its output; stderr: " + err());
      buffer_.append(buf, static_cast<size_t>(n));
    }
    std::string line = buffer_.substr(0, buffer_.find('\n'));
    buffer_.erase(0, line.size() + 1);
    return line;
  }
  /// Everything it printed on stdout until it exits (waiting at most `bound`).
  std::string read_rest(std::chrono::milliseconds bound = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{out_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) break;
      buffer_.append(buf, static_cast<size_t>(n));
    }
    std::string all = std::move(buffer_);
    buffer_.clear();
    return all;
  }
  /// What it printed on stderr so far.
  std::string err() const {
    std::string s;
    int fd = ::open(err_path_.c_str(), O_RDONLY);
    if (fd < 0) return s;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return s;
  }
  pid_t pid() const { return pid_; }
  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  /// Waits up to `bound` for it to exit; its exit code, or -1 if it had to be killed.
  int wait(std::chrono::milliseconds bound) {
    if (pid_ <= 0) return code_;
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return code_ = detail_process::status_code(status);
      }
      ::usleep(10000);
    }
    kill();
    return code_ = -1;
  }
  /// SIGTERM, then `wait(bound)`.
  int terminate(std::chrono::milliseconds bound = std::chrono::seconds(30)) {
    signal(SIGTERM);
    return wait(bound);
  }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int err_fd_ = -1;
  std::string err_path_;
  std::string buffer_;
  int code_ = -1;
};

}  // namespace flux::test
