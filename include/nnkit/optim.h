#pragma once
// Everything under nnkit::optim: optimizers, gradient clipping, learning-rate schedulers.
#include "nnkit/optim/lr_scheduler.h"
#include "nnkit/optim/optimizer.h"
#include "nnkit/optim/sgd.h"
