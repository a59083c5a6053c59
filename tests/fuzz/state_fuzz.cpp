// libFuzzer target: the resume-state decoders — state records (FTST,
// core/src/state_record.cpp), the round summary a state file keeps for
// replaying an unrecorded round (core/src/server_state.cpp), and the RNG
// state text of the client sampler and DP noise.
// Contract: see fuzz_contract.h. Round trips: a decoded record or summary,
// encoded again, decodes to an identical encoding; a decoded RNG, written
// and read back, is the same engine.
#include <cstdint>

#include "server_state.h"
#include "fedtrack/core/state_record.h"
#include "fuzz_contract.h"

namespace {
constexpr const char* kTarget = "state";
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fedtrack;
  const std::string_view bytes = fuzz::as_text(data, size);

  StateRecord record;
  if (fuzz::decodes(kTarget, [&] { record = decode_state(bytes); })) {
    const std::string encoded = encode_state(record);
    StateRecord again;
    fuzz::must_not_throw(kTarget, "decode_state(encode_state(r))", [&] { again = decode_state(encoded); });
    fuzz::check(again == record, kTarget, "decode_state(encode_state(r)) differs from r");
  }

  RoundSummary summary;
  if (fuzz::decodes(kTarget, [&] { summary = decode_round_summary(bytes); })) {
    std::string encoded;
    fuzz::must_not_throw(kTarget, "encode_round_summary(decoded)", [&] { encoded = encode_round_summary(summary); });
    RoundSummary again;
    fuzz::must_not_throw(kTarget, "decode_round_summary(encode_round_summary(s))",
                         [&] { again = decode_round_summary(encoded); });
    fuzz::check(encode_round_summary(again) == encoded, kTarget,
                "decode_round_summary(encode_round_summary(s)) differs from s");
  }

  std::mt19937_64 rng;
  if (fuzz::decodes(kTarget, [&] { rng = decode_rng(bytes); })) {
    std::mt19937_64 again;
    fuzz::must_not_throw(kTarget, "decode_rng(encode_rng(g))", [&] { again = decode_rng(encode_rng(rng)); });
    fuzz::check(again == rng, kTarget, "decode_rng(encode_rng(g)) differs from g");
  }
  return 0;
}
