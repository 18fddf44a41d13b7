// The TLS file checks run before CAF's openssl module starts (cluster/tls_check.hpp): every
// way a configuration cannot work fails with Error(invalid_argument) naming the process, the
// setting and the file, and no message shows a passphrase or key material.

#include "cluster/tls_check.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>

#include "flux/error.hpp"
#include "support/certs.hpp"

namespace {

using flux::TlsConfig;
using flux::detail::check_tls_files;
using flux::detail::resolve_passphrase;
using flux::test::TestCerts;

constexpr const char* k_who = "worker w1";

testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "\"" << text << "\"\n  does not contain \"" << part << "\"";
}

testing::AssertionResult Lacks(const std::string& text, const std::string& part) {
  if (text.find(part) == std::string::npos) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "\"" << text << "\"\n  contains \"" << part << "\"";
}

/// Sets (or unsets) FLUX_TLS_PASSPHRASE for its lifetime.
class EnvPassphrase {
 public:
  explicit EnvPassphrase(const char* value) {
    if (const char* old = std::getenv("FLUX_TLS_PASSPHRASE")) old_ = old;
    if (value) {
      ::setenv("FLUX_TLS_PASSPHRASE", value, 1);
    } else {
      ::unsetenv("FLUX_TLS_PASSPHRASE");
    }
  }
  ~EnvPassphrase() {
    if (old_) {
      ::setenv("FLUX_TLS_PASSPHRASE", old_->c_str(), 1);
    } else {
      ::unsetenv("FLUX_TLS_PASSPHRASE");
    }
  }
  EnvPassphrase(const EnvPassphrase&) = delete;
  EnvPassphrase& operator=(const EnvPassphrase&) = delete;

 private:
  std::optional<std::string> old_;
};

class TlsCheckTest : public testing::Test {
 protected:
  static void SetUpTestSuite() { certs_ = std::make_unique<TestCerts>(); }
  static void TearDownTestSuite() { certs_.reset(); }

  static const TestCerts& certs() { return *certs_; }

  /// The cluster CA's peer: a configuration that works.
  static TlsConfig valid() {
    return {.certificate = certs().peer_cert(),
            .key = certs().peer_key(),
            .ca_file = certs().ca_cert()};
  }

  /// The message of the Error(invalid_argument) that checking `tls` throws; fails the test
  /// (and returns "") if it throws nothing or something else.
  static std::string error_of(const TlsConfig& tls) {
    try {
      check_tls_files(tls, k_who);
    } catch (const flux::Error& e) {
      EXPECT_EQ(e.code(), flux::Errc::invalid_argument) << e.what();
      std::string what = e.what();
      EXPECT_TRUE(Contains(what, k_who));
      EXPECT_TRUE(Lacks(what, "BEGIN"));  // no PEM text, let alone key material
      return what;
    }
    ADD_FAILURE() << "no error";
    return "";
  }

  /// Removes an outer FLUX_TLS_PASSPHRASE for every test.
  EnvPassphrase no_env_{nullptr};

 private:
  static inline std::unique_ptr<TestCerts> certs_;
};

TEST_F(TlsCheckTest, ValidConfigurationPasses) { EXPECT_NO_THROW(check_tls_files(valid(), k_who)); }

TEST_F(TlsCheckTest, SecondPeerOfTheSameCaPasses) {
  TlsConfig tls = valid();
  tls.certificate = certs().peer2_cert();
  tls.key = certs().peer2_key();
  EXPECT_NO_THROW(check_tls_files(tls, k_who));
}

TEST_F(TlsCheckTest, NoTlsConfiguredIsNotChecked) {
  EXPECT_NO_THROW(check_tls_files(TlsConfig{}, k_who));
}

TEST_F(TlsCheckTest, PartialConfigurationNamesWhatIsMissing) {
  TlsConfig only_cert{.certificate = certs().peer_cert()};
  std::string what = error_of(only_cert);
  EXPECT_TRUE(Contains(what, "tls.certificate \"" + certs().peer_cert() + "\" is set"));
  EXPECT_TRUE(Contains(what, "tls.key and tls.ca_file are not"));

  TlsConfig no_ca = valid();
  no_ca.ca_file.clear();
  what = error_of(no_ca);
  EXPECT_TRUE(Contains(what, "tls.key \"" + certs().peer_key() + "\""));
  EXPECT_TRUE(Contains(what, "tls.ca_file is not"));

  TlsConfig only_ca{.ca_file = certs().ca_cert()};
  what = error_of(only_ca);
  EXPECT_TRUE(Contains(what, "tls.certificate and tls.key are not"));
}

