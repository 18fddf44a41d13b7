#pragma once
// Test support: TLS certificates and keys made with the `openssl` command line (EC P-256,
// which is fast) in a fresh temporary directory that the destructor removes.
//
//   ca.crt                  the cluster CA
//   peer.crt / peer.key     signed by it: SAN IP:127.0.0.1, DNS:localhost (+ extra IPs),
//                           extendedKeyUsage serverAuth, clientAuth
//   peer2.crt / peer2.key   a second peer of the same CA
//   peer-enc.key            peer.key encrypted (AES-256) with passphrase "s3cret"
//   other-ca.crt, other.crt / other.key   a peer of another CA
//   self.crt / self.key     self-signed
//   expired.crt, future.crt peer.key's certificate by the cluster CA, valid only in 2020 /
//                           only from 2099 (`openssl ca -startdate/-enddate`)

#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace flux::test {

class TestCerts {
 public:
  static constexpr const char* k_passphrase = "s3cret";

  explicit TestCerts(const std::vector<std::string>& extra_ips = {}) {
    char tmpl[] = "/tmp/flux-certs-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    try {
      generate(extra_ips);
    } catch (...) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      throw;
    }
  }
  ~TestCerts() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  const std::string& dir() const { return dir_; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string ca_cert() const { return path("ca.crt"); }
  std::string peer_cert() const { return path("peer.crt"); }
  std::string peer_key() const { return path("peer.key"); }
  std::string peer2_cert() const { return path("peer2.crt"); }
  std::string peer2_key() const { return path("peer2.key"); }
  std::string peer_key_encrypted() const { return path("peer-enc.key"); }
  std::string other_ca_cert() const { return path("other-ca.crt"); }
  std::string other_cert() const { return path("other.crt"); }
  std::string other_key() const { return path("other.key"); }
  std::string self_signed_cert() const { return path("self.crt"); }
  std::string self_signed_key() const { return path("self.key"); }
  /// Key: peer_key().
  std::string expired_cert() const { return path("expired.crt"); }
  /// Key: peer_key().
  std::string not_yet_valid_cert() const { return path("future.crt"); }

  /// Writes `text` to a new file `name` in the directory; returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name), std::ios::binary) << text;
    return path(name);
  }

 private:
  void run(const std::string& command) const {
    std::string full = "cd '" + dir_ + "' && (" + command + ") >>gen.log 2>&1";
    int status = std::system(full.c_str());
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::ifstream log(path("gen.log"));
      std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      throw std::runtime_error("TestCerts: failed: " + command + "\n" + text);
    }
  }

  void generate(const std::vector<std::string>& extra_ips) {
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    std::string san = "IP:127.0.0.1,DNS:localhost";
    for (const auto& ip : extra_ips) san += ",IP:" + ip;
    write("peer.ext", "subjectAltName=" + san + "\nextendedKeyUsage=serverAuth,clientAuth\n");
    write("ca.cnf",
          "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\n"
          "serial = serial.txt\ndefault_md = sha256\npolicy = p\nunique_subject = no\n"
          "[p]\ncommonName = supplied\n");
    write("index.txt", "");
    write("serial.txt", "1000\n");
    auto ca = [&](const std::string& name, const std::string& cn) {
      run("openssl req -x509 -new " + ec + " -keyout " + name + ".key -out " + name +
          ".crt -days 30 -subj /CN=" + cn);
    };
    auto peer = [&](const std::string& name, const std::string& cn, const std::string& by) {
      run("openssl req -new " + ec + " -keyout " + name + ".key -out " + name +
          ".csr -subj /CN=" + cn);
      run("openssl x509 -req -in " + name + ".csr -CA " + by + ".crt -CAkey " + by +
          ".key -CAcreateserial -out " + name + ".crt -days 30 -extfile peer.ext");
    };
    ca("ca", "flux-test-ca");
    peer("peer", "peer", "ca");
    peer("peer2", "peer2", "ca");
    ca("other-ca", "other-test-ca");
    peer("other", "other", "other-ca");
    ca("self", "self-signed");
    run(std::string("openssl pkey -in peer.key -aes256 -passout pass:") + k_passphrase +
        " -out peer-enc.key");
    auto dated = [&](const std::string& name, const std::string& from, const std::string& to) {
      run("openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in peer.csr -out " +
          name + " -notext -extfile peer.ext -startdate " + from + " -enddate " + to);
    };
    dated("expired.crt", "20200101000000Z", "20200102000000Z");
    dated("future.crt", "20990101000000Z", "20991231000000Z");
  }

  std::string dir_;
};

}  // namespace flux::test
