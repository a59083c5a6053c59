#include "fedtrack/core/round_listener.h"

#include <utility>

namespace fedtrack {

ModelSnapshot::ModelSnapshot(Producer checkpoint, Producer encoded_parameters)
    : checkpoint_producer_(std::move(checkpoint)), encoded_producer_(std::move(encoded_parameters)) {}

const std::string& ModelSnapshot::checkpoint_bytes() const {
  std::call_once(checkpoint_once_, [this] { checkpoint_ = checkpoint_producer_(); });
  return checkpoint_;
}

const std::string& ModelSnapshot::encoded_parameters() const {
  std::call_once(encoded_once_, [this] { encoded_ = encoded_producer_(); });
  return encoded_;
}

const char* job_status_name(JobStatus status) {
  switch (status) {
    case JobStatus::kFinished: return "FINISHED";
    case JobStatus::kFailed: return "FAILED";
    case JobStatus::kKilled: return "KILLED";
  }
  return "UNKNOWN";
}

}  // namespace fedtrack
