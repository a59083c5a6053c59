#include <gtest/gtest.h>

#include <limits>
#include <set>

#include "fedtrack/core/client_manager.h"
#include "fedtrack/core/client_proxy.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/fedavg.h"
#include "fedtrack/core/server.h"

namespace fedtrack {
namespace {

Parameters vector_params(std::vector<float> w) {
  Parameters p;
  p.names = {"w"};
  p.tensors = {torch::tensor(w)};
  p.buffer_begin = 1;
  return p;
}

// Unit-test fakes for the server's error paths; the real client is covered
// by the simulation tests.
enum class Behaviour { kAddOffset, kThrow, kNan, kWrongShape };

class FakeClient : public ClientProxy {
 public:
  FakeClient(std::string id, Behaviour b, float offset, std::int64_t n)
      : ClientProxy(std::move(id)), behaviour_(b), offset_(offset), n_(n) {}
  FitRes fit(const FitIns& ins, TransferStats& transfer) override {
    transfer.bytes_down = 100;
    FitRes res;
    res.num_examples = n_;
    res.data_fingerprint = "fp-" + id();
    res.metrics["train_loss"] = offset_;
    switch (behaviour_) {
      case Behaviour::kThrow: throw Error::unavailable("connection reset");
      case Behaviour::kNan: res.parameters = vector_params({std::numeric_limits<float>::quiet_NaN(), 0}); break;
      case Behaviour::kWrongShape: res.parameters = vector_params({1, 2, 3}); break;
      case Behaviour::kAddOffset:
        res.parameters = clone(*ins.parameters);
        res.parameters.tensors[0].add_(offset_);
        break;
    }
    transfer.bytes_up = 50;
    return res;
  }
  EvaluateRes evaluate(const EvaluateIns&, TransferStats&) override {
    if (behaviour_ == Behaviour::kThrow) throw Error::unavailable("gone");
    return {static_cast<double>(offset_), n_, {{"accuracy", 0.5}}};
  }

