// An in-process stand-in for an MLflow server, for the tracking module's
// error-path unit tests only (real behaviour is tested against a real
// server in tests/integration). It keeps experiments, runs, metrics, params
// and tags in memory and can be told to fail requests.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fedtrack/core/error.h"
#include "fedtrack/tracking/http.h"
#include "fedtrack/tracking/mlflow_client.h"

namespace fedtrack::testing {

struct FakeRun {
  std::string id;
  std::string experiment_id;
  std::string name;
  std::string status = "RUNNING";
  std::int64_t start_time = 0;
  bool deleted = false;  // runs/delete: soft-deleted, no longer found by search
  std::map<std::string, std::string> tags;
  std::map<std::string, std::string> params;
  std::vector<nlohmann::json> metrics;  // as received, duplicates dropped like MLflow does
  std::vector<nlohmann::json> inputs;   // runs/log-inputs' DatasetInputs, one per (name, digest) like MLflow
};

class FakeMlflow : public HttpTransport {
 public:
  // What happens to the next requests: 0 = serve; an HTTP status = answer it;
  // -1 = no answer (Error(kUnavailable)); -2 = serve it, then lose the answer
  // (a timeout after the server did the work); -3 = serve it, then answer 500
  // (a gateway failing after forwarding).
  std::deque<long> script;
  std::vector<HttpRequest> requests;
  std::map<std::string, FakeRun> runs;
  std::map<std::string, std::string> experiments{{"Default", "0"}};
  std::map<std::string, std::string> artifacts;  // artifact URL path -> bytes (PUT)
  // Registry aliases: (model, alias) -> (version, run id).
  std::map<std::pair<std::string, std::string>, std::pair<std::string, std::string>> aliases;

  HttpResponse send(const HttpRequest& request) override {
    requests.push_back(request);
    long action = 0;
    if (!script.empty()) {
      action = script.front();
      script.pop_front();
    }
    if (action == -1) throw Error::unavailable("connection refused (fake)");
    if (action > 0) return {action, R"({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "scripted"})", {}};
    HttpResponse response = serve(request);
    if (action == -2) throw Error::unavailable("answer lost (fake)");
    if (action == -3) return {500, R"({"error_code": "INTERNAL_ERROR", "message": "gateway failed after forwarding"})", {}};
    return response;
  }

  std::size_t count(const std::string& path_part) const {
    std::size_t n = 0;
    for (const auto& r : requests) n += r.url.find(path_part) != std::string::npos;
    return n;
  }

 private:
  static HttpResponse ok(const nlohmann::json& body) { return {200, body.dump(), {}}; }

  static nlohmann::json info(const FakeRun& run) {
    return {{"run_id", run.id}, {"experiment_id", run.experiment_id}, {"run_name", run.name},
            {"status", run.status}, {"start_time", run.start_time},
            {"artifact_uri", "mlflow-artifacts:/" + run.experiment_id + "/" + run.id + "/artifacts"},
            {"lifecycle_stage", run.deleted ? "deleted" : "active"}};
  }

