#pragma once
// Internal: choosing the store a Runtime writes to.

#include <memory>

#include "flux/runtime.hpp"

namespace flux::detail {

/// `config.storage` if set, else the store named by `config.store` (or FLUX_STORE).
/// Throws Error(invalid_argument) for an unknown store, Error(storage) if it cannot be
/// reached.
std::shared_ptr<Storage> open_storage(const Config& config);

}  // namespace flux::detail
