// The simulation's virtual clients: built when sampled, with the same data,
// splits and fingerprints as a client built up front; a 10,000-client job
// that builds a model replica per client in flight, not per client.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <random>
#include <set>

#include "fedtrack/core/client_manager.h"
#include "fedtrack/core/client_proxy.h"
#include "fedtrack/core/fedavg.h"
#include "fedtrack/core/models.h"
#include "fedtrack/core/partition.h"
#include "fedtrack/core/server.h"
#include "fedtrack/core/simulation.h"
#include "virtual_clients.h"

namespace fedtrack {
namespace {

// The split run_simulation made for each client before clients were virtual.
std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> reference_split(std::vector<std::int64_t> share,
                                                                                 std::size_t c, double val_fraction,
                                                                                 std::uint64_t seed) {
  std::mt19937_64 rng(seed + 1000003ull * static_cast<std::uint64_t>(c + 1));
  std::shuffle(share.begin(), share.end(), rng);
  const auto n_val = static_cast<std::size_t>(static_cast<double>(share.size()) * val_fraction);
  std::vector<std::int64_t> val(share.begin(), share.begin() + static_cast<std::ptrdiff_t>(n_val));
  std::vector<std::int64_t> train(share.begin() + static_cast<std::ptrdiff_t>(n_val), share.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  return {val, train};
}

std::vector<std::int64_t> as_vector(RowSpan rows) { return {rows.begin(), rows.end()}; }

TEST(ClientShares, SplitEveryShareAsTheSimulationAlwaysHas) {
  std::vector<std::int64_t> labels(5000);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>((i * 7919) % 10);
  PartitionSpec spec;
  spec.kind = "dirichlet";
  spec.alpha = 0.5;
  const Partitions parts = partition(labels, 40, spec, 42);
  const ClientShares shares(Partitions(parts), 0.1, 42);
  ASSERT_EQ(shares.size(), parts.size());
  for (std::size_t c = 0; c < parts.size(); ++c) {
    const auto [val, train] = reference_split(parts[c], c, 0.1, 42);
    EXPECT_EQ(as_vector(shares.validation(c)), val) << "client " << c;
    EXPECT_EQ(as_vector(shares.train(c)), train) << "client " << c;
  }
}

TEST(ClientShares, TenThousandIidSharesCoverEveryRowOnce) {
  const std::int64_t rows = 60000, clients = 10000;
  const ClientShares shares(partition_iid(rows, clients, 3), 0.2, 3);
  std::vector<int> seen(rows, 0);
  for (std::size_t c = 0; c < shares.size(); ++c) {
    const RowSpan val = shares.validation(c), train = shares.train(c);
    EXPECT_EQ(val.size + train.size, 6u) << "client " << c;  // 60,000 rows / 10,000 clients
    EXPECT_EQ(val.size, 1u) << "client " << c;              // floor(6 * 0.2)
    EXPECT_TRUE(std::is_sorted(train.begin(), train.end()));
    for (const auto r : val) ++seen[r];
    for (const auto r : train) ++seen[r];
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
}

TEST(VirtualClients, FingerprintOfRowsIsTheFingerprintOfTheirCopy) {
  TensorData data{torch::arange(0, 120, torch::kFloat32).reshape({20, 2, 3}), torch::arange(20, torch::kLong) % 3};
  const std::vector<std::uint32_t> rows{1, 4, 5, 17, 19};
  const RowSpan span{rows.data(), rows.size()};
  const TensorData copy = gather_rows(data, span);
  EXPECT_TRUE(torch::equal(copy.features, select_rows(data, {1, 4, 5, 17, 19}).features));
  EXPECT_EQ(fingerprint_rows(data, span), fingerprint(copy));
  EXPECT_EQ(fingerprint_rows(data, RowSpan{}), fingerprint(gather_rows(data, RowSpan{})));
}

// The dense partial Fisher-Yates the manager used before sampling went
// sparse: every position copied, then k swaps.
std::vector<std::string> dense_sample(std::vector<std::string> ids, std::size_t k, std::mt19937_64& rng) {
  k = std::min(k, ids.size());
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t j = i + static_cast<std::size_t>(rng() % (ids.size() - i));
    std::swap(ids[i], ids[j]);
  }
  ids.resize(k);
  std::sort(ids.begin(), ids.end());
  return ids;
}

class NamedClient : public ClientProxy {
 public:
  using ClientProxy::ClientProxy;
  FitRes fit(const FitIns&, TransferStats&) override { throw Error::unavailable("not here"); }
  EvaluateRes evaluate(const EvaluateIns&, TransferStats&) override { throw Error::unavailable("not here"); }
};

TEST(ClientManager, SparseSamplingPicksWhatAFullShuffleWould) {
  ClientManager manager(11);
  std::vector<std::string> ids;
  // Registered out of order: the manager keeps them in id order.
  for (int i = 999; i >= 0; --i) {
    char id[16];
    std::snprintf(id, sizeof id, "c%04d", i);
    manager.add(std::make_shared<NamedClient>(id));
    ids.emplace_back(id);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_THROW(manager.add(std::make_shared<NamedClient>("c0500")), Error);
  std::mt19937_64 reference(11);
  for (const std::size_t k : {1, 10, 500, 999, 1000, 3000, 7}) {
    std::vector<std::string> picked;
    for (const auto& c : manager.sample(k, 1)) picked.push_back(c->id());
    EXPECT_EQ(picked, dense_sample(ids, k, reference)) << "k = " << k;
  }
  manager.remove("c0000");
  manager.remove("c0999");
  ids.erase(ids.begin());
  ids.pop_back();
  EXPECT_EQ(manager.num_available(), 998u);
  std::vector<std::string> picked;
  for (const auto& c : manager.sample(50, 1)) picked.push_back(c->id());
  EXPECT_EQ(picked, dense_sample(ids, 50, reference));
}

// A client whose fit adds its weight to the model and logs when it started.
class WeighedClient : public ClientProxy {
 public:
  WeighedClient(std::string id, std::int64_t work, std::vector<std::string>& started, std::mutex& mutex)
      : ClientProxy(std::move(id)), work_(work), started_(started), mutex_(mutex) {}
  FitRes fit(const FitIns& ins, TransferStats&) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      started_.push_back(id());
    }
    FitRes res;
    res.parameters = clone(*ins.parameters);
    res.parameters.tensors[0].add_(static_cast<float>(work_));
    res.num_examples = work_;
    return res;
  }
  EvaluateRes evaluate(const EvaluateIns&, TransferStats&) override { return {0.0, work_, {}}; }
  std::int64_t expected_work() const override { return work_; }

 private:
  std::int64_t work_;
  std::vector<std::string>& started_;
  std::mutex& mutex_;
};

// With one thread, a round whose largest client starts last ends with it
// working alone (a dirichlet split of the default job: 2,878..10,046
// examples). Clients start largest first; results are still aggregated in
// id order, so the model is the same.
TEST(ServerSchedule, LargestExpectedWorkStartsFirstResultsStayInIdOrder) {
  std::vector<std::string> started;
  std::mutex mutex;
  ClientManager clients(1);
  const std::vector<std::pair<std::string, std::int64_t>> work{{"a", 3}, {"b", 10}, {"c", 1}, {"d", 10}, {"e", 7}};
  for (const auto& [id, w] : work) clients.add(std::make_shared<WeighedClient>(id, w, started, mutex));
  FedAvgOptions o;
  Parameters initial;
  initial.names = {"w"};
  initial.tensors = {torch::zeros({1})};
  initial.buffer_begin = 1;
  o.initial_parameters = initial;
  o.federated_evaluation = false;
  FedAvg strategy(o);
  ServerOptions so;
  so.num_rounds = 1;
  so.parallelism = 1;
  so.evaluate_initial = false;
  Server server(clients, strategy, so);
  struct Ids : RoundListener {
    void on_round(const RoundSummary& s) override {
      for (const auto& c : s.clients) ids.push_back(c.client_id);
    }
    std::vector<std::string> ids;
  } listener;
  server.add_listener(&listener);
  const ServerResult result = server.run();
  EXPECT_EQ(started, (std::vector<std::string>{"b", "d", "e", "a", "c"}));
  EXPECT_EQ(listener.ids, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  // sum(w * w) / sum(w) = (9 + 100 + 1 + 100 + 49) / 31
  EXPECT_FLOAT_EQ(result.parameters.tensors[0].item<float>(), 259.0f / 31.0f);
}

// 10,000 virtual clients on a table of 60,000 rows, 10 sampled per round:
// the job completes, learns, samples 10 distinct clients a round, reports
// every client's fingerprint, and builds model replicas for the clients in
// flight (runtime.parallelism), not one per client (10,000 MLPs before).
TEST(VirtualClients, TenThousandClientsBuildOnlyTheModelsInFlight) {
  namespace fs = std::filesystem;
  const fs::path csv = fs::temp_directory_path() / ("fedtrack-virtual-" + std::to_string(::getpid()) + ".csv");
  {
    std::ofstream out(csv);
    out << "x0,x1,noise,label\n";
    std::mt19937 rng(5);
    std::normal_distribution<double> g;
    for (int i = 0; i < 75000; ++i) {  // 60,000 training rows after test_fraction 0.2
      const double a = g(rng), b = g(rng);
      out << a << "," << b << "," << g(rng) << "," << (a + b > 0 ? "yes" : "no") << "\n";
    }
  }
  static std::atomic<int> built{0};
  register_model("virtual_clients_test_mlp", [](const ModelInput& in) {
    ++built;
    return make_model("mlp", in);
  });
  JobSpec job;
  job.name = "ten-thousand";
  job.seed = 9;
  job.rounds = 3;
  job.model = "virtual_clients_test_mlp";
  job.data.dataset = "csv";
  job.data.path = csv.string();
  job.data.label = "label";
  job.data.val_fraction = 0.2;
  job.data.partition.kind = "iid";
  job.clients.count = 10000;
  job.clients.fraction_fit = 0.001;
  job.clients.fraction_evaluate = 0.001;
  job.runtime.parallelism = 2;
  job.train.lr = 0.1;
  job.train.epochs = 5;
  job.train.batch_size = 5;

  struct Rounds : RoundListener {
    void on_round(const RoundSummary& s) override { rounds.push_back(s); }
    std::vector<RoundSummary> rounds;
  } listener;
  JobRunOptions options;
  options.job_id = "ten-thousand";
  options.listeners = {&listener};
  const JobResult r = run_simulation(job, options);
  fs::remove(csv);

  EXPECT_LE(built.load(), 1 + 2) << "the server's model and one replica per client in flight";
  ASSERT_EQ(r.rounds.size(), 3u);
  EXPECT_GT(r.final_metrics.at("eval_accuracy"), 0.8);  // two classes split by x0 + x1 > 0
  EXPECT_LT(r.final_metrics.at("eval_loss"), r.initial->at("eval_loss"));
  ASSERT_EQ(r.client_fingerprints.size(), 10000u);
  EXPECT_EQ(std::set<std::string>(r.client_fingerprints.begin(), r.client_fingerprints.end()).size(), 10000u);
  std::set<std::string> trained;
  ASSERT_EQ(listener.rounds.size(), 3u);
  for (const RoundSummary& s : listener.rounds) {
    EXPECT_EQ(s.metrics.at("clients_sampled"), 10);
    EXPECT_EQ(s.metrics.at("clients_ok"), 10);
    ASSERT_EQ(s.clients.size(), 10u);
    for (std::size_t i = 0; i < s.clients.size(); ++i) {
      const ClientRoundStat& c = s.clients[i];
      if (i > 0) {
        EXPECT_LT(s.clients[i - 1].client_id, c.client_id);  // distinct, in id order
      }
      ASSERT_EQ(c.client_id.rfind("client-", 0), 0u);
      const std::size_t index = std::stoul(c.client_id.substr(7));
      ASSERT_LT(index, 10000u);
      EXPECT_EQ(c.data_fingerprint, r.client_fingerprints[index]);
      EXPECT_EQ(c.num_examples, 5);  // 6 rows each, 1 kept for evaluation
      trained.insert(c.client_id);
    }
  }
  EXPECT_GT(trained.size(), 20u);  // new clients every round
}

}  // namespace
}  // namespace fedtrack
