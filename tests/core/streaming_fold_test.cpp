// Streaming aggregation (issue 18): updates folded in client-id order as
// they arrive give the bytes of the batch path whatever the arrival order;
// an upload decoded as it streams is checked tensor by tensor.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <mutex>
#include <random>
#include <thread>

#include "fedtrack/core/aggregate.h"
#include "fedtrack/core/client_manager.h"
#include "fedtrack/core/client_proxy.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/fedadam.h"
#include "fedtrack/core/fedavg.h"
#include "fedtrack/core/fedavgm.h"
#include "fedtrack/core/krum.h"
#include "fedtrack/core/server.h"
#include "ordered_fold.h"
#include "parameter_stream.h"

namespace fedtrack {
namespace {

Parameters layout() {
  Parameters p;
  p.names = {"fc.weight", "fc.bias", "bn.num_batches_tracked"};
  p.tensors = {torch::zeros({64, 33}), torch::zeros({64}), torch::zeros({1}, torch::kLong)};
  p.buffer_begin = 2;
  return p;
}

// K updates with values of very different magnitudes, so a different
// summation order really changes the float bits.
std::vector<FitResult> updates(std::size_t k, std::uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<FitResult> out;
  for (std::size_t i = 0; i < k; ++i) {
    FitResult r;
    r.client_id = "c" + std::to_string(i);
    r.res.parameters = layout();
    const double scale = std::pow(10.0, static_cast<double>(i % 5) - 2);
    r.res.parameters.tensors[0] = torch::randn({64, 33}) * scale;
    r.res.parameters.tensors[1] = torch::randn({64}) * scale;
    r.res.parameters.tensors[2] = torch::tensor({static_cast<std::int64_t>(100 + i)}, torch::kLong);
    r.res.num_examples = static_cast<std::int64_t>(17 + 13 * i);
    r.res.metrics = {{"train_loss", 0.1 * static_cast<double>(i)}};
    out.push_back(std::move(r));
  }
  return out;
}

bool same_bytes(const Parameters& a, const Parameters& b) {
  return encode_parameters(a) == encode_parameters(b);
}

FedAvgOptions options() {
  FedAvgOptions o;
  o.initial_parameters = layout();
  return o;
}

// Folds `results` through the strategy's streaming path, delivering them to
// an OrderedFold in `arrival` order from one thread each.
AggregateFitOutcome streamed(Strategy& strategy, int round, const std::vector<FitResult>& results,
                             const std::vector<std::size_t>& arrival) {
  const Parameters global = layout();
  auto fold = strategy.begin_fit_fold(round, global);
  EXPECT_NE(fold, nullptr);
  OrderedFold ordered(*fold, results.size());
  std::vector<std::thread> threads;
  std::mutex m;
  std::condition_variable cv;
  std::size_t turn = 0;  // arrival position allowed to deliver
  for (std::size_t pos = 0; pos < arrival.size(); ++pos) {
    threads.emplace_back([&, pos] {
      std::unique_lock<std::mutex> lock(m);
      cv.wait(lock, [&] { return turn == pos; });
      FitResult copy = results[arrival[pos]];
      copy.res.parameters = clone(copy.res.parameters);
      ordered.arrived(arrival[pos], std::move(copy));
      ++turn;
      cv.notify_all();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ordered.folded(), results.size());
  std::vector<FitResult> metadata = results;  // what the server hands over: everything but the tensors
  for (auto& r : metadata) r.res.parameters = Parameters{};
  return strategy.finish_fit_fold(round, *fold, metadata, {});
}

TEST(StreamingFold, FedAvgIsBitIdenticalToTheBatchPathInEveryArrivalOrder) {
  const auto results = updates(7, 1);
  FedAvg batch_strategy(options());
  const Parameters batch = *batch_strategy.aggregate_fit(1, results, {}).parameters;
  std::mt19937 rng(7);
  std::vector<std::size_t> arrival(results.size());
  for (std::size_t i = 0; i < arrival.size(); ++i) arrival[i] = i;
  for (int trial = 0; trial < 6; ++trial) {
    if (trial == 1) std::reverse(arrival.begin(), arrival.end());
    if (trial > 1) std::shuffle(arrival.begin(), arrival.end(), rng);
    FedAvg strategy(options());
    const AggregateFitOutcome out = streamed(strategy, 1, results, arrival);
    ASSERT_TRUE(out.parameters);
    EXPECT_TRUE(same_bytes(*out.parameters, batch)) << "arrival order trial " << trial;
    EXPECT_DOUBLE_EQ(out.metrics.at("train_loss"), batch_strategy.aggregate_fit(1, results, {}).metrics.at("train_loss"));
  }
  // The integer buffer is the rounded weighted mean.
  EXPECT_EQ(batch.tensors[2].item<std::int64_t>(), 104);
}

TEST(StreamingFold, ArrivalOrderWouldChangeTheBitsWithoutTheFixedOrder) {
  // Why OrderedFold exists: the same updates summed in another order give
  // other float bits (so folding in arrival order would break determinism).
  const auto results = updates(7, 1);
  WeightedSum forward(layout()), backward(layout());
  for (std::size_t i = 0; i < results.size(); ++i) {
    forward.add(results[i].res.parameters, static_cast<double>(results[i].res.num_examples));
    const auto& r = results[results.size() - 1 - i];
    backward.add(r.res.parameters, static_cast<double>(r.res.num_examples));
  }
  EXPECT_FALSE(same_bytes(forward.take_average(), backward.take_average()));
}

TEST(StreamingFold, ServerOptimizersAreBitIdenticalOverRoundsAndKeepTheirState) {
  FedOptOptions adam;
  adam.beta_1 = 0.9;
  adam.beta_2 = 0.99;
  adam.eta = 0.01;
  FedAdam batch(options(), adam), stream(options(), adam);
  FedAvgM batch_m(options(), 0.7, 0.9), stream_m(options(), 0.7, 0.9);
  ClientManager none(1);
  for (Strategy* s : std::vector<Strategy*>{&batch, &stream, &batch_m, &stream_m}) s->initialize_parameters(none);
  for (int round = 1; round <= 3; ++round) {
    const auto results = updates(5, 10 + static_cast<std::uint64_t>(round));
    const std::vector<std::size_t> arrival = {4, 2, 0, 3, 1};
    const Parameters a = *batch.aggregate_fit(round, results, {}).parameters;
    const Parameters b = *streamed(stream, round, results, arrival).parameters;
    EXPECT_TRUE(same_bytes(a, b)) << "fedadam round " << round;
    const Parameters am = *batch_m.aggregate_fit(round, results, {}).parameters;
    const Parameters bm = *streamed(stream_m, round, results, arrival).parameters;
    EXPECT_TRUE(same_bytes(am, bm)) << "fedavgm round " << round;
  }
  EXPECT_EQ(batch.save_state(), stream.save_state());
  EXPECT_EQ(batch_m.save_state(), stream_m.save_state());
}

TEST(StreamingFold, StrategiesThatNeedEveryUpdateSaySo) {
  Krum krum(options(), 1, 0);
  EXPECT_EQ(krum.begin_fit_fold(1, layout()), nullptr);
  FedAvg fedavg(options());
  EXPECT_NE(fedavg.begin_fit_fold(1, layout()), nullptr);
}

TEST(OrderedFold, HoldsEarlyArrivalsSkipsFailuresAndReleasesWaiters) {
  struct Counting : UpdateFold {
    std::vector<std::string> order;
    void add(const FitResult& r) override { order.push_back(r.client_id); }
  } fold;
  OrderedFold ordered(fold, 4);
  std::atomic<bool> third_may_read{false};
  std::thread waiter([&] {
    ordered.wait_turn(3);  // slots 0..2 resolved
    third_may_read = true;
  });
  FitResult r;
  r.client_id = "c2";
  ordered.arrived(2, r);
  EXPECT_TRUE(fold.order.empty());  // held: slot 0 and 1 are open
  r.client_id = "c0";
  ordered.arrived(0, r);
  EXPECT_EQ(fold.order, (std::vector<std::string>{"c0"}));
  EXPECT_FALSE(third_may_read);
  ordered.failed(1);  // a lost client: the fold moves past it
  waiter.join();
  EXPECT_TRUE(third_may_read);
  EXPECT_EQ(fold.order, (std::vector<std::string>{"c0", "c2"}));
  r.client_id = "c3";
  ordered.arrived(3, r);
  EXPECT_EQ(ordered.folded(), 3u);

  OrderedFold abandoned(fold, 3);
  std::thread late([&] { abandoned.wait_turn(2); });
  abandoned.close();  // the round ended: nobody waits for it
  late.join();
}

// A client whose update is released only in a given order, so the server
// sees the updates arrive in that order.
class GatedClient : public ClientProxy {
 public:
  GatedClient(std::string id, float offset, std::int64_t n, std::size_t rank, std::mutex& m,
              std::condition_variable& cv, std::size_t& released)
      : ClientProxy(std::move(id)), offset_(offset), n_(n), rank_(rank), m_(m), cv_(cv), released_(released) {}
  FitRes fit(const FitIns& ins, TransferStats&) override {
    {
      std::unique_lock<std::mutex> lock(m_);
      cv_.wait(lock, [&] { return released_ == rank_; });
    }
    FitRes res;
    res.parameters = clone(*ins.parameters);
    res.parameters.tensors[0].mul_(offset_).add_(offset_ * 1e-3f);
    res.parameters.tensors[1].add_(offset_);
    res.num_examples = n_;
    {
      std::lock_guard<std::mutex> lock(m_);
      ++released_;
    }
    cv_.notify_all();
    return res;
  }
  EvaluateRes evaluate(const EvaluateIns&, TransferStats&) override { return {}; }

 private:
  float offset_;
  std::int64_t n_;
  std::size_t rank_;
  std::mutex& m_;
  std::condition_variable& cv_;
  std::size_t& released_;
};

Parameters run_job(const std::vector<std::size_t>& rank_of_client, bool streaming) {
  std::mutex m;
  std::condition_variable cv;
  std::size_t released = 0;
  ClientManager clients(3);
  for (std::size_t i = 0; i < rank_of_client.size(); ++i) {
    clients.add(std::make_shared<GatedClient>("c" + std::to_string(i), 0.5f + 0.37f * static_cast<float>(i),
                                              static_cast<std::int64_t>(10 + 7 * i), rank_of_client[i], m, cv,
                                              released));
  }
  FedAvgOptions o = options();
  o.initial_parameters->tensors[0] = torch::randn({64, 33}, torch::TensorOptions().dtype(torch::kFloat)) * 3;
  o.min_fit_clients = static_cast<std::int64_t>(rank_of_client.size());
  o.min_available_clients = o.min_fit_clients;
  o.federated_evaluation = false;
  struct BatchOnly : FedAvg {  // the same math without the streaming path
    using FedAvg::FedAvg;
    bool folds_updates() const override { return false; }
  };
  std::unique_ptr<Strategy> strategy = streaming ? std::make_unique<FedAvg>(std::move(o))
                                                 : std::unique_ptr<Strategy>(std::make_unique<BatchOnly>(std::move(o)));
  ServerOptions so;
  so.job_id = "fold";
  so.num_rounds = 1;
  so.parallelism = rank_of_client.size();
  Server server(clients, *strategy, so);
  return server.run().parameters;
}

TEST(StreamingFold, ServerRoundIsBitIdenticalToTheBatchPathWhateverTheArrivalOrder) {
  torch::manual_seed(3);
  const Parameters batch = run_job({0, 1, 2, 3, 4}, false);
  torch::manual_seed(3);
  const Parameters in_order = run_job({0, 1, 2, 3, 4}, true);
  torch::manual_seed(3);
  const Parameters reversed = run_job({4, 3, 2, 1, 0}, true);
  torch::manual_seed(3);
  const Parameters shuffled = run_job({2, 4, 0, 3, 1}, true);
  EXPECT_TRUE(same_bytes(batch, in_order));
  EXPECT_TRUE(same_bytes(batch, reversed));
  EXPECT_TRUE(same_bytes(batch, shuffled));
}

// --- an upload decoded while it streams -----------------------------------------

// A source that hands out `bytes` in pieces of at most `piece` and counts what was read.
struct Pieces {
  std::string bytes;
  std::size_t piece = 1000;
  std::size_t at = 0;
  ByteSource source() {
    return [this](char* out, std::size_t n) {
      const std::size_t k = std::min({n, piece, bytes.size() - at});
      std::memcpy(out, bytes.data() + at, k);
      at += k;
      return k;
    };
  }
};

TEST(StreamedUpload, AValidUpdateDecodesAsTheBatchDecoder) {
  const auto u = updates(1, 5).front().res.parameters;
  Pieces in{encode_parameters(u)};
  const StreamedUpdate got = read_update(in.source(), in.bytes.size(), layout(), "update");
  EXPECT_TRUE(got.rejection.empty()) << got.rejection;
  EXPECT_TRUE(same_bytes(got.parameters, decode_parameters(in.bytes)));
  EXPECT_EQ(got.bytes_read, in.bytes.size());
}

TEST(StreamedUpload, ANanIsRejectedAtItsTensorAndTheRestIsNotRead) {
  auto u = updates(1, 5).front().res.parameters;
  u.tensors[0][0][0] = std::numeric_limits<float>::quiet_NaN();
  Pieces in{encode_parameters(u)};
  const StreamedUpdate got = read_update(in.source(), in.bytes.size(), layout(), "update");
  EXPECT_EQ(got.rejection, "update: 'fc.weight' contains NaN or Inf");
  EXPECT_LT(in.at, in.bytes.size() - 64 * 4);  // fc.bias was never read
}

TEST(StreamedUpload, AWrongShapeIsRejectedBeforeItsBytesAreRead) {
  Parameters wrong = layout();
  wrong.tensors[0] = torch::zeros({65, 33});
  Pieces in{encode_parameters(wrong)};
  const StreamedUpdate got = read_update(in.source(), in.bytes.size(), layout(), "update");
  EXPECT_EQ(got.rejection, "update: 'fc.weight' has shape [65, 33], expected [64, 33]");
  EXPECT_LT(in.at, 100u);
}

TEST(StreamedUpload, TruncatedOversizedAndLyingEncodingsAreCorruption) {
  const std::string good = encode_parameters(updates(1, 5).front().res.parameters);
  // The input ends early.
  Pieces cut{good.substr(0, good.size() / 2)};
  EXPECT_THROW(read_update(cut.source(), good.size(), layout(), "update"), Error);
  // More bytes than the encoding says (trailing bytes in the message).
  Pieces longer{good + std::string(16, '\0')};
  EXPECT_THROW(read_update(longer.source(), longer.bytes.size(), layout(), "update"), Error);
  // A tensor whose data length disagrees with its shape.
  Pieces shorter{good.substr(0, good.size() - 8)};
  try {
    read_update(shorter.source(), shorter.bytes.size(), layout(), "update");
    FAIL() << "accepted a short encoding";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption) << e.what();
  }
}

}  // namespace
}  // namespace fedtrack
