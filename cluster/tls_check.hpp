#pragma once
// TEMPORARY local stub until helper-tls merges (not committed).
#include <string>
#include <string_view>

#include "flux/cluster.hpp"
namespace flux::detail {
void check_tls_files(const TlsConfig& tls, std::string_view who);
std::string resolve_passphrase(const TlsConfig& tls);
}  // namespace flux::detail
