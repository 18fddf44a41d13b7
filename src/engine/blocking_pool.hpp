#pragma once
// Internal: threads for work that must not run on the actor scheduler —
// `.blocking()` nodes and waiting on async nodes' futures.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace flux::detail {

/// Grows on demand up to `max_threads`; idle threads wait for work. Tasks beyond that
/// queue in submission order. Thread-safe. The destructor runs what is queued, then joins.
class BlockingPool {
 public:
  explicit BlockingPool(std::size_t max_threads);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  void submit(std::function<void()> task);

 private:
  void work();

  const std::size_t max_threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;     // threads waiting for work
  std::size_t wakeups_ = 0;  // idle threads already claimed by a submitted task
  bool stopping_ = false;
};

}  // namespace flux::detail
