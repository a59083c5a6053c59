#include "resolved_job.h"

#include <yaml-cpp/yaml.h>

#include <type_traits>
#include <variant>

#include "fedtrack/connectors/job_schema.h"
#include "fedtrack/core/text.h"

namespace fedtrack {
namespace {

// The mapping at "a.b" under `root`, made on the way (yaml-cpp nodes are
// handles: the returned node writes into `root`).
YAML::Node section(YAML::Node root, const std::string& dotted, std::string& leaf) {
  YAML::Node node = root;
  std::size_t start = 0;
  for (auto dot = dotted.find('.'); dot != std::string::npos; dot = dotted.find('.', start)) {
    const std::string part = dotted.substr(start, dot - start);
    YAML::Node next = node[part];
    node.reset(next);
    start = dot + 1;
  }
  leaf = dotted.substr(start);
  return node;
}

}  // namespace

std::string resolved_job_yaml(const JobSpec& job) {
  YAML::Node root(YAML::NodeType::Map);
  JobSpec& j = const_cast<JobSpec&>(job);  // the accessors bind for writing; reading never writes
  for (const auto& row : job_keys()) {
    if (!job_key_listed(row, job)) continue;
    std::string leaf;
    YAML::Node parent = section(root, row.key, leaf);
    const bool is_list = std::visit(
        [&](const auto& get) {
          using T = std::decay_t<decltype(get(j))>;
          if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            YAML::Node list(YAML::NodeType::Sequence);
            for (const auto& item : get(j)) list.push_back(to_valid_utf8(redact_secrets(item)));
            parent[leaf] = list;
            return true;
          } else {
            return false;
          }
        },
        row.bind);
    if (is_list) continue;
    const std::string value = to_valid_utf8(redact_secrets(job_key_text(row, job)));
    if (!value.empty()) parent[leaf] = value;
  }
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}

}  // namespace fedtrack
