#pragma once
// Internal: keeps one dead TLS peer from cutting a process off all its other TLS peers.
//
// OpenSSL keeps a queue of errors per thread, and SSL_get_error() reports SSL_ERROR_SSL when
// that queue is not empty, whatever the call it is asked about did; OpenSSL's manual says the
// queue must be empty before every TLS I/O call. CAF 0.17.6's openssl module never empties it
// (its only drain, session::get_ssl_error, sits in log statements that Debian's build
// compiles out). All TLS connections of a process are served by one multiplexer thread, so a
// peer that dies ("unexpected eof while reading" queued) made the next SSL_read that would
// block on any other connection look like a protocol error: healthy workers were dropped with
// the dead one, on the driver and on the workers alike.
//
// libflux therefore defines SSL_read, SSL_write, SSL_connect and SSL_accept: each clears the
// calling thread's queue, then calls OpenSSL's own function (found with dlsym(RTLD_NEXT)).
// The dynamic linker binds CAF's calls to these definitions because the executable (or
// libflux.so) comes before libssl in the lookup order; clearing first is what OpenSSL asks
// of every caller, so other users of libssl in the process are served as before.

namespace flux::detail::tls {

/// Whether CAF's calls reach the definitions above: false when a link dropped them (a static
/// link that does not export them), in which case the caller says so once on stderr.
bool error_queue_guard_active();

}  // namespace flux::detail::tls
