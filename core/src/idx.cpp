#include "idx.h"

#include <Poco/InflatingStream.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <fstream>
#include <sstream>

#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"

namespace fedtrack {
namespace {

std::uint32_t read_be32(const std::string& b, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 3]));
}

}  // namespace

IdxArray parse_idx(const std::string& bytes, const std::string& name) {
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0) {
    throw Error::corruption(name + ": not an IDX file (bad magic number)");
  }
  const auto type = static_cast<unsigned char>(bytes[2]);
  const auto ndim = static_cast<unsigned char>(bytes[3]);
  if (type != 0x08) {
    throw Error::invalid_argument(name + ": IDX element type 0x" + std::to_string(type) +
                                  " is not supported (only unsigned bytes, 0x08)");
  }
  if (ndim == 0) throw Error::corruption(name + ": IDX file with zero dimensions");
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(ndim);
  if (bytes.size() < header) throw Error::corruption(name + ": truncated IDX header");
  IdxArray out;
  std::uint64_t count = 1;
  for (std::size_t d = 0; d < ndim; ++d) {
    const std::uint32_t dim = read_be32(bytes, 4 + 4 * d);
    out.dims.push_back(dim);
    count *= dim;
    if (count > (1ull << 40)) throw Error::corruption(name + ": implausible IDX dimensions");
  }
  if (bytes.size() - header != count) {
    throw Error::corruption(name + ": IDX payload is " + std::to_string(bytes.size() - header) +
                            " bytes, dimensions say " + std::to_string(count));
  }
  out.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return out;
}

struct IdxReader::Source {
  std::ifstream file;
  std::unique_ptr<Poco::InflatingInputStream> inflate;
  std::istream* in = nullptr;
  bool gzip = false;
};

IdxReader::IdxReader(const std::string& path) : path_(path), source_(std::make_unique<Source>()) {
  try {
    check_regular_file(path);  // a FIFO or a directory is an Error, never a hang
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kNotFound) throw Error::not_found(path + ": cannot open IDX file");
    throw;
  }
  std::ifstream& file = source_->file;
  file.open(path, std::ios::binary);
  if (!file) throw Error::not_found(path + ": cannot open IDX file");
  char magic[2] = {0, 0};
  file.read(magic, 2);
  const bool gzip = file.gcount() == 2 && static_cast<unsigned char>(magic[0]) == 0x1f &&
                    static_cast<unsigned char>(magic[1]) == 0x8b;
  source_->gzip = gzip;
  file.clear();
  file.seekg(0);
  source_->in = &file;
  if (gzip) {
    source_->inflate = std::make_unique<Poco::InflatingInputStream>(file, Poco::InflatingStreamBuf::STREAM_GZIP);
    source_->in = source_->inflate.get();
  }
  source_->in->exceptions(std::ios::badbit);  // a corrupt gzip stream throws rather than looking like its end
  char head[4];
  if (read_some(head, 4) < 4 || head[0] != 0 || head[1] != 0) {
    throw Error::corruption(path + ": not an IDX file (bad magic number)");
  }
  const auto type = static_cast<unsigned char>(head[2]);
  const auto ndim = static_cast<unsigned char>(head[3]);
  if (type != 0x08) {
    throw Error::invalid_argument(path + ": IDX element type 0x" + std::to_string(type) +
                                  " is not supported (only unsigned bytes, 0x08)");
  }
  if (ndim == 0) throw Error::corruption(path + ": IDX file with zero dimensions");
  std::string dims_bytes(4 * static_cast<std::size_t>(ndim), '\0');
  if (read_some(dims_bytes.data(), dims_bytes.size()) < dims_bytes.size()) {
    throw Error::corruption(path + ": truncated IDX header");
  }
  std::uint64_t count = 1;
  for (std::size_t d = 0; d < ndim; ++d) {
    const std::uint32_t dim = read_be32(dims_bytes, 4 * d);
    dims_.push_back(dim);
    count *= dim;
    if (count > (1ull << 40)) throw Error::corruption(path + ": implausible IDX dimensions");
  }
  // The dimensions must fit the file before anyone sizes a buffer by them:
  // a raw payload is exactly the bytes after the header, a gzip stream
  // inflates at most 1032-fold (deflate's limit).
  const std::uint64_t file_bytes = std::filesystem::file_size(path);
  const std::uint64_t header_bytes = 4 + dims_bytes.size();
  if (!gzip && file_bytes - header_bytes != count) {
    throw Error::corruption(path + ": IDX payload is " + std::to_string(file_bytes - header_bytes) +
                            " bytes, dimensions say " + std::to_string(count));
  }
  if (gzip && count > 1032 * file_bytes) {
    throw Error::corruption(path + ": dimensions say " + std::to_string(count) + " bytes, more than a gzip file of " +
                            std::to_string(file_bytes) + " bytes can hold");
  }
  payload_bytes_ = count;
}

