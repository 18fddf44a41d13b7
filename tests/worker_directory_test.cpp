// The worker directory (cluster/worker_directory.hpp) against a private redis-server: cards
// round-trip exactly; a card that is not refreshed drops out of live() and of the index after
// its TTL; refresh keeps it and says when it came too late; withdraw is immediate; a corrupt
// card is reported by key while the others are still listed; prefixes are separate clusters;
// bytes that are no card (truncated, forged, another worker's) are Error(storage) naming the key.

#include "cluster/worker_directory.hpp"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <gtest/gtest.h>
#include <kj/io.h>

#include <chrono>
#include <flux/error.hpp>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "format/record_codec.hpp"
#include "schema/flux.capnp.h"
#include "support/redis_server.hpp"

namespace {

using namespace std::chrono_literals;
using flux::Errc;
using flux::Error;
using flux::detail::WorkerCard;
using flux::detail::WorkerDirectory;

WorkerCard card(const std::string& id) {
  WorkerCard c;
  c.id = id;
  c.host = "10.0.0.7";
  c.port = 40123;
  c.capacity = 16;
  c.tls = true;
  c.pid = 4242;
  c.started = flux::Timestamp(std::chrono::nanoseconds(1'700'000'000'123'456'789));
  c.nodes = {{"embed", "Value(string)->Value(list)"}, {"tokenize", "sig-2"}};
  c.busy = 5;
  c.heartbeat = flux::Timestamp(std::chrono::nanoseconds(1'700'000'001'000'000'000));
  return c;
}

std::vector<std::string> ids(const std::vector<WorkerCard>& cards) {
  std::vector<std::string> out;
  for (const WorkerCard& c : cards) out.push_back(c.id);
  return out;
}

// Polls `done` every 20 ms for up to 3 s.
bool eventually(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

// The Error(storage) that `f` throws (fails the test if it throws none or another code).
template <class F>
std::string storage_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::storage) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a flux::Error: " << e.what();
    return {};
  }
  ADD_FAILURE() << "nothing thrown";
  return {};
}

std::string members(const std::string& prefix) {
  return flux::test::shared_redis().cli("SMEMBERS " + prefix + ":workers");
}

TEST(WorkerCard, RoundTripsExactly) {
  const WorkerCard c = card("w-1");
  EXPECT_EQ(flux::detail::decode_worker_card(flux::detail::encode_worker_card(c), "k", "w-1"), c);

  WorkerCard bare;  // defaults, no nodes, protocol kept
  bare.id = "w-2";
  EXPECT_EQ(flux::detail::decode_worker_card(flux::detail::encode_worker_card(bare), "k", "w-2"),
            bare);
  EXPECT_EQ(bare.protocol, flux::detail::k_wire_protocol);
}

TEST(WorkerCard, EncodeRefusesWhatCouldNotBeReadBack) {
  WorkerCard c = card("w");
  c.id.clear();
  EXPECT_THROW(flux::detail::encode_worker_card(c), Error);
  c = card("w");
  c.nodes = {{"b", "1"}, {"a", "2"}};
  EXPECT_THROW(flux::detail::encode_worker_card(c), Error);
  c.nodes = {{"a", "1"}, {"a", "2"}};
  EXPECT_THROW(flux::detail::encode_worker_card(c), Error);
}

