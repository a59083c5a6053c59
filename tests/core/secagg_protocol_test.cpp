// The SecAgg+ protocol engine end to end in-process: SecAggServer and one
// SecAggClient per client exchanging only bytes, with dropouts and bad input
// injected between them.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <cmath>
#include <random>
#include <set>

#include "fedtrack/core/error.h"
#include "privacy/secagg/quantization.h"
#include "privacy/secagg/secagg_client.h"
#include "privacy/secagg/secagg_server.h"

using namespace fedtrack;
using namespace fedtrack::secagg;

namespace {

std::function<double()> uniform_for(std::uint32_t id) {
  auto rng = std::make_shared<std::mt19937_64>(id * 7919ULL);
  return [rng] { return static_cast<double>((*rng)() >> 11) * 0x1.0p-53; };
}

struct Faults {
  std::map<Stage, std::set<std::uint32_t>> silent;  // do not answer this stage
  std::function<void(std::uint32_t, Stage, std::string&)> tamper_reply;
  std::function<void(std::uint32_t, Stage, std::string&)> tamper_request;
};

struct Outcome {
  SecAggResult result;
  std::map<std::uint32_t, std::string> dropped;
  std::vector<std::string> rejected;  // accept() errors
};

struct Round {
  std::size_t n = 0;
  std::size_t dimension = 0;
  std::vector<std::vector<float>> updates;  // [id-1]
  std::vector<double> examples;
  QuantizationParams q;
  RoundPlan plan;

  Round(std::size_t clients, std::size_t dim, ShareCount shares, ShareCount threshold, std::uint64_t seed = 1)
      : n(clients), dimension(dim) {
    q.clipping_range = 1.0;
    q.quantization_range = 1 << 20;
    q.modulus_range = 1ULL << 32;
    q.max_weight = 100.0;
    plan = plan_round(shares, threshold, clients);
    std::mt19937 rng(static_cast<unsigned>(seed));
    std::normal_distribution<float> value(0.0f, 0.6f);
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<float> u(dim);
      for (auto& v : u) v = value(rng);
      updates.push_back(u);
      examples.push_back(10.0 + 7.0 * static_cast<double>(i));
    }
  }

  // The words client `id` puts under its masks (what the exact sum is made of).
  std::vector<std::uint32_t> plain_words(std::uint32_t id) const {
    auto uniform = uniform_for(id);
    return quantize_weighted(updates[id - 1].data(), dimension, quantized_weight(examples[id - 1], q, n), q, uniform);
  }

  std::vector<float> expected_mean(const std::vector<std::uint32_t>& ids) const {
    std::vector<std::uint32_t> sum(dimension + 1, 0);
    for (auto id : ids) {
      auto w = plain_words(id);
      for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += w[i];  // mod 2^32
    }
    return dequantize_mean(sum, ids.size(), q);
  }

  Outcome run(const Faults& faults = {}) const {
    SecAggServer server(7, n, plan, q, dimension, 99);
    std::map<std::uint32_t, SecAggClient> clients;
    Outcome out;
    for (std::uint32_t id = 1; id <= n; ++id) clients[id];
    for (Stage stage : {Stage::kSetup, Stage::kShareKeys, Stage::kMaskedInput, Stage::kUnmask}) {
      for (auto id : server.participants()) {
        auto request = server.request(id);
        if (stage == Stage::kUnmask) {  // the server never asks for both secrets of one client
          auto m = decode_unmask_request(request, "test");
          for (auto d : m.dropped) EXPECT_EQ(std::count(m.survivors.begin(), m.survivors.end(), d), 0);
        }
        auto silent = faults.silent.find(stage);
        if (silent != faults.silent.end() && silent->second.count(id) != 0) continue;
        if (faults.tamper_request) faults.tamper_request(id, stage, request);
        std::string reply;
        auto& client = clients[id];
        try {
          switch (stage) {
            case Stage::kSetup: reply = client.on_setup(request); break;
            case Stage::kShareKeys: reply = client.on_share_keys(request); break;
            case Stage::kMaskedInput:
              reply = client.on_masked_input(request, updates[id - 1].data(), dimension, examples[id - 1],
                                             uniform_for(id));
              break;
            default: reply = client.on_unmask(request); break;
          }
        } catch (const Error& e) {
          server.drop(id, std::string("client failed: ") + e.what());
          continue;
        }
        if (faults.tamper_reply) faults.tamper_reply(id, stage, reply);
        try {
          server.accept(id, reply);
        } catch (const Error& e) {
          out.rejected.push_back(e.what());
        }
      }
      server.close_stage();
    }
    out.result = server.result();
    out.dropped = server.dropped();
    return out;
  }
};

