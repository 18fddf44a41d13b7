#include "cluster/tls_check.hpp"

#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "flux/error.hpp"

namespace flux::detail {

namespace {

template <auto Free>
struct Deleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
using CtxPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;

struct InfoStackFree {
  void operator()(STACK_OF(X509_INFO) * s) const noexcept {
    sk_X509_INFO_pop_free(s, X509_INFO_free);
  }
};
using InfoStackPtr = std::unique_ptr<STACK_OF(X509_INFO), InfoStackFree>;

/// A setting and its file, as messages show them: tls.key "/etc/flux/w1.key".
std::string shown(std::string_view setting, const std::string& path) {
  return std::string(setting) + " \"" + path + "\"";
}

[[noreturn]] void fail(std::string_view who, const std::string& what) {
  ERR_clear_error();
  throw Error(Errc::invalid_argument, std::string(who) + ": " + what);
}

/// OpenSSL's reason for the first error queued on this thread (the cause; later entries say
/// where it surfaced), a fixed text such as "key values mismatch", never file contents. Then
/// clears the queue.
std::string openssl_reason() {
  unsigned long first = ERR_get_error();
  ERR_clear_error();
  if (first == 0) return "OpenSSL gave no reason";
  const char* reason = ERR_reason_error_string(first);
  return std::string("OpenSSL: ") +
         (reason ? reason : "error " + std::to_string(ERR_GET_REASON(first)));
}

void check_readable(std::string_view who, std::string_view setting, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  int err = errno;
  if (fd >= 0) {
    struct stat st {};
    err = ::fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    if (err == 0) {
      // Catches what only reading reveals (e.g. EIO).
      char byte;
      if (::read(fd, &byte, 1) < 0) err = errno;
    }
    ::close(fd);
  }
  if (err != 0) fail(who, shown(setting, path) + " cannot be read: " + std::strerror(err));
}

std::string name_of(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "?";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

std::string time_of(const ASN1_TIME* t) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !t || ASN1_TIME_print_ex(bio.get(), t, ASN1_DTFLGS_ISO8601) != 1) return "?";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

struct PassphraseRequest {
  const std::string* passphrase;
  bool asked = false;
};

// pem_password_cb: hands over the passphrase (never prompts on a terminal, which OpenSSL's
// default callback would do) and records that the key turned out to be encrypted.
int passphrase_callback(char* buf, int size, int /*rwflag*/, void* userdata) {
  auto* request = static_cast<PassphraseRequest*>(userdata);
  request->asked = true;
  const std::string& pass = *request->passphrase;
  if (pass.empty() || size <= 0 || pass.size() > static_cast<std::size_t>(size)) return -1;
  std::memcpy(buf, pass.data(), pass.size());
  return static_cast<int>(pass.size());
}

bool signer_missing(int err) {
  switch (err) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string resolve_passphrase(const TlsConfig& tls) {
  if (!tls.passphrase.empty()) return tls.passphrase;
  const char* env = std::getenv(k_tls_passphrase_env);
  return env ? std::string(env) : std::string();
}

void check_tls_files(const TlsConfig& tls, std::string_view who) {
  if (!tls.enabled()) return;
  ERR_clear_error();

  // 1. All three settings or none.
  struct Setting {
    const char* name;
    const std::string& path;
  };
  const Setting settings[] = {
      {"tls.certificate", tls.certificate}, {"tls.key", tls.key}, {"tls.ca_file", tls.ca_file}};
  std::vector<std::string> set, missing;
  for (const auto& s : settings) {
    if (s.path.empty()) {
      missing.emplace_back(s.name);
    } else {
      set.push_back(shown(s.name, s.path));
    }
  }
  if (!missing.empty()) {
    auto join = [](const std::vector<std::string>& items) {
      std::string out;
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += i + 1 == items.size() ? " and " : ", ";
        out += items[i];
      }
      return out;
    };
    fail(who, "TLS is only partly configured: " + join(set) + (set.size() == 1 ? " is" : " are") +
                  " set but " + join(missing) + (missing.size() == 1 ? " is" : " are") +
                  " not (mutual TLS needs all of tls.certificate, tls.key and tls.ca_file)");
  }

  // 2. Every file can be read.
  for (const auto& s : settings) check_readable(who, s.name, s.path);
  const std::string cert_shown = shown("tls.certificate", tls.certificate);
  const std::string key_shown = shown("tls.key", tls.key);
  const std::string ca_shown = shown("tls.ca_file", tls.ca_file);

  // 3. The certificate (chain), loaded as CAF loads it.
  CtxPtr ctx(SSL_CTX_new(TLS_method()));
  if (!ctx) fail(who, "cannot create an OpenSSL context: " + openssl_reason());
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.certificate.c_str()) != 1) {
    fail(who, cert_shown + " holds no PEM certificate (" + openssl_reason() + ")");
  }
  X509* leaf = SSL_CTX_get0_certificate(ctx.get());
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx.get(), &chain);

  // 4. The CA file.
  StorePtr store(X509_STORE_new());
  if (!store) fail(who, "cannot create an X509 store: " + openssl_reason());
  std::vector<std::string> ca_subjects;
  bool any_ca = false;  // a certificate that may sign others (basicConstraints CA:TRUE)
  {
    BioPtr bio(BIO_new_file(tls.ca_file.c_str(), "r"));
    if (!bio) fail(who, ca_shown + " cannot be read: " + openssl_reason());
    InfoStackPtr infos(PEM_X509_INFO_read_bio(bio.get(), nullptr, nullptr, nullptr));
    if (!infos) fail(who, ca_shown + " is not valid PEM (" + openssl_reason() + ")");
    for (int i = 0; i < sk_X509_INFO_num(infos.get()); ++i) {
      X509* cert = sk_X509_INFO_value(infos.get(), i)->x509;
      if (!cert) continue;
      if (X509_STORE_add_cert(store.get(), cert) != 1) {
        fail(who, ca_shown + ": cannot use its certificate \"" +
                      name_of(X509_get_subject_name(cert)) + "\" (" + openssl_reason() + ")");
      }
      ca_subjects.push_back(name_of(X509_get_subject_name(cert)));
      if (X509_check_ca(cert) != 0) any_ca = true;
    }
    if (ca_subjects.empty()) fail(who, ca_shown + " holds no PEM certificate");
  }

  // 5. The key: loads (with the passphrase, if encrypted) and belongs to the certificate.
  const std::string passphrase = resolve_passphrase(tls);
  PassphraseRequest request{&passphrase};
  PkeyPtr pkey;
  {
    BioPtr bio(BIO_new_file(tls.key.c_str(), "r"));
    if (!bio) fail(who, key_shown + " cannot be read: " + openssl_reason());
    pkey.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, passphrase_callback, &request));
  }
  if (!pkey) {
    if (request.asked) {
      const std::string source = !tls.passphrase.empty() ? "tls.passphrase"
                                 : !passphrase.empty()   ? k_tls_passphrase_env
                                                         : "";
      fail(who, key_shown + " cannot be loaded: wrong or missing passphrase (the key is " +
                    (source.empty()
                         ? "encrypted and neither tls.passphrase nor " +
                               std::string(k_tls_passphrase_env) + " is set"
                         : "encrypted and the passphrase from " + source + " does not decrypt it") +
                    ")");
    }
    fail(who, key_shown + " holds no PEM private key (" + openssl_reason() + ")");
  }
  if (SSL_CTX_use_PrivateKey(ctx.get(), pkey.get()) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    fail(who, key_shown + " does not belong to the certificate in " + cert_shown + " (" +
                  openssl_reason() + ")");
  }

  // 6. The certificate is signed by a CA of ca_file, and valid now.
  StoreCtxPtr verify(X509_STORE_CTX_new());
  if (!verify || X509_STORE_CTX_init(verify.get(), store.get(), leaf, chain) != 1) {
    fail(who, "cannot set up certificate verification: " + openssl_reason());
  }
  if (X509_verify_cert(verify.get()) == 1) {
    ERR_clear_error();
    return;
  }
  const int err = X509_STORE_CTX_get_error(verify.get());
  const int depth = X509_STORE_CTX_get_error_depth(verify.get());
  const X509* bad = X509_STORE_CTX_get_current_cert(verify.get());
  if (!bad) bad = leaf;
  const std::string subject = "\"" + name_of(X509_get_subject_name(bad)) + "\"";
  const std::string which = depth == 0
                                ? "the certificate in " + cert_shown + " (subject " + subject + ")"
                                : "the CA certificate " + subject + " (in " + ca_shown +
                                      " or the chain of " + cert_shown + ")";
  if (err == X509_V_ERR_CERT_HAS_EXPIRED) {
    fail(who, which + " has expired: it was valid until " + time_of(X509_get0_notAfter(bad)));
  }
  if (err == X509_V_ERR_CERT_NOT_YET_VALID) {
    fail(who, which + " is not valid yet: it is valid from " + time_of(X509_get0_notBefore(bad)));
  }
  if (signer_missing(err)) {
    std::string cas;
    for (std::size_t i = 0; i < ca_subjects.size() && i < 3; ++i) {
      cas += (i ? ", \"" : "\"") + ca_subjects[i] + "\"";
    }
    if (ca_subjects.size() > 3) cas += ", ...";
    if (!any_ca) cas += ", none of them a CA certificate";
    fail(who, "the certificate in " + cert_shown + " (subject \"" +
                  name_of(X509_get_subject_name(leaf)) + "\", issuer \"" +
                  name_of(X509_get_issuer_name(leaf)) + "\") is not signed by a CA in " + ca_shown +
                  " (which holds " + cas + "): " + X509_verify_cert_error_string(err));
  }
  fail(who,
       which + " does not verify against " + ca_shown + ": " + X509_verify_cert_error_string(err));
}

}  // namespace flux::detail
