#pragma once
// Everything under nnkit::optim.
#include "nnkit/optim/sgd.h"