std::vector<std::uint32_t> all_but(std::size_t n, const std::set<std::uint32_t>& gone) {
  std::vector<std::uint32_t> out;
  for (std::uint32_t id = 1; id <= n; ++id) {
    if (gone.count(id) == 0) out.push_back(id);
  }
  return out;
}

}  // namespace

TEST(SecAggPlan, FollowsFlowersResolution) {
  auto p = plan_round({0.5, true}, {0.5, true}, 10);
  EXPECT_EQ(p.num_shares, 5u);  // round(5) is odd already
  EXPECT_EQ(p.threshold, 2u);   // round(2.5) half-to-even = 2
  p = plan_round({0.4, true}, {0.6, true}, 10);
  EXPECT_EQ(p.num_shares, 5u);  // 4 is even -> 5
  EXPECT_EQ(p.threshold, 3u);
  p = plan_round({0.1, true}, {1, false}, 10);
  EXPECT_EQ(p.num_shares, 10u);  // <= 2 -> everyone
  EXPECT_EQ(p.threshold, 10u);   // integer 1 means the fraction 1.0
  p = plan_round({7, false}, {4, false}, 20);
  EXPECT_EQ(p.num_shares, 7u);
  EXPECT_EQ(p.threshold, 4u);
  EXPECT_THROW(plan_round({5, false}, {6, false}, 20), Error);
  EXPECT_THROW(plan_round({1.0, true}, {0.5, true}, 1), Error);
}

TEST(SecAggProtocol, SumEqualsPlainFedAvgOfTheQuantizedUpdatesExactly) {
  Round round(6, 300, {1.0, true}, {0.5, true});
  auto out = round.run();
  EXPECT_TRUE(out.dropped.empty());
  EXPECT_EQ(out.result.summed.size(), 6u);
  auto ids = all_but(6, {});
  EXPECT_EQ(out.result.mean, round.expected_mean(ids));  // bit for bit
  // And FedAvg of the raw (clipped) updates within the quantization bound:
  // each client's scaled value is off by < 1 step, the sum by < n steps.
  double total = 0;
  for (auto id : ids) total += quantized_weight(round.examples[id - 1], round.q, round.n) / double(round.q.quantization_range);
  const double step = 2 * round.q.clipping_range / round.q.quantization_range;
  const double bound = ids.size() * step / total + 1e-5;
  double examples = 0;
  for (auto e : round.examples) examples += e;
  for (std::size_t i = 0; i < round.dimension; ++i) {
    double fedavg = 0;
    for (auto id : ids) {
      double w = round.examples[id - 1] / examples;
      fedavg += w * std::clamp<double>(round.updates[id - 1][i] * round.examples[id - 1] / round.q.max_weight,
                                       -round.q.clipping_range, round.q.clipping_range) /
                (round.examples[id - 1] / round.q.max_weight);
    }
    ASSERT_NEAR(out.result.mean[i], fedavg, bound) << "coordinate " << i;
  }
}

