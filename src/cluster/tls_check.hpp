#pragma once
// Internal: checks a process's TLS files before CAF's openssl module is started.
//
// CAF reports bad key material only when a connection is made, and then badly: a client's
// `remote_actor` hangs, a server aborts at its first connection (notes/distribution.md,
// section 5). So every Worker and driver checks its files here first and fails with an error
// that names the process, the setting, the file and what is wrong. Messages never contain the
// passphrase or any key material.

#include <string>
#include <string_view>

#include "flux/cluster.hpp"

namespace flux::detail {

/// The environment variable read for the key's passphrase when `TlsConfig::passphrase` is
/// empty.
inline constexpr const char* k_tls_passphrase_env = "FLUX_TLS_PASSPHRASE";

/// `tls.passphrase`, or if that is empty the value of FLUX_TLS_PASSPHRASE (empty if unset).
/// This is what CAF's `openssl.passphrase` must be set to.
std::string resolve_passphrase(const TlsConfig& tls);

/// Throws Error(invalid_argument) if `tls` cannot work; does nothing if TLS is not configured
/// at all (`!tls.enabled()`). `who` names the process in messages, e.g. "worker w1".
/// Checked, in this order: all three of certificate, key and ca_file are set; each file can be
/// read; the certificate file holds a PEM certificate (chain) and ca_file a PEM certificate;
/// the key loads (an encrypted key with the passphrase of `resolve_passphrase`) and belongs to
/// the certificate; the certificate is signed by a CA in ca_file and it (and the CA) is valid
/// now.
void check_tls_files(const TlsConfig& tls, std::string_view who);

}  // namespace flux::detail
