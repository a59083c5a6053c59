// libFuzzer target: the DVC config reader and rewriter
// (versioning/src/dvc_format.cpp: parse_dvc_config, dvc_config_with_remote)
// and the .gitignore updater, which run on whatever `.dvc/config` and
// `.gitignore` a model repository already holds.
// Contract: see fuzz_contract.h. Round trip: adding a remote keeps every
// section and key the reader saw (except keys before the first section,
// which DVC does not use) and adds exactly the remote; adding a .gitignore
// entry is idempotent.
#include <cstdint>

#include "dvc_format.h"
#include "fuzz_contract.h"

namespace {
constexpr const char* kTarget = "dvc_config";
constexpr const char* kRemote = "storage";
constexpr const char* kUrl = "/srv/dvc-remote";
constexpr const char* kEntry = "/global.pt";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fedtrack;
  const std::string text(fuzz::as_text(data, size));

  std::map<std::string, std::map<std::string, std::string>> config;
  if (fuzz::decodes(kTarget, [&] { config = parse_dvc_config(text); })) {
    std::string rewritten;
    if (fuzz::decodes(kTarget, [&] { rewritten = dvc_config_with_remote(text, kRemote, kUrl); })) {
      auto expected = config;
      expected.erase("");
      expected["core"]["remote"] = kRemote;
      expected[std::string("remote \"") + kRemote + "\""]["url"] = kUrl;
      std::map<std::string, std::map<std::string, std::string>> reread;
      fuzz::must_not_throw(kTarget, "parse_dvc_config(dvc_config_with_remote(c))",
                           [&] { reread = parse_dvc_config(rewritten); });
      fuzz::check(reread == expected, kTarget, "adding a remote lost or changed other settings; wrote:\n" + rewritten);
    }
  }

  std::string ignored;
  if (fuzz::decodes(kTarget, [&] { ignored = gitignore_with(text, kEntry); })) {
    fuzz::check(ignored.compare(0, text.size(), text) == 0, kTarget, "the lines already in .gitignore were changed");
    std::string twice;
    fuzz::must_not_throw(kTarget, "gitignore_with twice", [&] { twice = gitignore_with(ignored, kEntry); });
    fuzz::check(twice == ignored, kTarget, "adding the same .gitignore entry twice changed the file");
  }
  return 0;
}
