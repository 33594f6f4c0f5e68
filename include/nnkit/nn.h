#pragma once
// Everything under nnkit::nn.
#include "nnkit/nn/activation.h"
#include "nnkit/nn/container.h"
#include "nnkit/nn/feature_extractor.h"
#include "nnkit/nn/functional.h"
#include "nnkit/nn/init.h"
#include "nnkit/nn/layers.h"
#include "nnkit/nn/linear.h"
#include "nnkit/nn/module.h"
#include "nnkit/nn/more_layers.h"
