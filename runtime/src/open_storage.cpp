#include "open_storage.hpp"

#include <cstdlib>

#include "redis_storage.hpp"

namespace flux::detail {

std::shared_ptr<Storage> open_storage(const Config& config) {
  if (config.storage) return config.storage;
  std::string store = config.store;
  if (store.empty()) {
    const char* env = std::getenv("FLUX_STORE");
    store = env && *env ? env : "memory";
  }
  if (store == "memory" || store == "memory://") return std::make_shared<MemoryStorage>();
  if (store.rfind("redis://", 0) == 0) {
    RedisOptions options;
    options.key_prefix = config.key_prefix;
    options.retry_deadline = config.store_retry_deadline;
    options.max_record_size = config.max_record_size;
    return std::make_shared<RedisStorage>(parse_redis_url(store), options);
  }
  // Only the scheme is shown: the rest may hold a password.
  auto scheme_end = store.find("://");
  throw Error(
      Errc::invalid_argument,
      "unknown store \"" +
          (scheme_end == std::string::npos ? store : store.substr(0, scheme_end + 3) + "...") +
          "\": expected \"memory\" or \"redis://[user:password@]host:port[/db]\"");
}

}  // namespace flux::detail