TEST(SecAggProtocol, SparseGraphSumIsExact) {
  Round round(15, 64, {5, false}, {3, false}, 4);
  for (std::uint32_t id = 1; id <= 15; ++id) EXPECT_EQ(SecAggServer(1, 15, round.plan, round.q, 64, 99).neighbours(id).size(), 5u);
  auto out = round.run();
  EXPECT_EQ(out.result.mean, round.expected_mean(all_but(15, {})));
}

TEST(SecAggProtocol, DropoutsAfterShareKeysAboveTheThresholdGiveTheSurvivorsSum) {
  // Everyone is a neighbour (num_shares 1.0), threshold 5 of 10: 5 may drop.
  Round round(10, 128, {1.0, true}, {5, false}, 2);
  std::set<std::uint32_t> gone = {2, 3, 5, 8, 9};
  Faults faults;
  faults.silent[Stage::kMaskedInput] = gone;
  auto out = round.run(faults);
  EXPECT_EQ(out.dropped.size(), 5u);
  EXPECT_EQ(out.result.mean, round.expected_mean(all_but(10, gone)));
  // With 4 dropped, a survivor that then also misses unmask: the shares of
  // the other 5 suffice.
  gone = {2, 3, 5, 8};
  faults.silent[Stage::kMaskedInput] = gone;
  faults.silent[Stage::kUnmask] = {1};
  out = round.run(faults);
  EXPECT_EQ(out.result.mean, round.expected_mean(all_but(10, gone)));
}

TEST(SecAggProtocol, DropoutsInASparseGraph) {
  Round round(12, 40, {5, false}, {3, false}, 3);
  Faults faults;
  faults.silent[Stage::kMaskedInput] = {4};
  faults.silent[Stage::kShareKeys] = {9};
  auto out = round.run(faults);
  EXPECT_EQ(out.result.mean, round.expected_mean(all_but(12, {4, 9})));
}

TEST(SecAggProtocol, DropoutsBelowTheThresholdFailTheRoundCleanly) {
  Round round(10, 32, {1.0, true}, {5, false});
  Faults faults;
  faults.silent[Stage::kMaskedInput] = {1, 2, 3, 4, 5, 6};
  try {
    round.run(faults);
    FAIL() << "the round completed with 4 survivors and threshold 5";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("threshold"), std::string::npos) << e.what();
  }
  // Survivors of stage 3 that fail to send enough shares in stage 4.
  faults = {};
  faults.silent[Stage::kMaskedInput] = {1, 2, 3, 4};
  faults.silent[Stage::kUnmask] = {5, 6};
  EXPECT_THROW(round.run(faults), Error);
}

TEST(SecAggProtocol, AShareForTheWrongRecipientDropsItsSender) {
  Round round(8, 16, {1.0, true}, {4, false});
  Faults faults;
  faults.tamper_reply = [](std::uint32_t id, Stage stage, std::string& reply) {
    if (id != 3 || stage != Stage::kShareKeys) return;
    auto m = decode_share_keys_reply(reply, "t");
    m.shares[0].peer = 42;  // nobody's neighbour
    reply = encode(m);
  };
  auto out = round.run(faults);
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_NE(out.rejected[0].find("client 42"), std::string::npos) << out.rejected[0];
  EXPECT_EQ(out.dropped.count(3), 1u);
  EXPECT_EQ(out.result.mean, round.expected_mean(all_but(8, {3})));
}

