#include "engine/blocking_pool.hpp"

namespace flux::detail {

BlockingPool::BlockingPool(std::size_t max_threads) : max_threads_(max_threads ? max_threads : 1) {}

BlockingPool::~BlockingPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void BlockingPool::submit(std::function<void()> task) {
  std::lock_guard lock(mu_);
  queue_.push_back(std::move(task));
  // Each task claims one idle thread (a wake-up token) or a new thread; otherwise it queues.
  // Counting tokens rather than relying on notify_one keeps two tasks submitted back to back
  // from both landing on the same idle thread while another could have been started.
  if (idle_ > wakeups_) {
    ++wakeups_;
    cv_.notify_one();
  } else if (threads_.size() < max_threads_) {
    threads_.emplace_back([this] { work(); });
  }
}

void BlockingPool::work() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (queue_.empty()) {
      if (stopping_) return;
      ++idle_;
      cv_.wait(lock, [this] { return stopping_ || wakeups_ > 0; });
      --idle_;
      if (wakeups_ > 0) --wakeups_;
      continue;
    }
    auto task = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    task();          // tasks catch their own exceptions
    task = nullptr;  // release what it captured before taking the lock again
    lock.lock();
  }
}

}  // namespace flux::detail
