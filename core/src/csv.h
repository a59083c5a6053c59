// Tabular data from CSV files: numeric feature columns plus one label column
// (the bank / hospital case). Torch-free.
//
// The first row names the columns. Fields may be quoted ("a,b", "say ""hi""").
// Every non-label field must parse as a number; empty fields and anything
// else are Error(kInvalidArgument) naming file:line and column.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fedtrack {

struct CsvDataset {
  std::vector<std::string> feature_names;
  std::vector<float> features;          // row-major, rows x feature_names.size()
  std::vector<std::int64_t> labels;     // class index per row
  std::vector<std::string> class_names; // label text of each class index
  std::int64_t rows() const { return static_cast<std::int64_t>(labels.size()); }
};

// `label_column` empty = the last column. Class indices: when `classes` is
// non-empty the labels must be among them (use the training file's classes
// when reading its test file); otherwise labels that are all non-negative
// integers are used as they are ("0".."k"), and any other labels are sorted
// and numbered.
CsvDataset read_csv_dataset(const std::string& path, const std::string& label_column,
                            const std::vector<std::string>& classes = {});

// Splits one CSV record into fields; exposed for tests.
std::vector<std::string> split_csv_record(const std::string& line);

}  // namespace fedtrack