TEST_F(TlsCheckTest, MissingFileNamesSettingPathAndErrno) {
  const std::string missing = certs().path("no-such-file.pem");
  for (auto field : {&TlsConfig::certificate, &TlsConfig::key, &TlsConfig::ca_file}) {
    TlsConfig tls = valid();
    tls.*field = missing;
    std::string setting = field == &TlsConfig::certificate ? "tls.certificate"
                          : field == &TlsConfig::key       ? "tls.key"
                                                           : "tls.ca_file";
    EXPECT_TRUE(Contains(
        error_of(tls), setting + " \"" + missing + "\" cannot be read: No such file or directory"));
  }
}

TEST_F(TlsCheckTest, DirectoryIsNotAFile) {
  TlsConfig tls = valid();
  tls.key = certs().dir();
  EXPECT_TRUE(
      Contains(error_of(tls), "tls.key \"" + certs().dir() + "\" cannot be read: Is a directory"));
}

TEST_F(TlsCheckTest, UnreadableFileNamesErrno) {
  std::string path = certs().write("unreadable.crt", "x");
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  TlsConfig tls = valid();
  tls.certificate = path;
  std::string error;
  if (::geteuid() != 0) {
    error = error_of(tls);
  } else {
    // Root reads any file: check as "nobody", in a child process.
    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(out[0]);
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
      std::string e = error_of(tls);
      ssize_t ignored = ::write(out[1], e.data(), e.size());
      (void)ignored;
      ::_exit(0);
    }
    ::close(out[1]);
    char buf[4096];
    for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) error.append(buf, n);
    ::close(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "the child could not become nobody";
  }
  EXPECT_TRUE(Contains(error, "tls.certificate \"" + path + "\" cannot be read: Permission denied"))
      << error;
}

TEST_F(TlsCheckTest, CertificateFileWithoutCertificate) {
  TlsConfig tls = valid();
  tls.certificate = certs().peer_key();  // certificate and key swapped
  EXPECT_TRUE(Contains(error_of(tls),
                       "tls.certificate \"" + certs().peer_key() + "\" holds no PEM certificate"));

  tls.certificate = certs().write("garbage.crt", "not a certificate\n");
  EXPECT_TRUE(Contains(error_of(tls),
                       "tls.certificate \"" + tls.certificate + "\" holds no PEM certificate"));
}

TEST_F(TlsCheckTest, KeyFileWithoutKey) {
  TlsConfig tls = valid();
  tls.key = certs().peer_cert();
  EXPECT_TRUE(
      Contains(error_of(tls), "tls.key \"" + certs().peer_cert() + "\" holds no PEM private key"));
}

TEST_F(TlsCheckTest, EncryptedKeyWithoutPassphrase) {
  TlsConfig tls = valid();
  tls.key = certs().peer_key_encrypted();
  std::string what = error_of(tls);
  EXPECT_TRUE(Contains(what, "tls.key \"" + tls.key +
                                 "\" cannot be loaded: wrong or missing "
                                 "passphrase"));
  EXPECT_TRUE(Contains(what, "neither tls.passphrase nor FLUX_TLS_PASSPHRASE is set"));
}

TEST_F(TlsCheckTest, EncryptedKeyWithWrongPassphraseDoesNotShowIt) {
  TlsConfig tls = valid();
  tls.key = certs().peer_key_encrypted();
  tls.passphrase = "hunter2-wrong";
  std::string what = error_of(tls);
  EXPECT_TRUE(Contains(what, "tls.key \"" + tls.key +
                                 "\" cannot be loaded: wrong or missing "
                                 "passphrase"));
  EXPECT_TRUE(Contains(what, "from tls.passphrase"));
  EXPECT_TRUE(Lacks(what, "hunter2"));

  tls.passphrase.clear();
  EnvPassphrase env("env-wrong-9");
  what = error_of(tls);
  EXPECT_TRUE(Contains(what, "wrong or missing passphrase"));
  EXPECT_TRUE(Contains(what, "from FLUX_TLS_PASSPHRASE"));
  EXPECT_TRUE(Lacks(what, "env-wrong-9"));
}

TEST_F(TlsCheckTest, EncryptedKeyWithPassphraseFieldPasses) {
  TlsConfig tls = valid();
  tls.key = certs().peer_key_encrypted();
  tls.passphrase = TestCerts::k_passphrase;
  EXPECT_NO_THROW(check_tls_files(tls, k_who));
}

TEST_F(TlsCheckTest, EncryptedKeyWithPassphraseFromEnvironmentPasses) {
  TlsConfig tls = valid();
  tls.key = certs().peer_key_encrypted();
  EnvPassphrase env(TestCerts::k_passphrase);
  EXPECT_NO_THROW(check_tls_files(tls, k_who));
}