IdxReader::~IdxReader() = default;

std::size_t IdxReader::read_some(char* buf, std::size_t size) {
  try {
    source_->in->read(buf, static_cast<std::streamsize>(size));
    return static_cast<std::size_t>(source_->in->gcount());
  } catch (const std::exception& e) {
    if (!source_->gzip) throw Error::unavailable(path_ + ": read failed: " + e.what());
    throw Error::corruption(path_ + ": gzip data is corrupt: " + e.what());
  }
}

void IdxReader::read(std::uint8_t* out, std::size_t n) {
  if (n > payload_bytes_ - consumed_) {
    throw Error::invalid_argument(path_ + ": read of " + std::to_string(n) + " bytes past the payload's end");
  }
  const std::size_t got = read_some(reinterpret_cast<char*>(out), n);
  consumed_ += got;
  if (got < n) {
    throw Error::corruption(path_ + ": IDX payload is " + std::to_string(consumed_) + " bytes, dimensions say " +
                            std::to_string(payload_bytes_));
  }
}

void IdxReader::expect_end() {
  char extra[4096];
  std::uint64_t total = consumed_;
  for (std::size_t n; (n = read_some(extra, sizeof extra)) > 0;) total += n;
  if (total != payload_bytes_) {
    throw Error::corruption(path_ + ": IDX payload is " + std::to_string(total) + " bytes, dimensions say " +
                            std::to_string(payload_bytes_));
  }
}

void stream_idx(const std::string& path, const std::function<void(const std::vector<std::int64_t>&)>& on_dims,
                const std::function<void(const std::uint8_t*, std::size_t)>& on_bytes) {
  IdxReader reader(path);
  on_dims(reader.dims());
  std::vector<std::uint8_t> chunk(1 << 16);
  while (reader.remaining() > 0) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), reader.remaining()));
    reader.read(chunk.data(), n);
    on_bytes(chunk.data(), n);
  }
  reader.expect_end();
}

// One reader: read_idx collects what stream_idx streams, so a damaged file
// (a corrupt gzip stream included) gives the same error either way.
IdxArray read_idx(const std::string& path) {
  IdxArray out;
  stream_idx(
      path,
      [&](const std::vector<std::int64_t>& dims) {
        out.dims = dims;
        std::uint64_t count = 1;
        for (const auto d : dims) count *= static_cast<std::uint64_t>(d);
        out.data.reserve(count);  // bounded by the file's size (stream_idx checked)
      },
      [&](const std::uint8_t* bytes, std::size_t n) { out.data.insert(out.data.end(), bytes, bytes + n); });
  return out;
}

std::string encode_idx(const IdxArray& array) {
  std::string out = {0, 0, 0x08, static_cast<char>(array.dims.size())};
  for (const auto d : array.dims) {
    const auto v = static_cast<std::uint32_t>(d);
    out += {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
  }
  out.append(reinterpret_cast<const char*>(array.data.data()), array.data.size());
  return out;
}

std::string find_idx_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  const fs::path plain = fs::path(dir) / stem;
  if (fs::exists(plain)) return plain.string();
  const fs::path gz = fs::path(dir) / (stem + ".gz");
  if (fs::exists(gz)) return gz.string();
  throw Error::not_found("no " + plain.string() + " or " + gz.string());
}

}  // namespace fedtrack