TEST(WorkerCard, BytesThatAreNoCardAreStorageErrorsNamingTheKey) {
  const std::string good = flux::detail::encode_worker_card(card("w-1"));
  const std::string key = "p:worker:w-1";
  const auto decode = [&](const std::string& bytes, const std::string& id = "w-1") {
    return storage_error([&] { flux::detail::decode_worker_card(bytes, key, id); });
  };
  const std::string prefix = "corrupt record at key \"p:worker:w-1\": ";

  std::string m = decode(good.substr(0, good.size() - 3));  // truncated
  EXPECT_EQ(m.rfind(prefix, 0), 0u) << m;
  EXPECT_NE(m.find("length field"), std::string::npos) << m;
  m = decode(good.substr(0, 10));
  EXPECT_NE(m.find("too short"), std::string::npos) << m;

  std::string flipped = good;
  flipped.back() = static_cast<char>(flipped.back() ^ 0x40);
  m = decode(flipped);
  EXPECT_NE(m.find("checksum mismatch"), std::string::npos) << m;

  // Forged: a valid envelope around bytes that are no Cap'n Proto message.
  m = decode(
      flux::detail::seal_record(flux::detail::RecordKind::worker_card, std::string(40, '\xff')));
  EXPECT_EQ(m.rfind(prefix, 0), 0u) << m;
  EXPECT_NE(m.find("undecodable"), std::string::npos) << m;

  // Another kind of record under a card's key.
  m = decode(flux::detail::encode_value(flux::Value("hello")));
  EXPECT_NE(m.find("wrong kind (expected worker card, found value)"), std::string::npos) << m;

  // A valid card, but another worker's (or no worker's).
  m = decode(good, "w-2");
  EXPECT_NE(m.find("worker id mismatch"), std::string::npos) << m;
  capnp::MallocMessageBuilder all_default;
  all_default.initRoot<flux::wire::WorkerCard>();
  kj::VectorOutputStream packed;
  capnp::writePackedMessage(packed, all_default);
  m = decode(flux::detail::seal_record(
      flux::detail::RecordKind::worker_card,
      std::string(reinterpret_cast<const char*>(packed.getArray().begin()),
                  packed.getArray().size())));
  EXPECT_NE(m.find("the worker id is empty"), std::string::npos) << m;
}

TEST(WorkerDirectory, AnnouncedCardsAreListedAscendingById) {
  const std::string prefix = flux::test::unique_prefix("wd");
  WorkerDirectory dir(flux::test::shared_redis().url(), prefix);
  dir.announce(card("w-b"), 10s);
  dir.announce(card("w-a"), 10s);
  dir.announce(card("w-c"), 10s);
  std::vector<std::string> corrupt{"stale"};
  const std::vector<WorkerCard> cards = dir.live(&corrupt);
  EXPECT_EQ(ids(cards), (std::vector<std::string>{"w-a", "w-b", "w-c"}));
  EXPECT_TRUE(corrupt.empty());
  ASSERT_EQ(cards.size(), 3u);
  EXPECT_EQ(cards[0], card("w-a"));  // through Redis, exactly

  // Announcing again replaces the card.
  WorkerCard changed = card("w-b");
  changed.capacity = 1;
  changed.nodes.clear();
  dir.announce(changed, 10s);
  EXPECT_EQ(dir.live().at(1), changed);
}

TEST(WorkerDirectory, ACardNotRefreshedExpiresAndLeavesTheIndex) {
  const std::string prefix = flux::test::unique_prefix("wd");
  WorkerDirectory dir(flux::test::shared_redis().url(), prefix);
  dir.announce(card("short"), 300ms);
  dir.announce(card("long"), 30s);
  EXPECT_EQ(ids(dir.live()), (std::vector<std::string>{"long", "short"}));
  EXPECT_TRUE(eventually([&] { return ids(dir.live()) == std::vector<std::string>{"long"}; }));
  EXPECT_EQ(members(prefix).find("short"), std::string::npos) << members(prefix);
  EXPECT_NE(members(prefix).find("long"), std::string::npos) << members(prefix);
}

TEST(WorkerDirectory, AnnouncingAgainKeepsACardAliveWithItsNewLoad) {
  const std::string prefix = flux::test::unique_prefix("wd");
  WorkerDirectory dir(flux::test::shared_redis().url(), prefix);
  WorkerCard c = card("w");
  dir.announce(c, 300ms);
  // Written again every 100 ms for 900 ms (three TTLs), as a worker's heartbeat does.
  for (std::uint32_t i = 0; i < 9; ++i) {
    std::this_thread::sleep_for(100ms);
    c.busy = i;
    dir.announce(c, 300ms);
    auto live = dir.live();
    ASSERT_EQ(live.size(), 1u) << "after " << (i + 1) * 100 << " ms";
    EXPECT_EQ(live[0].busy, i);
  }
  // Left alone, it expires; announcing again brings it back.
  EXPECT_TRUE(eventually([&] { return dir.live().empty(); }));
  dir.announce(c, 10s);
  EXPECT_EQ(ids(dir.live()), std::vector<std::string>{"w"});
}

