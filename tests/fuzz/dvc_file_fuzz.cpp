// libFuzzer target: the `.dvc` file reader (versioning/src/dvc_format.cpp),
// which `fedtrack restore` and `history` run on files from any git revision.
// Contract: see fuzz_contract.h. Round trip: an output fedtrack can write
// (hash "md5", or none for a legacy DVC 2 output) renders to a .dvc file
// that reads back as the same output, or rendering refuses it with
// fedtrack::Error.
#include <cstdint>

#include "dvc_format.h"
#include "fuzz_contract.h"

namespace {
constexpr const char* kTarget = "dvc_file";
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fedtrack;
  const std::string text(fuzz::as_text(data, size));

  DvcOutput out;
  if (!fuzz::decodes(kTarget, [&] { out = parse_dvc_file(text, "fuzz.dvc"); })) return 0;
  fuzz::check(out.md5.size() == 32, kTarget, "accepted an md5 of " + std::to_string(out.md5.size()) + " characters");
  std::string object;
  fuzz::must_not_throw(kTarget, "object_path(parsed md5)", [&] { object = object_path("cache", out.md5, out.legacy()); });

  if (out.hash != "md5" && !out.hash.empty()) return 0;
  std::string rendered;  // the writer may refuse (fedtrack::Error), never write another path
  if (!fuzz::decodes(kTarget, [&] { rendered = render_dvc_file(out); })) return 0;
  DvcOutput again;
  fuzz::must_not_throw(kTarget, "parse_dvc_file(render_dvc_file(o))",
                       [&] { again = parse_dvc_file(rendered, "rendered.dvc"); });
  fuzz::check(again.md5 == out.md5 && again.size == out.size && again.hash == out.hash && again.path == out.path,
              kTarget, "parse(render(o)) differs from o; rendered:\n" + rendered);
  return 0;
}
