#pragma once
// Internal: choosing the store a Runtime writes to.

#include <memory>
#include <string>

#include "flux/runtime.hpp"

namespace flux::detail {

/// `config.storage` if set, else the store named by `config.store` (or FLUX_STORE).
/// Throws Error(invalid_argument) for an unknown store, Error(storage) if it cannot be
/// reached.
std::shared_ptr<Storage> open_storage(const Config& config);

/// `store`, or the FLUX_STORE environment variable if `store` is empty, or "memory".
std::string resolve_store_url(const std::string& store);

}  // namespace flux::detail
