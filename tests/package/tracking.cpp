// fedtrack::tracking alone (no LibTorch, no Poco Net): a journal and an
// MLflow client (libcurl); nothing is sent.
#include <iostream>
#include <string>

#include "fedtrack/tracking/journal.h"
#include "fedtrack/tracking/mlflow_client.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  fedtrack::Journal journal(std::string(argv[1]) + "/journal.sqlite");
  if (journal.pending_count() != 0) return 1;
  fedtrack::MlflowConfig config;
  config.tracking_uri = "http://127.0.0.1:9";
  fedtrack::MlflowClient client(config);
  std::cout << "tracking ok\n";
  return 0;
}
