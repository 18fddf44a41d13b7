#include "cluster/openssl_error_queue.hpp"

#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdio>
#include <cstdlib>

namespace {

/// OpenSSL's own definition of `name`: the next one after this object in lookup order.
template <class Fn>
Fn next_definition(const char* name, Fn self) {
  void* found = ::dlsym(RTLD_NEXT, name);
  if (found == nullptr || found == reinterpret_cast<void*>(self)) {
    // Cannot happen with libssl linked in (libflux links it); never recurse into ourselves.
    std::fprintf(stderr, "flux: cannot find OpenSSL's %s (%s)\n", name,
                 found ? "only Flux's own definition" : ::dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(found);
}

}  // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static const auto openssl = next_definition("SSL_read", &SSL_read);
  ERR_clear_error();
  return openssl(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static const auto openssl = next_definition("SSL_write", &SSL_write);
  ERR_clear_error();
  return openssl(ssl, buf, num);
}

int SSL_connect(SSL* ssl) {
  static const auto openssl = next_definition("SSL_connect", &SSL_connect);
  ERR_clear_error();
  return openssl(ssl);
}

int SSL_accept(SSL* ssl) {
  static const auto openssl = next_definition("SSL_accept", &SSL_accept);
  ERR_clear_error();
  return openssl(ssl);
}

}  // extern "C"

namespace flux::detail::tls {

bool error_queue_guard_active() {
  // What the dynamic linker gives any library that calls SSL_read (CAF's openssl module).
  return ::dlsym(RTLD_DEFAULT, "SSL_read") == reinterpret_cast<void*>(&SSL_read);
}

}  // namespace flux::detail::tls