TEST(SecAggProtocol, ATamperedCiphertextIsRefusedByItsRecipient) {
  Round round(8, 16, {1.0, true}, {4, false});
  Faults faults;
  // The server (or the network) alters one relayed ciphertext for client 5.
  faults.tamper_request = [](std::uint32_t id, Stage stage, std::string& request) {
    if (id != 5 || stage != Stage::kMaskedInput) return;
    auto m = decode_masked_input_request(request, "t");
    m.shares[1].ciphertext[40] ^= 0x01;
    request = encode(m);
  };
  auto out = round.run(faults);
  EXPECT_EQ(out.dropped.count(5), 1u);
  EXPECT_NE(out.dropped.at(5).find("does not authenticate"), std::string::npos) << out.dropped.at(5);
  EXPECT_EQ(out.result.mean, round.expected_mean(all_but(8, {5})));
  // Ciphertexts swapped between senders (a misaddressed relay): refused too.
  faults.tamper_request = [](std::uint32_t id, Stage stage, std::string& request) {
    if (id != 2 || stage != Stage::kMaskedInput) return;
    auto m = decode_masked_input_request(request, "t");
    std::swap(m.shares[0].ciphertext, m.shares[1].ciphertext);
    request = encode(m);
  };
  out = round.run(faults);
  EXPECT_EQ(out.dropped.count(2), 1u);
  EXPECT_EQ(out.result.mean, round.expected_mean(all_but(8, {2})));
}

TEST(SecAggProtocol, MaskedVectorsOfTheWrongLengthOrOutOfRangeAreRefused) {
  Round round(8, 16, {1.0, true}, {4, false});
  round.q.modulus_range = 1ULL << 31;
  Faults faults;
  faults.tamper_reply = [](std::uint32_t id, Stage stage, std::string& reply) {
    if (stage != Stage::kMaskedInput) return;
    auto m = decode_masked_input_reply(reply, "t");
    if (id == 1) m.words.push_back(0);
    if (id == 6) m.words[3] = 1u << 31;  // == modulus
    reply = encode(m);
  };
  auto out = round.run(faults);
  EXPECT_EQ(out.rejected.size(), 2u);
  EXPECT_EQ(out.dropped.count(1) + out.dropped.count(6), 2u);
  EXPECT_EQ(out.result.mean, round.expected_mean(all_but(8, {1, 6})));
}

TEST(SecAggProtocol, UnrequestedStage4SharesAreRefused) {
  // Client 4 sends the mask-key share of survivor 2 instead of its seed
  // share: with both, the server could unmask client 2's update.
  Round round(8, 16, {1.0, true}, {3, false});
  Faults faults;
  faults.silent[Stage::kMaskedInput] = {7};
  faults.tamper_reply = [](std::uint32_t id, Stage stage, std::string& reply) {
    if (id != 4 || stage != Stage::kUnmask) return;
    auto m = decode_unmask_reply(reply, "t");
    for (auto& s : m.shares) {
      if (s.owner == 2) s.kind = ShareKind::kMaskKey;
    }
    reply = encode(m);
  };
  auto out = round.run(faults);
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_NE(out.rejected[0].find("not requested"), std::string::npos) << out.rejected[0];
  EXPECT_EQ(out.dropped.count(4), 1u);
  // Client 4's masked vector is still in the sum: it dropped only in stage 4.
  EXPECT_EQ(out.result.mean, round.expected_mean(all_but(8, {7})));
}

TEST(SecAggProtocol, AClientNeverRevealsBothSecretsOfANeighbour) {
  Round round(4, 8, {1.0, true}, {2, false});
  SecAggServer server(1, 4, round.plan, round.q, 8, 5);
  std::map<std::uint32_t, SecAggClient> clients;
  for (std::uint32_t id = 1; id <= 4; ++id) server.accept(id, clients[id].on_setup(server.request(id)));
  server.close_stage();
  for (std::uint32_t id = 1; id <= 4; ++id) server.accept(id, clients[id].on_share_keys(server.request(id)));
  server.close_stage();
  for (std::uint32_t id = 1; id <= 4; ++id) {
    clients[id].on_masked_input(server.request(id), round.updates[id - 1].data(), 8, 10, uniform_for(id));
  }
  UnmaskRequest both{1, {1, 2, 3}, {2}};
  EXPECT_THROW(clients[1].on_unmask(encode(both)), Error);
  // It answers unmask only once, even a proper request after a refused one.
  UnmaskRequest fine{1, {1, 3, 4}, {2}};
  EXPECT_THROW(clients[1].on_unmask(encode(fine)), Error);
  EXPECT_NO_THROW(clients[2].on_unmask(encode(UnmaskRequest{1, {1, 2, 4}, {3}})));
  EXPECT_THROW(clients[2].on_unmask(encode(UnmaskRequest{1, {1, 2, 3}, {4}})), Error);
  // Stages out of order are refused.
  SecAggClient fresh;
  EXPECT_THROW(fresh.on_unmask(encode(fine)), Error);
}

