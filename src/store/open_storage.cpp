#include "store/open_storage.hpp"

#include <cstdlib>

#include "store/redis_storage.hpp"

namespace flux::detail {

namespace {

// What an error may show of a store string it could not make sense of. The string may hold
// a password anywhere (a missing or misspelt scheme moves it where no parser expects it), so
// only a plain word without ':' or '@' (a misspelt "memory") is shown whole; otherwise at
// most the text before the first ':', and only if no '@' comes before it.
std::string shown(std::string_view store) {
  auto colon = store.find(':');
  auto at = store.find('@');
  if (colon == std::string_view::npos && at == std::string_view::npos) {
    return "\"" + std::string(store) + "\"";
  }
  if (colon != std::string_view::npos && (at == std::string_view::npos || at > colon)) {
    return "\"" + std::string(store.substr(0, colon)) + ":...\"";
  }
  return "(not shown: it may hold a password)";
}

}  // namespace

std::string resolve_store_url(const std::string& store) {
  if (!store.empty()) return store;
  const char* env = std::getenv("FLUX_STORE");
  return env && *env ? env : "memory";
}

std::shared_ptr<Storage> open_storage(const Config& config) {
  if (config.storage) return config.storage;
  const std::string store = resolve_store_url(config.store);
  if (store == "memory" || store == "memory://") {
    return std::make_shared<MemoryStorage>(
        config.retention.value_or(MemoryStorage::k_default_retention));
  }
  if (store.rfind("redis://", 0) == 0) {
    RedisOptions options;
    options.key_prefix = config.key_prefix;
    options.retry_deadline = config.store_retry_deadline;
    options.max_record_size = config.max_record_size;
    options.retention = config.retention.value_or(Retention{});
    return std::make_shared<RedisStorage>(parse_redis_url(store), options);
  }
  throw Error(Errc::invalid_argument,
              "unknown store " + shown(store) +
                  ": expected \"memory\" or \"redis://[user:password@]host:port[/db]\"");
}

}  // namespace flux::detail