  static nlohmann::json pairs(const std::map<std::string, std::string>& kvs) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [k, v] : kvs) out.push_back({{"key", k}, {"value", v}});
    return out;
  }

  static std::string query_value(const std::string& url, const std::string& key) {
    const auto at = url.find(key + "=");
    if (at == std::string::npos) return "";
    const auto end = url.find('&', at);
    return url.substr(at + key.size() + 1, end == std::string::npos ? std::string::npos : end - at - key.size() - 1);
  }

  HttpResponse serve(const HttpRequest& request) {
    const std::string& url = request.url;
    // An artifact PUT carries the file's bytes, not JSON.
    const nlohmann::json body = request.body.empty() || request.method == "PUT" ? nlohmann::json::object()
                                                                                : nlohmann::json::parse(request.body);
    if (url.find("experiments/get-by-name") != std::string::npos) {
      const std::string name = query_value(url, "experiment_name");
      auto it = experiments.find(name);
      if (it == experiments.end()) return {404, R"({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no"})", {}};
      return ok({{"experiment", {{"experiment_id", it->second}, {"name", name}, {"lifecycle_stage", "active"}}}});
    }
    if (url.find("experiments/get?") != std::string::npos) {
      const std::string id = query_value(url, "experiment_id");
      for (const auto& [name, eid] : experiments) {
        if (eid == id) return ok({{"experiment", {{"experiment_id", id}, {"name", name}, {"lifecycle_stage", "active"}}}});
      }
      return {404, R"({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no experiment"})", {}};
    }
    if (url.find("mlflow-artifacts/artifacts/") != std::string::npos && request.method == "PUT") {
      artifacts[url.substr(url.find("mlflow-artifacts/artifacts/") + 27)] = request.body;
      return ok(nlohmann::json::object());
    }
    if (url.find("runs/log-inputs") != std::string::npos) {
      FakeRun& run = runs.at(body.at("run_id"));
      for (const auto& in : body.value("datasets", nlohmann::json::array())) {
        const auto same = [&](const nlohmann::json& have) {
          return have.at("dataset").at("name") == in.at("dataset").at("name") &&
                 have.at("dataset").at("digest") == in.at("dataset").at("digest");
        };
        if (std::none_of(run.inputs.begin(), run.inputs.end(), same)) run.inputs.push_back(in);
      }
      return ok(nlohmann::json::object());
    }
    if (url.find("experiments/create") != std::string::npos) {
      const std::string id = std::to_string(experiments.size());
      experiments[body.at("name")] = id;
      return ok({{"experiment_id", id}});
    }
    if (url.find("runs/create") != std::string::npos) {
      FakeRun run;
      run.id = "run" + std::to_string(runs.size() + 1);
      run.experiment_id = body.at("experiment_id");
      run.name = body.value("run_name", "");
      run.start_time = body.value("start_time", std::int64_t{0});
      for (const auto& t : body.value("tags", nlohmann::json::array())) run.tags[t.at("key")] = t.at("value");
      runs[run.id] = run;
      return ok({{"run", {{"info", info(run)}}}});
    }
    if (url.find("runs/search") != std::string::npos) {
      // Understands only: tags.`fedtrack.run_key` = '<key>' and
      // tags.mlflow.parentRunId = '<id>'.
      const std::string filter = body.value("filter", "");
      const auto open = filter.find('\''), close = filter.rfind('\'');
      const std::string wanted = filter.substr(open + 1, close - open - 1);
      const std::string tag = filter.find("mlflow.parentRunId") != std::string::npos ? "mlflow.parentRunId"
                                                                                     : "fedtrack.run_key";
      nlohmann::json found = nlohmann::json::array();
      for (const auto& [id, run] : runs) {
        auto it = run.tags.find(tag);
        if (!run.deleted && it != run.tags.end() && it->second == wanted) {
          found.push_back({{"info", info(run)}, {"data", {{"tags", pairs(run.tags)}, {"metrics", run.metrics}}}});
        }
      }
      return ok({{"runs", found}});
    }
    if (url.find("runs/log-batch") != std::string::npos) {
      FakeRun& run = runs.at(body.at("run_id"));
      for (const auto& p : body.value("params", nlohmann::json::array())) run.params[p.at("key")] = p.at("value");
      for (const auto& t : body.value("tags", nlohmann::json::array())) run.tags[t.at("key")] = t.at("value");
      for (const auto& m : body.value("metrics", nlohmann::json::array())) {
        if (std::find(run.metrics.begin(), run.metrics.end(), m) == run.metrics.end()) run.metrics.push_back(m);
      }
      return ok(nlohmann::json::object());
    }
    if (url.find("runs/delete") != std::string::npos) {
      runs.at(body.at("run_id")).deleted = true;
      return ok(nlohmann::json::object());
    }
    if (url.find("runs/get") != std::string::npos) {
      auto it = runs.find(query_value(url, "run_id"));
      if (it == runs.end()) return {404, R"({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no run"})", {}};
      return ok({{"run", {{"info", info(it->second)},
                          {"data", {{"tags", pairs(it->second.tags)}, {"metrics", it->second.metrics}}}}}});
    }
    if (url.find("runs/update") != std::string::npos) {
      runs.at(body.at("run_id")).status = body.at("status");
      return ok(nlohmann::json::object());
    }
    if (url.find("registered-models/alias") != std::string::npos && request.method == "GET") {
      auto it = aliases.find({query_value(url, "name"), query_value(url, "alias")});
      if (it == aliases.end()) return {404, R"({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no alias"})", {}};
      return ok({{"model_version", {{"name", it->first.first}, {"version", it->second.first},
                                    {"run_id", it->second.second}, {"aliases", {it->first.second}}}}});
    }
    return {404, "not found", {}};
  }
};

// A client of a new FakeMlflow (which it owns; `fake` points at it) at
// http://127.0.0.1:1, with no retries and no sleeping.
inline std::unique_ptr<MlflowClient> fake_mlflow_client(FakeMlflow*& fake) {
  auto server = std::make_unique<FakeMlflow>();
  fake = server.get();
  MlflowConfig config;
  config.tracking_uri = "http://127.0.0.1:1";
  config.max_retries = 0;
  return std::make_unique<MlflowClient>(config, std::move(server), [](double) {});
}

}  // namespace fedtrack::testing