TEST(SecAggProtocol, OverflowingParametersAreRefused) {
  QuantizationParams q;
  q.quantization_range = 1 << 22;
  q.modulus_range = 1 << 24;  // 4 clients fill it
  EXPECT_THROW(SecAggServer(1, 4, plan_round({1.0, true}, {2, false}, 4), q, 10, 1), Error);
  EXPECT_NO_THROW(SecAggServer(1, 3, plan_round({1.0, true}, {2, false}, 3), q, 10, 1));
  q.modulus_range = 3 << 22;  // not a power of two
  EXPECT_THROW(SecAggServer(1, 2, plan_round({1.0, true}, {2, false}, 2), q, 10, 1), Error);
}

TEST(SecAggPrivacy, TheServerSeesOnlyMaskedVectors) {
  // Issue 16 item 2 on a model-sized vector: every buffer the server
  // receives is recorded; each client's masked vector must be uncorrelated
  // with its update, spread uniformly over the modulus, and no buffer may
  // hold the client's plaintext (floats or quantized words) or its secrets.
  const std::size_t n = 5, dimension = 235146;  // the MLP's parameter count
  QuantizationParams q;  // Flower's defaults: c = 8, R = 2^22, M = 2^32
  q.max_weight = 1000;
  SecAggServer server(3, n, plan_round({1.0, true}, {3, false}, n), q, dimension, 17);
  std::map<std::uint32_t, std::vector<std::string>> received;
  server.set_receive_hook([&](std::uint32_t id, std::string_view bytes) { received[id].emplace_back(bytes); });
  std::map<std::uint32_t, SecAggClient> clients;
  std::map<std::uint32_t, std::vector<float>> updates;
  std::map<std::uint32_t, std::vector<std::uint32_t>> plain;
  std::mt19937 rng(5);
  std::normal_distribution<float> weight(0.0f, 0.05f);
  for (std::uint32_t id = 1; id <= n; ++id) {
    updates[id].resize(dimension);
    for (auto& v : updates[id]) v = weight(rng);
    plain[id] = quantize_weighted(updates[id].data(), dimension, quantized_weight(800, q, n), q, uniform_for(id));
  }
  for (Stage stage : {Stage::kSetup, Stage::kShareKeys, Stage::kMaskedInput, Stage::kUnmask}) {
    for (auto id : server.participants()) {
      auto request = server.request(id);
      std::string reply;
      auto& c = clients[id];
      if (stage == Stage::kSetup) reply = c.on_setup(request);
      if (stage == Stage::kShareKeys) reply = c.on_share_keys(request);
      if (stage == Stage::kMaskedInput) reply = c.on_masked_input(request, updates[id].data(), dimension, 800, uniform_for(id));
      if (stage == Stage::kUnmask) reply = c.on_unmask(request);
      server.accept(id, reply);
    }
    server.close_stage();
  }
  auto result = server.result();
  ASSERT_EQ(result.summed.size(), n);

  for (std::uint32_t id = 1; id <= n; ++id) {
    const auto& buffers = received[id];
    ASSERT_EQ(buffers.size(), 4u);
    auto masked = decode_masked_input_reply(buffers[2], "test").words;
    ASSERT_EQ(masked.size(), dimension + 1);
    // Pearson correlation of the masked words with the update.
    double mx = 0, my = 0;
    for (std::size_t i = 0; i < dimension; ++i) {
      mx += masked[i + 1];
      my += updates[id][i];
    }
    mx /= dimension;
    my /= dimension;
    double sxy = 0, sxx = 0, syy = 0;
    for (std::size_t i = 0; i < dimension; ++i) {
      const double dx = masked[i + 1] - mx, dy = updates[id][i] - my;
      sxy += dx * dy;
      sxx += dx * dx;
      syy += dy * dy;
    }
    EXPECT_LT(std::abs(sxy / std::sqrt(sxx * syy)), 0.01) << "client " << id;
    // Chi-square of the top 8 bits over 256 bins: 255 degrees of freedom
    // (mean 255, sd 22.6); 420 is beyond 7 sd.
    std::vector<double> bins(256, 0);
    for (std::size_t i = 1; i < masked.size(); ++i) bins[masked[i] >> 24] += 1;
    const double expected = static_cast<double>(dimension) / 256;
    double chi2 = 0;
    for (double b : bins) chi2 += (b - expected) * (b - expected) / expected;
    EXPECT_LT(chi2, 420.0) << "client " << id;
    // The unmasked values themselves occupy [0, 2^22]: the top 10 bits are 0.
    // No buffer from anyone holds this client's plaintext or secrets.
    std::vector<std::string> needles;
    const auto* raw = reinterpret_cast<const char*>(updates[id].data());
    const auto* words = reinterpret_cast<const char*>(plain[id].data());
    for (std::size_t at : {std::size_t{0}, std::size_t{1000}, dimension / 2, dimension - 8}) {
      needles.emplace_back(raw + at * 4, 16);
      needles.emplace_back(words + (at + 1) * 4, 16);
    }
    for (const auto& secret : clients[id].secrets_for_testing()) needles.push_back(secret);
    for (const auto& [from, list] : received) {
      for (const auto& buffer : list) {
        for (const auto& needle : needles) {
          ASSERT_EQ(buffer.find(needle), std::string::npos) << "client " << id << "'s bytes in a buffer from " << from;
        }
      }
    }
  }
  // And the sum is still right.
  std::vector<std::uint32_t> sum(dimension + 1, 0);
  for (auto& [id, w] : plain) {
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += w[i];
  }
  EXPECT_EQ(result.mean, dequantize_mean(sum, n, q));
}

