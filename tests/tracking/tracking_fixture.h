// The fixture of tracking's unit tests: a fresh folder for the journal and a
// client of an in-process fake MLflow server.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "fake_mlflow.h"
#include "support/test_dir.h"

namespace fedtrack::testing {

class TrackingFixture : public ::testing::Test {
 protected:
  // The journal is `journal` inside the test's folder named after `prefix`.
  explicit TrackingFixture(std::string prefix, std::string journal = "journal.sqlite")
      : prefix_(std::move(prefix)), journal_(std::move(journal)) {}
  void SetUp() override {
    dir_ = make_test_dir(prefix_);
    path_ = (dir_ / journal_).string();
    client_ = fake_mlflow_client(fake_);
  }
  void TearDown() override { remove_test_dir(dir_); }

  std::filesystem::path dir_;
  std::string path_;
  FakeMlflow* fake_ = nullptr;
  std::unique_ptr<MlflowClient> client_;

 private:
  std::string prefix_;
  std::string journal_;
};

}  // namespace fedtrack::testing
