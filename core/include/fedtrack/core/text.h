// Text that leaves the process: valid UTF-8 and free of secrets.
//
// Everything a client, a file or a server sends is untrusted. Before such a
// text reaches JSON (MLflow, the journal, --json), a log line, a commit
// message or a printed error it goes through these functions:
//   - to_valid_utf8: every ill-formed byte sequence becomes U+FFFD, so a JSON
//     encoder never throws on it;
//   - truncate_utf8: cuts at a byte budget without splitting a character;
//   - redact_uri / redact_secrets: drop the userinfo (user:password@) of a URL
//     and the values of query parameters that carry credentials.
// Pure functions; torch-free; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace fedtrack {

// True when `text` is well-formed UTF-8 (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view text);

// `text` with each maximal ill-formed subsequence replaced by U+FFFD
// (the W3C/Unicode "substitution of maximal subparts" practice). Valid
// input comes back unchanged.
std::string to_valid_utf8(std::string_view text);

// The longest prefix of to_valid_utf8(text) that fits in `max_bytes` bytes and
// ends on a character boundary.
std::string truncate_utf8(std::string_view text, std::size_t max_bytes);

// A URL with its userinfo removed ("https://u:p@host/x" -> "https://host/x")
// and the values of credential query parameters replaced by "REDACTED"
// (token, access_token, password, secret, key, signature, X-Amz-Signature,
// X-Amz-Credential, X-Amz-Security-Token, sig, …; case-insensitive). Text that
// is not a URL comes back unchanged.
std::string redact_uri(std::string_view uri);

// `text` with every URL inside it passed through redact_uri (for error
// messages that quote a URL, e.g. curl's or git's).
std::string redact_secrets(std::string_view text);

}  // namespace fedtrack