TEST_F(TlsCheckTest, PassphraseFieldTakesPrecedenceOverEnvironment) {
  TlsConfig tls = valid();
  EnvPassphrase env("from-env");
  EXPECT_EQ(resolve_passphrase(tls), "from-env");
  tls.passphrase = "from-field";
  EXPECT_EQ(resolve_passphrase(tls), "from-field");

  tls.key = certs().peer_key_encrypted();
  tls.passphrase = TestCerts::k_passphrase;  // the environment's is wrong, the field's is used
  EXPECT_NO_THROW(check_tls_files(tls, k_who));
}

TEST_F(TlsCheckTest, ResolvePassphraseIsEmptyWithoutEither) {
  EXPECT_EQ(resolve_passphrase(valid()), "");
}

TEST_F(TlsCheckTest, KeyOfAnotherCertificate) {
  TlsConfig tls = valid();
  tls.key = certs().peer2_key();
  EXPECT_TRUE(Contains(error_of(tls), "tls.key \"" + certs().peer2_key() +
                                          "\" does not belong to the certificate in "
                                          "tls.certificate \"" +
                                          certs().peer_cert() + "\""));
}

TEST_F(TlsCheckTest, CaFileWithoutCertificate) {
  TlsConfig tls = valid();
  tls.ca_file = certs().write("empty-ca.crt", "");
  EXPECT_TRUE(
      Contains(error_of(tls), "tls.ca_file \"" + tls.ca_file + "\" holds no PEM certificate"));

  tls.ca_file = certs().peer_key();  // a key, no certificate
  EXPECT_TRUE(
      Contains(error_of(tls), "tls.ca_file \"" + tls.ca_file + "\" holds no PEM certificate"));
}

TEST_F(TlsCheckTest, CertificateOfAnotherCa) {
  TlsConfig tls = valid();
  tls.certificate = certs().other_cert();
  tls.key = certs().other_key();
  std::string what = error_of(tls);
  EXPECT_TRUE(Contains(what, "the certificate in tls.certificate \"" + certs().other_cert() +
                                 "\" (subject \"CN=other\", issuer \"CN=other-test-ca\") is not "
                                 "signed by a CA in tls.ca_file \"" +
                                 certs().ca_cert() + "\" (which holds \"CN=flux-test-ca\")"));
}

TEST_F(TlsCheckTest, SelfSignedCertificate) {
  TlsConfig tls = valid();
  tls.certificate = certs().self_signed_cert();
  tls.key = certs().self_signed_key();
  EXPECT_TRUE(Contains(error_of(tls), "tls.certificate \"" + certs().self_signed_cert() +
                                          "\" (subject \"CN=self-signed\", issuer "
                                          "\"CN=self-signed\") is not signed by a CA in "
                                          "tls.ca_file \"" +
                                          certs().ca_cert() + "\""));
}

TEST_F(TlsCheckTest, CaFileOfAnotherCa) {
  TlsConfig tls = valid();
  tls.ca_file = certs().other_ca_cert();
  EXPECT_TRUE(Contains(error_of(tls),
                       "is not signed by a CA in tls.ca_file \"" + certs().other_ca_cert() + "\""));
}

TEST_F(TlsCheckTest, CaFileWithoutCaCertificate) {
  TlsConfig tls = valid();
  tls.ca_file = certs().peer2_cert();  // a peer's certificate instead of the CA's
  EXPECT_TRUE(Contains(error_of(tls), "is not signed by a CA in tls.ca_file \"" +
                                          certs().peer2_cert() +
                                          "\" (which holds \"CN=peer2\", none of them a CA "
                                          "certificate)"));
}

TEST_F(TlsCheckTest, ExpiredCertificate) {
  TlsConfig tls = valid();
  tls.certificate = certs().expired_cert();
  EXPECT_TRUE(Contains(error_of(tls), "the certificate in tls.certificate \"" +
                                          certs().expired_cert() +
                                          "\" (subject \"CN=peer\") has expired: it was valid "
                                          "until 2020-01-02 00:00:00Z"));
}

TEST_F(TlsCheckTest, NotYetValidCertificate) {
  TlsConfig tls = valid();
  tls.certificate = certs().not_yet_valid_cert();
  EXPECT_TRUE(Contains(error_of(tls), "the certificate in tls.certificate \"" +
                                          certs().not_yet_valid_cert() +
                                          "\" (subject \"CN=peer\") is not valid yet: it is valid "
                                          "from 2099-01-01 00:00:00Z"));
}

}  // namespace
