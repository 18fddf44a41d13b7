#include "tls_check.hpp"
namespace flux::detail {
void check_tls_files(const TlsConfig&, std::string_view) {}
std::string resolve_passphrase(const TlsConfig& t) { return t.passphrase; }
}  // namespace flux::detail
