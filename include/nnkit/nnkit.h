#pragma once
// The umbrella header: everything a user of nnkit needs.
#include "nnkit/autograd/grad_mode.h"
#include "nnkit/autograd/gradcheck.h"
#include "nnkit/autograd/node.h"
#include "nnkit/core/device.h"
#include "nnkit/core/dtype.h"
#include "nnkit/core/error.h"
#include "nnkit/core/handle.h"
#include "nnkit/core/shape.h"
#include "nnkit/core/tensor.h"
#include "nnkit/ops.h"
#include "nnkit/nn.h"
#include "nnkit/optim.h"
