// Printing that matches PyTorch's repr (torch/_tensor_str.py, default print options:
// precision 4, threshold 1000, edgeitems 3, linewidth 80).
#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>

#include "nnkit/autograd/grad_mode.h"
#include "nnkit/autograd/node.h"
#include "nnkit/ops.h"

namespace nnkit {

std::ostream& operator<<(std::ostream& os, const Shape& s) {
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  return os << "]";
}

namespace {

constexpr int kPrecision = 4;
constexpr int64_t kThreshold = 1000;
constexpr int64_t kEdge = 3;
constexpr int64_t kLinewidth = 80;

std::string fmt_double(const char* f, double v) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

// Python's "{:.4f}" and friends print nan and inf as "nan" and "inf".
std::string py_fixed(double v, int prec) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char f[16];
  std::snprintf(f, sizeof(f), "%%.%df", prec);
  return fmt_double(f, v);
}
std::string py_sci(double v, int prec) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char f[16];
  std::snprintf(f, sizeof(f), "%%.%de", prec);
  return fmt_double(f, v);
}

// PyTorch's _Formatter.
struct Formatter {
  bool floating = false, is_bool = false, int_mode = true, sci_mode = false;
  size_t max_width = 1;

  explicit Formatter(const Tensor& t) {
    floating = t.is_floating_point();
    is_bool = t.dtype() == kBool;
    if (!floating) {
      if (is_bool) {
        for (bool b : t.to_vector<bool>()) max_width = std::max(max_width, std::string(b ? "True" : "False").size());
      } else {
        for (int64_t v : t.to_vector<int64_t>()) max_width = std::max(max_width, std::to_string(v).size());
      }
      return;
    }
    std::vector<double> vals;
    for (double v : t.to_vector<double>())
      if (std::isfinite(v) && v != 0) vals.push_back(v);
    if (vals.empty()) return;
    double mn = std::abs(vals[0]), mx = mn;
    for (double v : vals) {
      mn = std::min(mn, std::abs(v));
      mx = std::max(mx, std::abs(v));
    }
    for (double v : vals)
      if (v != std::ceil(v)) {
        int_mode = false;
        break;
      }
    if (int_mode) {
      if (mx / mn > 1000. || mx > 1.e8) {
        sci_mode = true;
        for (double v : vals) max_width = std::max(max_width, py_sci(v, kPrecision).size());
      } else {
        for (double v : vals) max_width = std::max(max_width, py_fixed(v, 0).size() + 1);
      }
    } else {
      if (mx / mn > 1000. || mx > 1.e8 || mn < 1.e-4) {
        sci_mode = true;
        for (double v : vals) max_width = std::max(max_width, py_sci(v, kPrecision).size());
      } else {
        for (double v : vals) max_width = std::max(max_width, py_fixed(v, kPrecision).size());
      }
    }
  }

  std::string format(double v) const {
    std::string r;
    if (floating) {
      if (sci_mode) {
        r = py_sci(v, kPrecision);
      } else if (int_mode) {
        r = py_fixed(v, 0);
        if (std::isfinite(v)) r += ".";
      } else {
        r = py_fixed(v, kPrecision);
      }
    } else if (is_bool) {
      r = v != 0 ? "True" : "False";
    } else {
      r = std::to_string(int64_t(v));
    }
    return r.size() < max_width ? std::string(max_width - r.size(), ' ') + r : r;
  }
};

std::vector<double> values(const Tensor& t) {
  if (t.dtype() == kInt64) {
    std::vector<double> out;
    for (int64_t v : t.to_vector<int64_t>()) out.push_back(double(v));  // printing only
    return out;
  }
  return t.to_vector<double>();
}

Tensor summarized(const Tensor& t) {
  if (t.dim() == 0) return t;
  if (t.dim() == 1) {
    if (t.size(0) > 2 * kEdge) return cat({t.slice(0, 0, kEdge), t.slice(0, -kEdge)});
    return t;
  }
  TensorList parts;
  int64_t n = t.size(0);
  if (n > 2 * kEdge) {
    for (int64_t i = 0; i < kEdge; ++i) parts.push_back(summarized(t[i]));
    for (int64_t i = n - kEdge; i < n; ++i) parts.push_back(summarized(t[i]));
  } else {
    for (int64_t i = 0; i < n; ++i) parts.push_back(summarized(t[i]));
  }
  return stack(parts);
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? sep : "") + parts[i];
  return s;
}

