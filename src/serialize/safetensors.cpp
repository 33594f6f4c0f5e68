// safetensors: 8-byte little-endian header length, a JSON header
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}
// padded with spaces to a multiple of 8, then the raw little-endian row-major data.
// The reader treats the bytes as hostile: every length and offset is checked before use.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "nnkit/autograd/grad_mode.h"
#include "nnkit/ops.h"
#include "nnkit/serialize/state_dict.h"

namespace nnkit {

namespace {

std::string_view st_dtype(Dtype d) { return dtype_info(d).safetensors; }

Dtype parse_dtype(const std::string& s, const std::string& key) {
  std::string supported;
  for (const DtypeInfo& r : kDtypeTable) {
    if (r.safetensors == s) return r.dtype;
    supported += (supported.empty() ? "" : ", ") + std::string(r.safetensors);
  }
  detail::throw_error("[load] tensor '" + key + "' has dtype '" + s + "', which nnkit does not support (supported: " +
                      supported + ")");
}

constexpr uint64_t kMaxHeader = 100ull << 20;  // 100 MB, the limit Python's safetensors uses

}  // namespace

std::string save_safetensors_bytes(const StateDict& state, const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<Tensor> cpu;
  for (auto& [name, t] : state) {
    NNKIT_CHECK(t.defined(), "[save] tensor '", name, "' is undefined");
    NNKIT_CHECK(name != "__metadata__", "[save] '__metadata__' is reserved and cannot name a tensor");
    Tensor c = t.detach().to(Device::cpu()).contiguous();
    uint64_t n = c.nbytes();
    header[name] = {{"dtype", std::string(st_dtype(c.dtype()))}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    cpu.push_back(c);
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + h.size() + offset);
  uint64_t len = h.size();
  for (int i = 0; i < 8; ++i) out.push_back(char((len >> (8 * i)) & 0xff));
  out += h;
  for (auto& c : cpu) out.append(static_cast<const char*>(c.raw_data()), c.nbytes());
  return out;
}

void save(const StateDict& state, const std::string& path, const std::map<std::string, std::string>& metadata) {
  std::string bytes = save_safetensors_bytes(state, metadata);
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  NNKIT_CHECK(fd >= 0, "[save] cannot open '", tmp, "' for writing: ", std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      detail::throw_error(std::string("[save] writing '") + tmp + "' failed: " + std::strerror(err));
    }
    done += size_t(w);
  }
  bool ok = ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    detail::throw_error(std::string("[save] could not write '") + path + "': " + std::strerror(err));
  }
  // Persist the rename itself.
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

StateDict load_safetensors_bytes(const std::string& bytes, std::map<std::string, std::string>* metadata) {
  NNKIT_CHECK(bytes.size() >= 8, "[load] file too short (", bytes.size(), " bytes) to hold a safetensors header");
  uint64_t hlen = 0;
  for (int i = 0; i < 8; ++i) hlen |= uint64_t(uint8_t(bytes[size_t(i)])) << (8 * i);
  NNKIT_CHECK(hlen <= kMaxHeader, "[load] header length ", hlen, " exceeds the 100 MB limit (corrupt file?)");
  NNKIT_CHECK(hlen <= bytes.size() - 8, "[load] header length ", hlen, " runs past the end of the file (",
              bytes.size(), " bytes)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + std::ptrdiff_t(hlen));
  } catch (const nlohmann::json::exception& e) {
    detail::throw_error(std::string("[load] the header is not valid JSON: ") + e.what());
  }
  NNKIT_CHECK(header.is_object(), "[load] the header must be a JSON object");
  const uint64_t data_size = bytes.size() - 8 - hlen;
  const char* data = bytes.data() + 8 + hlen;

  struct Entry {
    std::string name;
    Dtype dtype;
    Shape shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  for (auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      NNKIT_CHECK(value.is_object(), "[load] __metadata__ must be an object of strings");
      for (auto& [mk, mv] : value.items()) {
        NNKIT_CHECK(mv.is_string(), "[load] __metadata__ value for '", mk, "' is not a string");
        if (metadata) (*metadata)[mk] = mv.get<std::string>();
      }
      continue;
    }
    NNKIT_CHECK(value.is_object(), "[load] entry '", key, "' is not an object");
    NNKIT_CHECK(value.contains("dtype") && value["dtype"].is_string(), "[load] entry '", key, "' has no string dtype");
    NNKIT_CHECK(value.contains("shape") && value["shape"].is_array(), "[load] entry '", key, "' has no shape array");
    NNKIT_CHECK(value.contains("data_offsets") && value["data_offsets"].is_array() && value["data_offsets"].size() == 2,
                "[load] entry '", key, "' needs data_offsets [begin, end]");
    Entry e{key, parse_dtype(value["dtype"].get<std::string>(), key), {}, 0, 0};
    uint64_t numel = 1;
    for (auto& d : value["shape"]) {
      NNKIT_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), "[load] entry '", key,
                  "' has a negative or non-integer dimension");
      uint64_t v = d.get<uint64_t>();
      NNKIT_CHECK(v <= uint64_t(std::numeric_limits<int64_t>::max()) &&
                      (v == 0 || numel <= std::numeric_limits<uint64_t>::max() / v),
                  "[load] entry '", key, "' has a shape whose size overflows");
      numel *= v;
      e.shape.push_back(int64_t(v));
    }
    for (auto& o : value["data_offsets"])
      NNKIT_CHECK(o.is_number_unsigned() || (o.is_number_integer() && o.get<int64_t>() >= 0), "[load] entry '", key,
                  "' has a negative or non-integer data offset");
    e.begin = value["data_offsets"][0].get<uint64_t>();
    e.end = value["data_offsets"][1].get<uint64_t>();
    NNKIT_CHECK(e.begin <= e.end && e.end <= data_size, "[load] entry '", key, "' has data_offsets [", e.begin, ", ",
                e.end, "] outside the data section (", data_size, " bytes)");
    uint64_t es = element_size(e.dtype);
    NNKIT_CHECK(numel <= std::numeric_limits<uint64_t>::max() / es && e.end - e.begin == numel * es, "[load] entry '",
                key, "' has ", e.end - e.begin, " bytes of data but its dtype and shape ", e.shape, " need ",
                numel <= std::numeric_limits<uint64_t>::max() / es ? numel * es : 0);
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < entries.size(); ++i)
    NNKIT_CHECK(entries[i].begin >= entries[i - 1].end, "[load] entries '", entries[i - 1].name, "' and '",
                entries[i].name, "' overlap in the data section");
  StateDict out;
  for (auto& e : entries) {
    Tensor t = empty(e.shape, {.dtype = e.dtype});
    if (e.end > e.begin) std::memcpy(t.raw_data(), data + e.begin, e.end - e.begin);
    if (e.dtype == kBool) {
      // Normalize booleans: any nonzero byte is true (a raw byte > 1 is not a valid C++ bool).
      auto* p = static_cast<uint8_t*>(t.raw_data());
      for (int64_t i = 0; i < t.numel(); ++i) p[i] = p[i] != 0;
    }
    out.insert(e.name, t);
  }
  return out;
}

StateDict load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  NNKIT_CHECK(f.good(), "[load] cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  try {
    return load_safetensors_bytes(ss.str());
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (file '" + path + "')");
  }
}

}  // namespace nnkit