 private:
  Behaviour behaviour_;
  float offset_;
  std::int64_t n_;
};

class Recorder : public RoundListener {
 public:
  void on_job_start(const JobStart& s) override { events.push_back("start " + s.job_id); }
  void on_initial_evaluation(const Metrics&) override { events.push_back("initial"); }
  void on_round(const RoundSummary& s) override {
    events.push_back("round " + std::to_string(s.round));
    summaries.push_back(s);
  }
  void on_job_end(const JobEnd& e) override {
    events.push_back(std::string("end ") + job_status_name(e.status));
    end = e;
  }
  std::vector<std::string> events;
  std::vector<RoundSummary> summaries;
  JobEnd end;
};

FedAvgOptions options_with_initial(std::vector<float> w) {
  FedAvgOptions o;
  o.initial_parameters = vector_params(std::move(w));
  o.on_fit_config = [](int round) { return ConfigRecord{{"round", std::int64_t{round}}, {"lr", 0.1}}; };
  o.evaluate_fn = [](int, const Parameters& p) {
    return std::optional<CentralEvaluation>(
        CentralEvaluation{p.tensors[0].sum().item<double>(), {{"accuracy", 1.0}}});
  };
  return o;
}

TEST(Server, BadUpdatesBecomeFailuresAndOnlyGoodOnesAreAveraged) {
  ClientManager clients(1);
  clients.add(std::make_shared<FakeClient>("c0", Behaviour::kAddOffset, 1.0f, 1));
  clients.add(std::make_shared<FakeClient>("c1", Behaviour::kThrow, 0, 1));
  clients.add(std::make_shared<FakeClient>("c2", Behaviour::kNan, 0, 1));
  clients.add(std::make_shared<FakeClient>("c3", Behaviour::kWrongShape, 0, 1));
  clients.add(std::make_shared<FakeClient>("c4", Behaviour::kAddOffset, 5.0f, 3));
  FedAvg strategy(options_with_initial({0, 10}));
  ServerOptions so;
  so.job_id = "job-1";
  so.num_rounds = 1;
  so.parallelism = 3;
  Server server(clients, strategy, so);
  Recorder recorder;
  server.add_listener(&recorder);
  const ServerResult result = server.run();

  // (1 * (w + 1) + 3 * (w + 5)) / 4 = w + 4
  EXPECT_TRUE(torch::equal(result.parameters.tensors[0], torch::tensor({4.0f, 14.0f})));
  EXPECT_EQ(recorder.events, (std::vector<std::string>{"start job-1", "initial", "round 1", "end FINISHED"}));
  const RoundSummary& s = recorder.summaries.at(0);
  ASSERT_EQ(s.clients.size(), 5u);
  EXPECT_EQ(s.clients[0].client_id, "c0");
  EXPECT_TRUE(s.clients[0].ok);
  EXPECT_EQ(s.clients[0].data_fingerprint, "fp-c0");
  EXPECT_FALSE(s.clients[1].ok);
  EXPECT_EQ(s.clients[1].error, "connection reset");
  EXPECT_EQ(s.clients[2].error, "client c2: 'w' contains NaN or Inf");
  EXPECT_EQ(s.clients[3].error, "client c3: 'w' has shape [3], expected [2]");
  EXPECT_DOUBLE_EQ(s.metrics.at("clients_sampled"), 5);
  EXPECT_DOUBLE_EQ(s.metrics.at("clients_ok"), 2);
  EXPECT_DOUBLE_EQ(s.metrics.at("clients_failed"), 3);
  EXPECT_DOUBLE_EQ(s.metrics.at("eval_loss"), 18.0);
  EXPECT_DOUBLE_EQ(s.metrics.at("train_loss"), (1.0 + 3 * 5.0) / 4);
  EXPECT_EQ(std::get<double>(s.fit_config.at("lr")), 0.1);
  EXPECT_EQ(s.bytes_down, 5u * 100 + 0u);  // fakes report nothing for evaluate
  EXPECT_EQ(s.bytes_up, 4u * 50);          // the throwing client sent nothing
  EXPECT_DOUBLE_EQ(s.metrics.at("federated_eval_accuracy"), 0.5);
  ASSERT_NE(s.model, nullptr);
  EXPECT_EQ(decode_parameters(s.model->encoded_parameters()).tensors[0][1].item<float>(), 14.0f);
}

TEST(Server, StopRequestEndsTheJobAsKilled) {
  ClientManager clients(1);
  clients.add(std::make_shared<FakeClient>("a", Behaviour::kAddOffset, 1, 1));
  clients.add(std::make_shared<FakeClient>("b", Behaviour::kAddOffset, 1, 1));
  FedAvg strategy(options_with_initial({0, 0}));
  Recorder recorder;
  int polls = 0;
  ServerOptions so;
  so.num_rounds = 5;
  so.stop_requested = [&] { return ++polls > 3; };
  Server server(clients, strategy, so);
  server.add_listener(&recorder);
  try {
    server.run();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCancelled);
  }
  EXPECT_EQ(recorder.end.status, JobStatus::kKilled);
  EXPECT_EQ(recorder.end.rounds_completed, 1);
}

TEST(ClientManager, SamplingIsSeededSortedAndBounded) {
  auto make = [](std::uint64_t seed) {
    auto m = std::make_unique<ClientManager>(seed);
    for (int i = 0; i < 10; ++i) {
      m->add(std::make_shared<FakeClient>("client-" + std::to_string(i), Behaviour::kAddOffset, 0, 1));
    }
    return m;
  };
  auto ids = [](const std::vector<std::shared_ptr<ClientProxy>>& v) {
    std::vector<std::string> out;
    for (const auto& c : v) out.push_back(c->id());
    return out;
  };
  auto a = make(3), b = make(3), c = make(4);
  const auto pick_a = ids(a->sample(4, 2));
  EXPECT_EQ(pick_a, ids(b->sample(4, 2)));
  EXPECT_NE(pick_a, ids(c->sample(4, 2)));
  EXPECT_TRUE(std::is_sorted(pick_a.begin(), pick_a.end()));
  EXPECT_EQ(std::set<std::string>(pick_a.begin(), pick_a.end()).size(), 4u);
  EXPECT_EQ(a->sample(50, 1).size(), 10u);
  EXPECT_THROW(a->sample(3, 11), Error);
  EXPECT_EQ(clients_to_sample(10, 0.3, 2), 3u);
  EXPECT_EQ(clients_to_sample(10, 0.1, 2), 2u);
  EXPECT_EQ(clients_to_sample(3, 1.0, 5), 3u);
}

}  // namespace
}  // namespace fedtrack
