#include "fedtrack/core/text.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace fedtrack {
namespace {

// Length of the well-formed character at text[i], or 0 when ill-formed; then
// `bad` is the length of the maximal subpart to replace (at least 1).
std::size_t char_length(std::string_view text, std::size_t i, std::size_t& bad) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  bad = 1;
  if (b0 < 0x80) return 1;
  std::size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 == 0xE0) {
    need = 2, lo = 0xA0;
  } else if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) {
    need = 2;
  } else if (b0 == 0xED) {
    need = 2, hi = 0x9F;
  } else if (b0 == 0xF0) {
    need = 3, lo = 0x90;
  } else if (b0 >= 0xF1 && b0 <= 0xF3) {
    need = 3;
  } else if (b0 == 0xF4) {
    need = 3, hi = 0x8F;
  } else {
    return 0;  // C0, C1, F5..FF, or a stray continuation byte
  }
  for (std::size_t k = 1; k <= need; ++k) {
    if (i + k >= text.size()) {
      bad = k;
      return 0;
    }
    const unsigned char b = byte(i + k);
    const bool ok = (k == 1) ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      bad = k;
      return 0;
    }
  }
  return need + 1;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool secret_parameter(std::string_view name) {
  static const std::array<const char*, 14> exact = {
      "token", "access_token", "refresh_token", "id_token", "password", "passwd", "pwd",
      "secret", "client_secret", "key", "api_key", "apikey", "sig", "signature"};
  const std::string n = lower(name);
  for (const char* e : exact) {
    if (n == e) return true;
  }
  for (const char* part : {"token", "password", "secret", "signature", "credential", "auth"}) {
    if (n.find(part) != std::string::npos) return true;
  }
  return false;
}

bool scheme_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  std::size_t i = 0, bad = 0;
  while (i < text.size()) {
    const std::size_t n = char_length(text, i, bad);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string to_valid_utf8(std::string_view text) {
  if (is_valid_utf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  std::size_t i = 0, bad = 0;
  while (i < text.size()) {
    const std::size_t n = char_length(text, i, bad);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      i += bad;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string truncate_utf8(std::string_view text, std::size_t max_bytes) {
  std::string valid = to_valid_utf8(text);
  if (valid.size() <= max_bytes) return valid;
  std::size_t cut = max_bytes;
  // Back up over continuation bytes to the start of the character at `cut`.
  while (cut > 0 && (static_cast<unsigned char>(valid[cut]) & 0xC0) == 0x80) --cut;
  valid.resize(cut);
  return valid;
}

std::string redact_uri(std::string_view uri) {
  const std::size_t sep = uri.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::string(uri);
  for (std::size_t i = 0; i < sep; ++i) {
    if (!scheme_char(uri[i])) return std::string(uri);
  }
  const std::size_t auth_begin = sep + 3;
  std::size_t auth_end = uri.find_first_of("/?#", auth_begin);
  if (auth_end == std::string_view::npos) auth_end = uri.size();
  std::string out(uri.substr(0, auth_begin));
  const std::string_view authority = uri.substr(auth_begin, auth_end - auth_begin);
  const std::size_t at = authority.rfind('@');
  out += (at == std::string_view::npos) ? authority : authority.substr(at + 1);

  std::size_t rest = auth_end;
  const std::size_t q = uri.find('?', rest);
  if (q == std::string_view::npos) {
    out += uri.substr(rest);
    return out;
  }
  out += uri.substr(rest, q + 1 - rest);
  std::size_t query_end = uri.find('#', q);
  if (query_end == std::string_view::npos) query_end = uri.size();
  std::size_t pos = q + 1;
  while (pos <= query_end) {
    std::size_t amp = uri.find('&', pos);
    if (amp == std::string_view::npos || amp > query_end) amp = query_end;
    const std::string_view pair = uri.substr(pos, amp - pos);
    const std::size_t eq = pair.find('=');
    if (eq != std::string_view::npos && secret_parameter(pair.substr(0, eq))) {
      out += pair.substr(0, eq + 1);
      out += "REDACTED";
    } else {
      out += pair;
    }
    if (amp < query_end) out += '&';
    pos = amp + 1;
  }
  out += uri.substr(query_end);
  return out;
}

std::string redact_secrets(std::string_view text) {
  std::string out;
  std::size_t copied = 0;
  std::size_t search = 0;
  while (true) {
    const std::size_t sep = text.find("://", search);
    if (sep == std::string_view::npos) break;
    std::size_t begin = sep;
    while (begin > copied && scheme_char(text[begin - 1])) --begin;
    std::size_t end = sep + 3;
    while (end < text.size()) {
      const unsigned char c = static_cast<unsigned char>(text[end]);
      if (std::isspace(c) || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`') break;
      ++end;
    }
    if (begin == sep) {  // no scheme before "://"
      search = sep + 3;
      continue;
    }
    out.append(text.substr(copied, begin - copied));
    out += redact_uri(text.substr(begin, end - begin));
    copied = end;
    search = end;
  }
  out.append(text.substr(copied));
  return out;
}

}  // namespace fedtrack
