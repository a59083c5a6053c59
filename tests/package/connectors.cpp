// fedtrack::connectors: a job file read and flattened as the CLI does.
#include <iostream>

#include "fedtrack/connectors/job_config.h"

int main() {
  fedtrack::JobSpec job = fedtrack::parse_job("name: consumer\nrounds: 2\n", "inline.yaml");
  if (job.name != "consumer" || fedtrack::flatten_job(job).empty()) return 1;
  std::cout << "connectors ok\n";
  return 0;
}