std::string vector_str(const Tensor& t, int64_t indent, bool summarize, const Formatter& f) {
  int64_t element_length = int64_t(f.max_width) + 2;
  int64_t per_line = std::max<int64_t>(1, (kLinewidth - indent) / element_length);
  std::vector<std::string> data;
  int64_t n = t.size(0);
  if (summarize && n > 2 * kEdge) {
    for (double v : values(t.slice(0, 0, kEdge))) data.push_back(f.format(v));
    data.push_back(" ...");
    for (double v : values(t.slice(0, n - kEdge))) data.push_back(f.format(v));
  } else {
    for (double v : values(t)) data.push_back(f.format(v));
  }
  std::vector<std::string> lines;
  for (size_t i = 0; i < data.size(); i += size_t(per_line))
    lines.push_back(join(std::vector<std::string>(data.begin() + std::ptrdiff_t(i),
                                                  data.begin() + std::ptrdiff_t(std::min(data.size(), i + size_t(per_line)))),
                         ", "));
  return "[" + join(lines, ",\n" + std::string(size_t(indent + 1), ' ')) + "]";
}

std::string tensor_str(const Tensor& t, int64_t indent, bool summarize, const Formatter& f) {
  if (t.dim() == 0) return f.format(values(t)[0]);
  if (t.dim() == 1) return vector_str(t, indent, summarize, f);
  std::vector<std::string> slices;
  int64_t n = t.size(0);
  if (summarize && n > 2 * kEdge) {
    for (int64_t i = 0; i < kEdge; ++i) slices.push_back(tensor_str(t[i], indent + 1, summarize, f));
    slices.push_back("...");
    for (int64_t i = n - kEdge; i < n; ++i) slices.push_back(tensor_str(t[i], indent + 1, summarize, f));
  } else {
    for (int64_t i = 0; i < n; ++i) slices.push_back(tensor_str(t[i], indent + 1, summarize, f));
  }
  return "[" + join(slices, "," + std::string(size_t(t.dim() - 1), '\n') + std::string(size_t(indent + 1), ' ')) + "]";
}

}  // namespace

std::string Tensor::to_string() const {
  if (!defined()) return "[ Tensor (undefined) ]";
  NoGradGuard g;
  Tensor t = detach().to(Device::cpu());
  const std::string prefix = "tensor(";
  const int64_t indent = int64_t(prefix.size());
  std::vector<std::string> suffixes;
  if (is_cuda()) suffixes.push_back("device='" + device().str() + "'");
  std::string body;
  if (numel() == 0) {
    if (dim() != 1) {
      std::ostringstream os;
      os << "size=(";
      for (int64_t i = 0; i < dim(); ++i) os << (i ? ", " : "") << size(i);
      os << (dim() == 1 ? ",)" : ")");
      suffixes.push_back(os.str());
    }
    if (dtype() != kFloat32) suffixes.push_back("dtype=torch." + std::string(dtype_name(dtype())));
    body = "[]";
  } else {
    if (dtype() == kFloat64) suffixes.push_back("dtype=torch.float64");
    bool summarize = numel() > kThreshold;
    Formatter f(summarize ? summarized(t) : t);
    body = tensor_str(t, indent, summarize, f);
  }
  if (grad_fn())
    suffixes.push_back("grad_fn=<" + grad_fn()->name() + ">");
  else if (requires_grad())
    suffixes.push_back("requires_grad=True");
  std::string out = prefix + body;
  size_t nl = out.rfind('\n');
  int64_t last_line_len = int64_t(out.size()) - (nl == std::string::npos ? -1 : int64_t(nl)) + 1;
  for (auto& s : suffixes) {
    int64_t len = int64_t(s.size());
    if (last_line_len + len + 2 > kLinewidth) {
      out += ",\n" + std::string(size_t(indent), ' ') + s;
      last_line_len = indent + len;
    } else {
      out += ", " + s;
      last_line_len += len + 2;
    }
  }
  return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

}  // namespace nnkit
