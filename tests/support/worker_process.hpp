#pragma once
// A cluster worker in a process of its own (tests/cluster_node_main.cpp), for tests: started,
// killed, stopped and resumed like a real one.

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

class WorkerProcess {
 public:
  /// Starts `cluster_node` with `args`, named `name` (FLUX_TEST_NAME), with `env` added
  /// ("KEY=value"); waits up to 10 s for its "ready <port>" line. Its stderr goes to
  /// `log_path` if given (else to the test's stderr). `prefix_argv`: run it through another
  /// program first (e.g. {"ip", "netns", "exec", "ns1"}).
  WorkerProcess(const std::string& binary, const std::string& name, std::vector<std::string> args,
                std::vector<std::string> env = {}, std::vector<std::string> prefix_argv = {}) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      std::vector<std::string> all = prefix_argv;
      all.push_back(binary);
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::setenv("FLUX_TEST_NAME", name.c_str(), 1);
      for (auto& e : env) ::putenv(e.data());
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (line.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{out_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        kill();
        throw std::runtime_error("worker " + name + " did not say it was ready within 10 s");
      }
      char buf[64];
      ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) {
        kill();
        throw std::runtime_error("worker " + name + " exited before it was ready");
      }
      line.append(buf, static_cast<std::size_t>(n));
    }
    buffer_ = line.substr(line.find('\n') + 1);
    line.resize(line.find('\n'));
    if (line.rfind("ready ", 0) != 0) {
      kill();
      throw std::runtime_error("worker " + name + " said: " + line);
    }
    port_ = std::stoi(line.substr(6));
  }

  /// The next line the process prints on stdout (without the newline), waiting at most
  /// `bound`; throws if none comes.
  std::string read_line(std::chrono::milliseconds bound) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (buffer_.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{out_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        throw std::runtime_error("no line within " + std::to_string(bound.count()) + " ms");
      }
      char buf[256];
      ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) throw std::runtime_error("the process closed its output");
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
    std::string line = buffer_.substr(0, buffer_.find('\n'));
    buffer_.erase(0, line.size() + 1);
    return line;
  }
  ~WorkerProcess() { kill(); }
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  /// SIGKILL and reap.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    if (out_ >= 0) ::close(out_);
    out_ = -1;
  }
  /// SIGTERM, then waits up to `bound` for it to exit; returns its exit status, or -1 if it
  /// had to be killed.
  int terminate(std::chrono::milliseconds bound) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      ::usleep(10000);
    }
    kill();
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int port_ = 0;
  std::string buffer_;  // what was read past the last line returned
};

}  // namespace flux::test
