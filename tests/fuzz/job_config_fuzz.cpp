// libFuzzer target: the job file reader (connectors/src/job_config.cpp),
// YAML or JSON text -> validated JobSpec, and the `--set key=value` override
// parser. Contract: see fuzz_contract.h. A job that reads must also flatten
// (MLflow params) and digest (the resume check) without throwing.
#include <cstdint>

#include "fedtrack/connectors/job_config.h"
#include "fuzz_contract.h"

namespace {
constexpr const char* kTarget = "job_config";

void check_accepted(const fedtrack::JobSpec& job) {
  using namespace fedtrack;
  fuzz::must_not_throw(kTarget, "flatten_job(parsed job)", [&] { flatten_job(job); });
  fuzz::must_not_throw(kTarget, "job_digest(parsed job)", [&] { job_digest(job); });
  fuzz::must_not_throw(kTarget, "state_path_of(parsed job)", [&] { state_path_of(job); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fedtrack;
  const std::string text(fuzz::as_text(data, size));

  JobSpec job;
  if (fuzz::decodes(kTarget, [&] { job = parse_job(text, "fuzz.yaml"); })) check_accepted(job);

  // A short single line is also tried as a command-line override on the
  // defaults, the way `fedtrack run --set` passes it.
  if (size <= 256 && text.find('\n') == std::string::npos) {
    if (fuzz::decodes(kTarget, [&] { job = parse_job("", "(defaults)", {text}); })) check_accepted(job);
  }
  return 0;
}