TEST(WorkerDirectory, WithdrawRemovesACardAtOnce) {
  const std::string prefix = flux::test::unique_prefix("wd");
  WorkerDirectory dir(flux::test::shared_redis().url(), prefix);
  dir.announce(card("a"), 30s);
  dir.announce(card("b"), 30s);
  dir.withdraw("a");
  EXPECT_EQ(ids(dir.live()), std::vector<std::string>{"b"});
  EXPECT_EQ(members(prefix).find("a"), std::string::npos) << members(prefix);
  EXPECT_FALSE(dir.expires_in({"a"}).at(0).has_value());
  dir.withdraw("a");  // twice is harmless
}

TEST(WorkerDirectory, ACorruptCardIsReportedAndTheOthersAreStillListed) {
  const std::string prefix = flux::test::unique_prefix("wd");
  WorkerDirectory dir(flux::test::shared_redis().url(), prefix);
  dir.announce(card("a"), 30s);
  dir.announce(card("b"), 30s);
  dir.announce(card("c"), 30s);
  flux::test::shared_redis().cli("SET " + prefix + ":worker:b garbage");
  std::vector<std::string> corrupt;
  EXPECT_EQ(ids(dir.live(&corrupt)), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(corrupt, std::vector<std::string>{prefix + ":worker:b"});
  // Still indexed (it expires like any card), and live() without a report still works.
  EXPECT_NE(members(prefix).find("b"), std::string::npos);
  EXPECT_EQ(ids(dir.live()), (std::vector<std::string>{"a", "c"}));

  // A valid card copied under another worker's key is refused as well.
  flux::test::shared_redis().cli("COPY " + prefix + ":worker:a " + prefix + ":worker:b REPLACE");
  EXPECT_EQ(ids(dir.live(&corrupt)), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(corrupt, std::vector<std::string>{prefix + ":worker:b"});
}

TEST(WorkerDirectory, PrefixesDoNotSeeEachOthersWorkers) {
  const std::string p1 = flux::test::unique_prefix("wd");
  const std::string p2 = flux::test::unique_prefix("wd");
  WorkerDirectory d1(flux::test::shared_redis().url(), p1);
  WorkerDirectory d2(flux::test::shared_redis().url(), p2);
  d1.announce(card("x"), 30s);
  d2.announce(card("y"), 30s);
  EXPECT_EQ(ids(d1.live()), std::vector<std::string>{"x"});
  EXPECT_EQ(ids(d2.live()), std::vector<std::string>{"y"});
  EXPECT_FALSE(d2.expires_in({"x"}).at(0).has_value());
  d2.withdraw("x");
  EXPECT_EQ(ids(d1.live()), std::vector<std::string>{"x"});
}

TEST(WorkerDirectory, BadArgumentsAndAnUnreachableStoreAreErrors) {
  const std::string url = flux::test::shared_redis().url();
  EXPECT_THROW(WorkerDirectory(url, ""), Error);
  WorkerDirectory dir(url, flux::test::unique_prefix("wd"));
  EXPECT_THROW(dir.announce(card("w"), 0ms), Error);
  EXPECT_THROW(dir.announce(card("w"), -5ms), Error);

  // Nothing listens on a port that was free a moment ago.
  const std::string nowhere = "127.0.0.1:" + std::to_string(flux::test::free_port());
  const auto start = std::chrono::steady_clock::now();
  const std::string m = storage_error([&] { WorkerDirectory("redis://" + nowhere, "wd"); });
  EXPECT_NE(m.find(nowhere), std::string::npos) << m;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
