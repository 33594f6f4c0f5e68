#pragma once
// Everything under nnkit::nn. The module headers follow torch.nn's files
// (torch/nn/modules/<family>.py): activation, attention, container, conv, dropout, flatten,
// linear, loss, normalization, pooling, sparse.
#include "nnkit/nn/activation.h"
#include "nnkit/nn/attention.h"
#include "nnkit/nn/container.h"
#include "nnkit/nn/conv.h"
#include "nnkit/nn/dropout.h"
#include "nnkit/nn/feature_extractor.h"
#include "nnkit/nn/flatten.h"
#include "nnkit/nn/functional.h"
#include "nnkit/nn/init.h"
#include "nnkit/nn/linear.h"
#include "nnkit/nn/loss.h"
#include "nnkit/nn/module.h"
#include "nnkit/nn/normalization.h"
#include "nnkit/nn/pooling.h"
#include "nnkit/nn/sparse.h"
