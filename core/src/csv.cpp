#include "csv.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <sstream>
#include <map>
#include <set>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"

namespace fedtrack {
namespace {

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r");
  return s.substr(begin, end - begin + 1);
}

bool parse_float(const std::string& text, float& out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || errno == ERANGE) return false;
  out = static_cast<float>(value);
  return true;
}

bool is_non_negative_integer(const std::string& s) {
  return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), ::isdigit);
}

}  // namespace

std::vector<std::string> split_csv_record(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(trim(field));
      field.clear();
    } else {
      field += c;
    }
  }
  fields.push_back(trim(field));
  return fields;
}

CsvDataset read_csv_dataset(const std::string& path, const std::string& label_column,
                            const std::vector<std::string>& classes) {
  std::string text;
  try {
    text = read_file(path);  // a FIFO or a directory is an Error, never a hang
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kNotFound) throw Error::not_found(path + ": cannot open CSV file");
    throw;
  }
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line)) throw Error::invalid_argument(path + ": empty CSV file");
  const auto header = split_csv_record(line);
  std::size_t label_index = header.size() - 1;
  if (!label_column.empty()) {
    auto it = std::find(header.begin(), header.end(), label_column);
    if (it == header.end()) {
      throw Error::invalid_argument(path + ":1: no label column '" + label_column + "'");
    }
    label_index = static_cast<std::size_t>(it - header.begin());
  }
  if (header.size() < 2) throw Error::invalid_argument(path + ":1: need at least one feature and a label column");

  CsvDataset out;
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (c != label_index) out.feature_names.push_back(header[c]);
  }
  std::vector<std::string> raw_labels;
  std::vector<std::size_t> label_lines;  // the file line of each record, for errors
  std::size_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    const auto fields = split_csv_record(line);
    if (fields.size() != header.size()) {
      throw Error::invalid_argument(path + ":" + std::to_string(line_no) + ": " +
                                    std::to_string(fields.size()) + " fields, header has " +
                                    std::to_string(header.size()));
    }
    for (std::size_t c = 0; c < fields.size(); ++c) {
      if (c == label_index) {
        if (fields[c].empty()) {
          throw Error::invalid_argument(path + ":" + std::to_string(line_no) + ": empty label");
        }
        raw_labels.push_back(fields[c]);
        label_lines.push_back(line_no);
        continue;
      }
      float value = 0;
      if (!parse_float(fields[c], value)) {
        throw Error::invalid_argument(path + ":" + std::to_string(line_no) + ": column '" +
                                      header[c] + "': '" + fields[c] + "' is not a number");
      }
      out.features.push_back(value);
    }
  }
  if (raw_labels.empty()) throw Error::invalid_argument(path + ": no data rows");

  // A label outside the classes is a damaged record, never a new class: it
  // would silently change the model's output layer.
  const auto bad_record = [&](std::size_t record, const std::string& why) {
    return Error::corruption(path + ":" + std::to_string(label_lines[record]) + ": record " + std::to_string(record) +
                             ": label '" + raw_labels[record] + "' " + why);
  };
  std::map<std::string, std::int64_t> index;
  if (!classes.empty()) {
    out.class_names = classes;
  } else if (std::all_of(raw_labels.begin(), raw_labels.end(), is_non_negative_integer)) {
    std::int64_t max_label = 0;
    for (const auto& l : raw_labels) max_label = std::max<std::int64_t>(max_label, std::stoll(l));
    for (std::int64_t k = 0; k <= max_label; ++k) out.class_names.push_back(std::to_string(k));
  } else {
    std::set<std::string> unique(raw_labels.begin(), raw_labels.end());
    out.class_names.assign(unique.begin(), unique.end());
  }
  for (std::size_t k = 0; k < out.class_names.size(); ++k) {
    index[out.class_names[k]] = static_cast<std::int64_t>(k);
  }
  for (std::size_t i = 0; i < raw_labels.size(); ++i) {
    const std::string& l = raw_labels[i];
    auto it = index.find(l);
    if (it == index.end() && is_non_negative_integer(l)) it = index.find(std::to_string(std::stoll(l)));
    if (it == index.end()) {
      throw bad_record(i, "is not one of the dataset's " + std::to_string(out.class_names.size()) + " classes");
    }
    out.labels.push_back(it->second);
  }
  return out;
}

}  // namespace fedtrack
