// fedtrack::versioning alone (no LibTorch): creates a model repository
// (libgit2) and hashes bytes (OpenSSL).
#include <iostream>
#include <string>

#include "fedtrack/versioning/md5.h"
#include "fedtrack/versioning/model_repository.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  fedtrack::VersioningOptions options;
  options.repo = std::string(argv[1]) + "/models";
  options.author = "Consumer <consumer@example.invalid>";
  fedtrack::ModelRepository repo(options);
  if (repo.root().empty()) return 1;
  if (fedtrack::md5_hex("") != "d41d8cd98f00b204e9800998ecf8427e") return 1;
  std::cout << "versioning ok\n";
  return 0;
}
