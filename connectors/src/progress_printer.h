// A RoundListener that prints one human-readable line per round.
#pragma once

#include <ostream>

#include "fedtrack/core/round_listener.h"

namespace fedtrack {

class ProgressPrinter : public RoundListener {
 public:
  explicit ProgressPrinter(std::ostream& out) : out_(out) {}
  void on_job_start(const JobStart& start) override;
  void on_initial_evaluation(const Metrics& metrics) override;
  void on_round(const RoundSummary& summary) override;
  void on_job_end(const JobEnd& end) override;

 private:
  std::ostream& out_;
  int total_rounds_ = 0;
};

}  // namespace fedtrack
