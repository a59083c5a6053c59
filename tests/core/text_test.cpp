#include "fedtrack/core/text.h"

#include <gtest/gtest.h>

namespace fedtrack {
namespace {

TEST(Utf8, ValidTextIsUnchanged) {
  const std::string s = "round-001 caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";
  EXPECT_TRUE(is_valid_utf8(s));
  EXPECT_EQ(to_valid_utf8(s), s);
}

TEST(Utf8, IllFormedBytesBecomeReplacementCharacters) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_FALSE(is_valid_utf8("jobs/caf\xE9.yaml"));  // Latin-1 e-acute
  EXPECT_EQ(to_valid_utf8("caf\xE9!"), "caf" + fffd + "!");
  EXPECT_EQ(to_valid_utf8("\xC0\xAF"), fffd + fffd);                 // overlong
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80"), fffd + fffd + fffd);      // surrogate
  EXPECT_EQ(to_valid_utf8("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // > U+10FFFF
  EXPECT_EQ(to_valid_utf8("a\xE2\x82"), "a" + fffd);                 // truncated: one maximal subpart
  EXPECT_EQ(to_valid_utf8("\xE2\x82z"), fffd + "z");
  EXPECT_EQ(to_valid_utf8(std::string("\0x", 2)), std::string("\0x", 2));
  EXPECT_TRUE(is_valid_utf8(to_valid_utf8("\xFF\xFE\x80\xBF\xC3")));
}

TEST(Utf8, TruncationNeverSplitsACharacter) {
  const std::string euro = "\xE2\x82\xAC";  // 3 bytes
  const std::string s = "ab" + euro + euro;
  EXPECT_EQ(truncate_utf8(s, 100), s);
  EXPECT_EQ(truncate_utf8(s, 5), "ab" + euro);
  EXPECT_EQ(truncate_utf8(s, 4), "ab");
  EXPECT_EQ(truncate_utf8(s, 3), "ab");
  EXPECT_EQ(truncate_utf8(s, 0), "");
  for (std::size_t n = 0; n <= s.size(); ++n) EXPECT_TRUE(is_valid_utf8(truncate_utf8(s, n))) << n;
}

TEST(Redact, UserinfoAndCredentialParametersAreRemoved) {
  EXPECT_EQ(redact_uri("http://alice:s3cret@127.0.0.1:5000/api"), "http://127.0.0.1:5000/api");
  EXPECT_EQ(redact_uri("https://tok@example/x?a=1"), "https://example/x?a=1");
  EXPECT_EQ(redact_uri("https://h/p?token=abc&x=1&X-Amz-Signature=f00#frag"),
            "https://h/p?token=REDACTED&x=1&X-Amz-Signature=REDACTED#frag");
  EXPECT_EQ(redact_uri("s3://bucket/prefix"), "s3://bucket/prefix");
  EXPECT_EQ(redact_uri("/local/folder"), "/local/folder");
  EXPECT_EQ(redact_uri("http://h:5000"), "http://h:5000");
  EXPECT_EQ(redact_uri("http://u:p@h"), "http://h");
}

TEST(Redact, UrlsInsideMessages) {
  EXPECT_EQ(redact_secrets("cannot reach http://u:pw@h:1/x: refused; also https://k@g/r.git"),
            "cannot reach http://h:1/x: refused; also https://g/r.git");
  EXPECT_EQ(redact_secrets("no url here"), "no url here");
  EXPECT_EQ(redact_secrets("'https://a:b@c/d'"), "'https://c/d'");
}

}  // namespace
}  // namespace fedtrack