TEST(SecAggProtocol, CorruptedRepliesNeverReleaseAWrongSum) {
  // Truncations, byte flips and appended bytes in one client's reply at each
  // stage: the round either fails with fedtrack::Error (nothing released) or
  // releases exactly the weighted mean of the clients it says it summed.
  // (A masked vector is the client's own input: altered but well-formed, it
  // is a different update that nobody can tell apart, so that stage is only
  // checked for failing cleanly.)
  Round round(5, 12, {1.0, true}, {3, false}, 6);
  std::mt19937 rng(42);
  int completed = 0, failed = 0;
  for (Stage stage : {Stage::kSetup, Stage::kShareKeys, Stage::kMaskedInput, Stage::kUnmask}) {
    for (int trial = 0; trial < 40; ++trial) {
      const unsigned pick = rng();
      Faults faults;
      faults.tamper_reply = [stage, pick, trial](std::uint32_t id, Stage at, std::string& reply) {
        if (id != 2 || at != stage) return;
        const std::size_t where = pick % reply.size();
        switch (trial % 3) {
          case 0: reply.resize(where); break;
          case 1: reply[where] = static_cast<char>(reply[where] ^ (1 + pick % 255)); break;
          default: reply.append(1 + pick % 9, static_cast<char>(pick)); break;
        }
      };
      try {
        auto out = round.run(faults);
        if (stage != Stage::kMaskedInput) {
          EXPECT_EQ(out.result.mean, round.expected_mean(out.result.summed))
              << stage_name(stage) << " trial " << trial;
        }
        ++completed;
      } catch (const Error&) {
        ++failed;
      }
    }
  }
  EXPECT_GT(completed, 0);
  std::cout << completed << " rounds completed, " << failed << " failed cleanly\n";
}
