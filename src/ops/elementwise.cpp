// Elementwise ops: binary arithmetic with broadcasting and type promotion, unary math,
// comparisons, where, clamp, and their in-place forms; each with its gradient rule.
#include <cmath>

#include "autograd/function.h"
#include "ops/common.h"
#include "backend/backend.h"
#include "ops/scalar_math.h"
#include "ops/unary_ops.h"

namespace nnkit {

using autograd::make_node;
using autograd::needs_grad;
using autograd::requires_grad;
using autograd::SavedTensor;
using autograd::set_history;

Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
  size_t n = std::max(a.size(), b.size());
  Shape out = Shape::filled(n, 1);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    NNKIT_CHECK(da == db || da == 1 || db == 1, "[", op, "] shapes ", a, " and ", b,
                " cannot be broadcast together (size ", da, " vs ", db, " at dimension ", i, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

using detail::Bin;
using detail::Cmp;
using detail::ScalarOp;
using detail::Un;

const char* bin_name(Bin op) {
  switch (op) {
    case Bin::Add: return "add";
    case Bin::Sub: return "sub";
    case Bin::Mul: return "mul";
    case Bin::Div: return "div";
    case Bin::Pow: return "pow";
    case Bin::Max: return "maximum";
    case Bin::Min: return "minimum";
  }
  return "?";
}

using detail::max_value;
using detail::min_value;
using detail::pow_value;

Dtype binary_result_type(const Tensor& a, const Tensor& b, Bin op) {
  Dtype d = promote_types(a.dtype(), b.dtype());
  if (op == Bin::Div && !is_floating_point(d)) d = kFloat32;  // true division
  if (d == kBool && op != Bin::Max && op != Bin::Min) d = kInt64;
  return d;
}

// Gradient to an input: undo broadcasting and promotion.
Tensor to_input(const Tensor& g, const Shape& sizes, Dtype dtype) { return sum_to(g, sizes).to(dtype); }

Tensor binary(const Tensor& a, const Tensor& b, Bin op, double alpha = 1) {
  const char* name = bin_name(op);
  detail::check_defined(a, name, "first operand");
  detail::check_defined(b, name, "second operand");
  detail::check_same_device(a, b, name);
  Shape shape = broadcast_shapes(a.sizes(), b.sizes(), name);
  Dtype dtype = binary_result_type(a, b, op);
  Tensor converted_a, converted_b;
  const Tensor& ca = detail::as_dtype(a, dtype, converted_a);
  const Tensor& cb = detail::as_dtype(b, dtype, converted_b);
  Tensor out = detail::empty_contig(shape, dtype, a.device());
  if (dtype == kBool) detail::throw_unsupported_dtype(name, dtype, detail::kNumericTypes);
  detail::backend(out).binary(out, ca, cb, op, alpha);

  if (!needs_grad(a, b)) return out;
  NNKIT_CHECK(is_floating_point(dtype), "[", name, "] only floating-point results can require grad");
  Shape sa = a.sizes(), sb = b.sizes();
  Dtype da = a.dtype(), db = b.dtype();
  std::shared_ptr<autograd::Node> node;
  switch (op) {
    case Bin::Add:
    case Bin::Sub: {
      double sign = op == Bin::Add ? alpha : -alpha;
      node = make_node(op == Bin::Add ? "AddBackward0" : "SubBackward0", {&a, &b},
                       [=](autograd::Node&, TensorList&& g) {
                         return TensorList{to_input(g[0], sa, da), to_input(sign == 1 ? g[0] : g[0] * sign, sb, db)};
                       });
      break;
    }
    case Bin::Mul: {
      bool ga = requires_grad(a), gb = requires_grad(b);
      node = make_node("MulBackward0", {&a, &b},
                       [=, sva = SavedTensor(gb ? a : Tensor()), svb = SavedTensor(ga ? b : Tensor())](
                           autograd::Node& self, TensorList&& g) {
                         auto me = autograd::running_node(self);
                         return TensorList{ga ? to_input(g[0] * svb.unpack(me), sa, da) : Tensor(),
                                           gb ? to_input(g[0] * sva.unpack(me), sb, db) : Tensor()};
                       });
      break;
    }
    case Bin::Div: {
      bool gb = requires_grad(b);
      node = make_node("DivBackward0", {&a, &b},
                       [=, sva = SavedTensor(gb ? a : Tensor()), svb = SavedTensor(b)](autograd::Node& self,
                                                                                       TensorList&& g) {
                         auto me = autograd::running_node(self);
                         Tensor bb = svb.unpack(me);
                         Tensor ga_ = to_input(g[0] / bb, sa, da);
                         Tensor gb_ = gb ? to_input(-g[0] * sva.unpack(me) / (bb * bb), sb, db) : Tensor();
                         return TensorList{ga_, gb_};
                       });
      break;
    }
    case Bin::Pow: {
      node = make_node("PowBackward1", {&a, &b},
                       [=, sva = SavedTensor(a), svb = SavedTensor(b), svo = SavedTensor(out, true)](
                           autograd::Node& self, TensorList&& g) {
                         auto me = autograd::running_node(self);
                         Tensor x = sva.unpack(me), y = svb.unpack(me);
                         // d/dx x^y = y x^(y-1) (0 where y == 0); d/dy x^y = x^y log x (0 where x == 0 and y >= 0)
                         Tensor gx = where(y == 0.0, 0.0, g[0] * y * pow(x, y - 1.0));
                         Tensor gy = where((x == 0.0).logical_not() + (y < 0.0) > 0.0, g[0] * svo.unpack(me) * x.log(),
                                           0.0);
                         return TensorList{to_input(gx, sa, da), to_input(gy, sb, db)};
                       });
      break;
    }
    case Bin::Max:
    case Bin::Min: {
      bool is_max = op == Bin::Max;
      node = make_node(is_max ? "MaximumBackward0" : "MinimumBackward0", {&a, &b},
                       [=, sva = SavedTensor(a), svb = SavedTensor(b)](autograd::Node& self, TensorList&& g) {
                         auto me = autograd::running_node(self);
                         Tensor x = sva.unpack(me), y = svb.unpack(me);
                         Tensor half = g[0] * 0.5;
                         Tensor x_wins = is_max ? x > y : x < y;
                         Tensor tie = x == y;
                         Tensor gx = where(tie, half, where(x_wins, g[0], 0.0));
                         Tensor gy = where(tie, half, where(x_wins, 0.0, g[0]));
                         return TensorList{to_input(gx, sa, da), to_input(gy, sb, db)};
                       });
      break;
    }
  }
  set_history(out, std::move(node));
  return out;
}

// ---- tensor (op) scalar ----

Tensor scalar_op(const Tensor& a, double s, ScalarOp op, const char* name) {
  detail::check_defined(a, name);
  Dtype dtype = detail::scalar_result_type(a.dtype(), s);
  if ((op == ScalarOp::Div || op == ScalarOp::RDiv) && !is_floating_point(dtype)) dtype = kFloat32;
  if (op == ScalarOp::Pow && !is_floating_point(dtype) && s < 0)
    NNKIT_CHECK(false, "[pow] integers to negative integer powers are not allowed");
  Tensor converted_a;
  const Tensor& ca = detail::as_dtype(a, dtype, converted_a);
  Tensor out = detail::empty_contig(a.sizes(), dtype, a.device());
  if (dtype == kBool) detail::throw_unsupported_dtype(name, dtype, detail::kNumericTypes);
  detail::backend(out).scalar(out, ca, op, s);
  if (!needs_grad(a)) return out;
  Dtype da = a.dtype();
  std::shared_ptr<autograd::Node> node;
  switch (op) {
    case ScalarOp::Add:
      node = make_node("AddBackward0", {&a}, [da](autograd::Node&, TensorList&& g) { return TensorList{g[0].to(da)}; });
      break;
    case ScalarOp::Mul:
      node = make_node("MulBackward0", {&a}, [da, s](autograd::Node&, TensorList&& g) {
        return TensorList{(g[0] * s).to(da)};
      });
      break;
    case ScalarOp::Div:
      node = make_node("DivBackward0", {&a}, [da, s](autograd::Node&, TensorList&& g) {
        return TensorList{(g[0] / s).to(da)};
      });
      break;
    case ScalarOp::RDiv:
      node = make_node("DivBackward0", {&a}, [da, s, so = SavedTensor(out, true)](autograd::Node& self,
                                                                                  TensorList&& g) {
        Tensor o = so.unpack(autograd::running_node(self));
        return TensorList{(-g[0] * o * o / s).to(da)};
      });
      break;
    case ScalarOp::Pow:
      node = make_node("PowBackward0", {&a}, [da, s, sa = SavedTensor(a)](autograd::Node& self, TensorList&& g) {
        if (s == 0) return TensorList{zeros_like(g[0], {.dtype = da})};
        Tensor x = sa.unpack(autograd::running_node(self));
        Tensor d = s == 2 ? x * 2.0 : (s == 1 ? ones_like(x) : pow(x, s - 1) * s);
        return TensorList{(g[0] * d).to(da)};
      });
      break;
  }
  set_history(out, std::move(node));
  return out;
}

// ---- unary (the rows of src/ops/unary_ops.h) ----

}  // namespace

namespace detail {
// dReLU: g where the output is positive, else 0 (NaN outputs pass no gradient, like PyTorch's
// threshold_backward). One kernel pass instead of a comparison, a bool tensor and a where with
// a broadcast zero, unless the gradient itself needs a graph (double backward).
Tensor relu_backward(const Tensor& g, const Tensor& out) {
  if (needs_grad(g) || g.dtype() != out.dtype() || g.sizes() != out.sizes() || g.device() != out.device())
    return where(out > 0.0, g, 0.0);
  Tensor res = detail::empty_contig(g.sizes(), g.dtype(), g.device());
  detail::backend(res).relu_backward(res, out, g);
  return res;
}

// d/dx x*Phi(x) = Phi(x) + x*phi(x)
Tensor gelu_backward(const Tensor& g, const Tensor& x) {
  constexpr double kAlpha = 0.39894228040143267794;  // 1/sqrt(2*pi)
  Tensor cdf = (1.0 + (x * 0.70710678118654752440).erf()) * 0.5;
  Tensor pdf = (x * x * -0.5).exp() * kAlpha;
  return g * (cdf + x * pdf);
}

Tensor gelu_tanh_backward(const Tensor& g, const Tensor& x) {
  constexpr double kBeta = 0.7978845608028654, kKappa = 0.044715;
  Tensor x_sq = x * x;
  Tensor inner = (x + x_sq * x * kKappa) * kBeta;
  Tensor t = inner.tanh();
  Tensor left = x * 0.5, right = t + 1.0;
  Tensor left_d = right * 0.5;
  Tensor tanh_d = 1.0 - t * t;
  Tensor inner_d = (x_sq * (3.0 * kKappa) + 1.0) * kBeta;
  return g * (left_d + left * tanh_d * inner_d);
}
}  // namespace detail

namespace {

using detail::UnDtypes;
using detail::UnSaves;

struct UnInfo {
  const char* name;
  const char* node;
  bool float_only;  // integer inputs are computed in float32, as in PyTorch
  bool saves_x, saves_out;
};

// The rows of NNKIT_UNARY_OPS as data.
const UnInfo& un_info(Un op) {
#define NNKIT_UN_INFO_(E, fn, api, node, dt, sv, ...)                                                      \
  UnInfo{#fn, node, UnDtypes::dt == UnDtypes::Float,                             \
         UnSaves::sv == UnSaves::Input || UnSaves::sv == UnSaves::Both,                                          \
         UnSaves::sv == UnSaves::Output || UnSaves::sv == UnSaves::Both},
  static const UnInfo table[] = {NNKIT_UNARY_OPS(NNKIT_UN_INFO_)};
#undef NNKIT_UN_INFO_
  return table[static_cast<int>(op)];
}

Tensor unary_backward(Un op, const Tensor& g, const Tensor& x, const Tensor& out) {
  (void)x;
  (void)out;
  switch (op) {
#define NNKIT_UN_GRAD_(E, fn, api, node, dt, sv, value, grad) \
  case Un::E: return grad;
    NNKIT_UNARY_OPS(NNKIT_UN_GRAD_)
#undef NNKIT_UN_GRAD_
  }
  return {};
}

Tensor unary(const Tensor& x_in, Un op) {
  const UnInfo& info = un_info(op);
  detail::check_defined(x_in, info.name);
  Tensor x = x_in;
  if (info.float_only && !x.is_floating_point()) x = x.to(kFloat32);
  if (x.dtype() == kBool) detail::throw_unsupported_dtype(info.name, kBool, detail::kNumericTypes);
  Tensor out = detail::empty_contig(x.sizes(), x.dtype(), x.device());
  detail::backend(out).unary(out, x, op);
  if (!needs_grad(x)) return out;
  auto node = make_node(info.node, {&x},
                        [op, sx = SavedTensor(info.saves_x ? x : Tensor()),
                         so = SavedTensor(info.saves_out ? out : Tensor(), true)](autograd::Node& self, TensorList&& g) {
                          auto me = autograd::running_node(self);
                          return TensorList{unary_backward(op, g[0], sx.unpack(me), so.unpack(me))};
                        });
  set_history(out, std::move(node));
  return out;
}

// ---- comparisons ----

Tensor compare(const Tensor& a, const Tensor& b, Cmp op, const char* name) {
  detail::check_defined(a, name, "first operand");
  detail::check_defined(b, name, "second operand");
  detail::check_same_device(a, b, name);
  Shape shape = broadcast_shapes(a.sizes(), b.sizes(), name);
  Dtype dtype = promote_types(a.dtype(), b.dtype());
  Tensor converted_a;
  const Tensor& ca = detail::as_dtype(a, dtype, converted_a);
  Tensor converted_b;
  const Tensor& cb = detail::as_dtype(b, dtype, converted_b);
  Tensor out = detail::empty_contig(shape, kBool, a.device());
  detail::backend(out).compare(out, ca, cb, op);
  return out;
}

Tensor wrap_scalar(const Tensor& like, double v) {
  Dtype d = is_floating_point(like.dtype()) ? like.dtype() : (v == double(int64_t(v)) ? like.dtype() : kFloat64);
  if (d == kBool && v != 0 && v != 1) d = kInt64;
  return scalar_tensor(v, {.dtype = d, .device = like.device()});
}

// In-place: self = op(self, other). With autograd, computes out of place and copies back, so
// the graph sees the change (and PyTorch's leaf/view checks apply).
template <typename Compute, typename Direct>
Tensor& inplace(Tensor& self, const Tensor* other, const char* name, Compute compute, Direct direct) {
  detail::check_defined(self, name);
  if (other) {
    detail::check_defined(*other, name, "other");
    Shape b = broadcast_shapes(self.sizes(), other->sizes(), name);
    NNKIT_CHECK(b == self.sizes(), "[", name, "] output with shape ", self.sizes(),
                " doesn't match the broadcast shape ", b);
  }
  autograd::check_inplace(self, name);
  if (needs_grad(self) || (other && needs_grad(*other))) {
    Tensor r = compute(self.clone());
    self.copy_(r);
    return self;
  }
  direct();
  self.impl()->storage()->bump_version();
  return self;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b, double alpha) { return binary(a, b, Bin::Add, alpha); }
Tensor sub(const Tensor& a, const Tensor& b, double alpha) { return binary(a, b, Bin::Sub, alpha); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(a, b, Bin::Mul); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(a, b, Bin::Div); }
Tensor pow(const Tensor& a, const Tensor& b) { return binary(a, b, Bin::Pow); }
Tensor pow(const Tensor& a, double e) { return scalar_op(a, e, ScalarOp::Pow, "pow"); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary(a, b, Bin::Max); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary(a, b, Bin::Min); }
Tensor operator/(double a, const Tensor& b) { return scalar_op(b, a, ScalarOp::RDiv, "div"); }

Tensor Tensor::add(const Tensor& o, double alpha) const { return nnkit::add(*this, o, alpha); }
Tensor Tensor::add(double o) const { return scalar_op(*this, o, ScalarOp::Add, "add"); }
Tensor Tensor::sub(const Tensor& o, double alpha) const { return nnkit::sub(*this, o, alpha); }
Tensor Tensor::sub(double o) const { return scalar_op(*this, -o, ScalarOp::Add, "sub"); }
Tensor Tensor::mul(const Tensor& o) const { return nnkit::mul(*this, o); }
Tensor Tensor::mul(double o) const { return scalar_op(*this, o, ScalarOp::Mul, "mul"); }
Tensor Tensor::div(const Tensor& o) const { return nnkit::div(*this, o); }
Tensor Tensor::div(double o) const { return scalar_op(*this, o, ScalarOp::Div, "div"); }
Tensor Tensor::pow(double e) const { return nnkit::pow(*this, e); }
Tensor Tensor::pow(const Tensor& e) const { return nnkit::pow(*this, e); }
Tensor Tensor::maximum(const Tensor& o) const { return nnkit::maximum(*this, o); }
Tensor Tensor::minimum(const Tensor& o) const { return nnkit::minimum(*this, o); }

// nnkit::fn(x) and Tensor::fn() for every row with a public function.
#define NNKIT_UN_DEFINE_(E, fn, api, ...) NNKIT_UN_DEFINE_##api(E, fn)
#define NNKIT_UN_DEFINE_Hand(E, fn)
#define NNKIT_UN_DEFINE_Public(E, fn)                    \
  Tensor fn(const Tensor& x) { return unary(x, Un::E); } \
  Tensor Tensor::fn() const { return unary(*this, Un::E); }
NNKIT_UNARY_OPS(NNKIT_UN_DEFINE_)
#undef NNKIT_UN_DEFINE_Public
#undef NNKIT_UN_DEFINE_Hand
#undef NNKIT_UN_DEFINE_

Tensor gelu(const Tensor& x, std::string_view approximate) {
  NNKIT_CHECK(approximate == "none" || approximate == "tanh", "[gelu] approximate must be \"none\" or \"tanh\", got \"",
              approximate, "\"");
  return unary(x, approximate == "tanh" ? Un::GeluTanh : Un::Gelu);
}

Tensor Tensor::gelu(std::string_view approximate) const { return nnkit::gelu(*this, approximate); }

Tensor eq(const Tensor& a, const Tensor& b) { return compare(a, b, Cmp::Eq, "eq"); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(a, b, Cmp::Ne, "ne"); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(a, b, Cmp::Lt, "lt"); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(a, b, Cmp::Le, "le"); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(a, b, Cmp::Gt, "gt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(a, b, Cmp::Ge, "ge"); }
Tensor Tensor::eq(const Tensor& o) const { return nnkit::eq(*this, o); }
Tensor Tensor::ne(const Tensor& o) const { return nnkit::ne(*this, o); }
Tensor Tensor::lt(const Tensor& o) const { return nnkit::lt(*this, o); }
Tensor Tensor::le(const Tensor& o) const { return nnkit::le(*this, o); }
Tensor Tensor::gt(const Tensor& o) const { return nnkit::gt(*this, o); }
Tensor Tensor::ge(const Tensor& o) const { return nnkit::ge(*this, o); }
Tensor Tensor::eq(double o) const { return nnkit::eq(*this, wrap_scalar(*this, o)); }
Tensor Tensor::ne(double o) const { return nnkit::ne(*this, wrap_scalar(*this, o)); }
Tensor Tensor::lt(double o) const { return nnkit::lt(*this, wrap_scalar(*this, o)); }
Tensor Tensor::le(double o) const { return nnkit::le(*this, wrap_scalar(*this, o)); }
Tensor Tensor::gt(double o) const { return nnkit::gt(*this, wrap_scalar(*this, o)); }
Tensor Tensor::ge(double o) const { return nnkit::ge(*this, wrap_scalar(*this, o)); }
Tensor Tensor::logical_not() const { return nnkit::eq(*this, scalar_tensor(0, {.dtype = dtype(), .device = device()})); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::check_defined(cond, "where", "condition");
  detail::check_defined(a, "where", "first operand");
  detail::check_defined(b, "where", "second operand");
  NNKIT_CHECK(cond.dtype() == kBool, "[where] condition must be a bool tensor, got ", cond.dtype());
  detail::check_same_device(cond, a, "where");
  detail::check_same_device(a, b, "where");
  Shape shape = broadcast_shapes(broadcast_shapes(cond.sizes(), a.sizes(), "where"), b.sizes(), "where");
  Dtype dtype = promote_types(a.dtype(), b.dtype());
  Tensor converted_a;
  const Tensor& ca = detail::as_dtype(a, dtype, converted_a);
  Tensor converted_b;
  const Tensor& cb = detail::as_dtype(b, dtype, converted_b);
  Tensor out = detail::empty_contig(shape, dtype, a.device());
  detail::backend(out).where(out, cond, ca, cb);
  if (!needs_grad(a, b)) return out;
  Shape sa = a.sizes(), sb = b.sizes();
  Dtype da = a.dtype(), db = b.dtype();
  auto node = make_node("WhereBackward0", {&a, &b}, [=, c = cond.detach()](autograd::Node&, TensorList&& g) {
    return TensorList{to_input(where(c, g[0], 0.0), sa, da), to_input(where(c, 0.0, g[0]), sb, db)};
  });
  set_history(out, std::move(node));
  return out;
}
Tensor where(const Tensor& cond, const Tensor& a, double b) { return where(cond, a, wrap_scalar(a, b)); }
Tensor where(const Tensor& cond, double a, const Tensor& b) { return where(cond, wrap_scalar(b, a), b); }

Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi) {
  detail::check_defined(x, "clamp");
  NNKIT_CHECK(lo || hi, "[clamp] at least one of min and max must be given");
  Dtype dtype = x.dtype();
  if (!is_floating_point(dtype) && ((lo && *lo != double(int64_t(*lo))) || (hi && *hi != double(int64_t(*hi)))))
    dtype = kFloat32;
  Tensor converted_x;
  const Tensor& cx = detail::as_dtype(x, dtype, converted_x);
  Tensor out = detail::empty_contig(x.sizes(), dtype, x.device());
  if (dtype == kBool) detail::throw_unsupported_dtype("clamp", dtype, detail::kNumericTypes);
  detail::backend(out).clamp(out, cx, lo.has_value(), lo.value_or(0), hi.has_value(), hi.value_or(0));
  if (!needs_grad(x)) return out;
  auto node = make_node("ClampBackward1", {&x}, [lo, hi, sx = SavedTensor(x)](autograd::Node& self, TensorList&& g) {
    Tensor v = sx.unpack(autograd::running_node(self));
    Tensor mask = ones_like(v, {.dtype = kBool});
    if (lo) mask = (mask.to(kInt64) + (v >= *lo).to(kInt64)) > 1.0;
    if (hi) mask = (mask.to(kInt64) + (v <= *hi).to(kInt64)) > 1.0;
    return TensorList{where(mask, g[0], 0.0)};
  });
  set_history(out, std::move(node));
  return out;
}
Tensor Tensor::clamp(std::optional<double> lo, std::optional<double> hi) const { return nnkit::clamp(*this, lo, hi); }

// ---- in-place forms ----
namespace {
// self = self (op) other straight into self's memory, when that is safe and simple: one device,
// contiguous self (no element written twice), other of the same dtype, and other either not
// sharing self's storage or being exactly self's elements. Otherwise (false) the caller
// computes out of place and copies. This is gradient accumulation and every optimizer step.
bool binary_into_self(const Tensor& self, const Tensor& other, Bin op, double alpha) {
  if (self.device() != other.device() || !self.is_contiguous() || self.dtype() != other.dtype() ||
      self.dtype() == kBool || binary_result_type(self, other, op) != self.dtype())
    return false;
  if (other.is_alias_of(self) && !(other.raw_data() == self.raw_data() && other.sizes() == self.sizes() &&
                                   other.strides() == self.strides()))
    return false;
  detail::backend(self).binary(self, self, other, op, alpha);
  return true;
}
template <typename Compute>
Tensor& binary_inplace(Tensor& self, const Tensor& o, Bin op, double alpha, const char* name, Compute compute) {
  return inplace(self, &o, name, compute, [&] {
    if (!binary_into_self(self, o, op, alpha))
      detail::copy_kernel(self, binary(self.detach(), o.detach(), op, alpha));
  });
}
}  // namespace

Tensor& Tensor::add_(const Tensor& o, double alpha) {
  return binary_inplace(*this, o, Bin::Add, alpha, "add_", [&](const Tensor& s) { return nnkit::add(s, o, alpha); });
}
Tensor& Tensor::sub_(const Tensor& o, double alpha) {
  return binary_inplace(*this, o, Bin::Sub, alpha, "sub_", [&](const Tensor& s) { return nnkit::sub(s, o, alpha); });
}
Tensor& Tensor::mul_(const Tensor& o) {
  return binary_inplace(*this, o, Bin::Mul, 1, "mul_", [&](const Tensor& s) { return nnkit::mul(s, o); });
}
Tensor& Tensor::div_(const Tensor& o) {
  return binary_inplace(*this, o, Bin::Div, 1, "div_", [&](const Tensor& s) { return nnkit::div(s, o); });
}

namespace {
// Direct in-place scalar kernels on self's own memory (no temporary), on any device.
void scalar_inplace(Tensor& self, const char* name, ScalarOp op, double v) {
  if (self.dtype() == kBool) detail::throw_unsupported_dtype(name, self.dtype(), detail::kNumericTypes);
  detail::backend(self).scalar(self, self, op, v);
}
}  // namespace

Tensor& Tensor::add_(double v) {
  return inplace(*this, nullptr, "add_", [&](const Tensor& s) { return s.add(v); }, [&] {
    scalar_inplace(*this, "add_", ScalarOp::Add, v);
  });
}
Tensor& Tensor::sub_(double v) { return add_(-v); }
Tensor& Tensor::mul_(double v) {
  return inplace(*this, nullptr, "mul_", [&](const Tensor& s) { return s.mul(v); }, [&] {
    scalar_inplace(*this, "mul_", ScalarOp::Mul, v);
  });
}
Tensor& Tensor::div_(double v) {
  NNKIT_CHECK(is_floating_point(), "[div_] in-place true division needs a floating-point tensor, got ", dtype());
  return inplace(*this, nullptr, "div_", [&](const Tensor& s) { return s.div(v); }, [&] {
    scalar_inplace(*this, "div_", ScalarOp::Div, v);
  });
}
Tensor& Tensor::clamp_(std::optional<double> lo, std::optional<double> hi) {
  return inplace(*this, nullptr, "clamp_", [&](const Tensor& s) { return s.clamp(lo, hi); },
                 [&] { detail::copy_kernel(*this, this->detach().clamp(lo, hi)); });
}
Tensor& Tensor::relu_() {
  return inplace(*this, nullptr, "relu_", [&](const Tensor& s) { return s.relu(); }, [&] {
    if (dtype() == kBool) detail::throw_unsupported_dtype("relu_", dtype(), detail::kNumericTypes);
    detail::backend(*this).unary(*this, *this, Un::Relu);
  });
}

}  // namespace nnkit
