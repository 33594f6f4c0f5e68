// Finite-difference gradient checking in float64.
#include "nnkit/autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/function.h"
#include "nnkit/ops.h"

namespace nnkit::autograd {

GradcheckResult gradcheck(const std::function<Tensor(const TensorList&)>& fn, const TensorList& inputs,
                          const GradcheckOptions& opt) {
  for (size_t i = 0; i < inputs.size(); ++i)
    NNKIT_CHECK(!inputs[i].defined() || !inputs[i].requires_grad() || inputs[i].dtype() == kFloat64,
                "[gradcheck] input ", i, " requires grad but is ", inputs[i].dtype(),
                "; gradcheck needs float64 inputs for accurate finite differences");
  Tensor out = fn(inputs);
  NNKIT_CHECK(out.defined(), "[gradcheck] the function returned an undefined tensor");
  // A fixed random projection turns the output into a scalar that depends on every element.
  Tensor proj;
  {
    NoGradGuard g;
    proj = rand(out.sizes(), {.dtype = kFloat64}) + 0.5;
  }
  auto scalar = [&](const TensorList& in) { return (fn(in).to(kFloat64) * proj).sum(); };

  TensorList wrt;
  std::vector<size_t> idx;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad()) {
      wrt.push_back(inputs[i]);
      idx.push_back(i);
    }
  NNKIT_CHECK(!wrt.empty(), "[gradcheck] no input requires grad");
  Tensor s = scalar(inputs);
  TensorList analytical;
  if (s.requires_grad())
    analytical = grad({s}, wrt, {}, false, false, /*allow_unused=*/true);
  else
    analytical.resize(wrt.size());

  for (size_t w = 0; w < wrt.size(); ++w) {
    Tensor x = wrt[w];
    // Perturb a contiguous copy element by element, feeding it in place of the input.
    Tensor base = x.detach().clone();
    Tensor num = zeros(x.sizes(), {.dtype = kFloat64});
    double* pn = num.data_ptr<double>();
    double* pb = base.data_ptr<double>();
    for (int64_t e = 0; e < x.numel(); ++e) {
      double orig = pb[e];
      TensorList in = inputs;
      NoGradGuard ng;
      pb[e] = orig + opt.eps;
      in[idx[w]] = base.clone();
      double fp = scalar(in).item<double>();
      pb[e] = orig - opt.eps;
      in[idx[w]] = base.clone();
      double fm = scalar(in).item<double>();
      pb[e] = orig;
      pn[e] = (fp - fm) / (2 * opt.eps);
    }
    Tensor an = analytical[w].defined() ? analytical[w].detach().to(kFloat64).contiguous() : zeros_like(num);
    const double* pa = an.data_ptr<double>();
    for (int64_t e = 0; e < x.numel(); ++e) {
      if (std::abs(pa[e] - pn[e]) > opt.atol + opt.rtol * std::abs(pn[e]) || std::isnan(pa[e]) != std::isnan(pn[e])) {
        std::ostringstream os;
        os << "[gradcheck] Jacobian mismatch for input " << idx[w] << " (shape " << x.sizes() << "), element " << e
           << ": analytical " << pa[e] << ", numerical " << pn[e];
        return {false, os.str()};
      }
    }
  }
  return {true, {}};
}

}  // namespace nnkit::autograd
