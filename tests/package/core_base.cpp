// fedtrack::core_base alone: torch-free errors, text and partitioners.
#include <iostream>

#include "fedtrack/core/error.h"
#include "fedtrack/core/partition.h"
#include "fedtrack/core/text.h"

int main() {
  if (fedtrack::redact_uri("https://u:secret@host/x") != "https://host/x") return 1;
  fedtrack::Partitions parts = fedtrack::partition_iid(10, 3, 42);
  if (parts.size() != 3) return 1;
  try {
    throw fedtrack::Error::not_found("nothing");
  } catch (const fedtrack::Error& e) {
    if (e.code() != fedtrack::ErrorCode::kNotFound) return 1;
  }
  std::cout << "core_base ok\n";
  return 0;
}
