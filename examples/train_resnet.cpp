// A small ResNet (the guide's block, stacked) trained on Fashion-MNIST from Debian's
// dataset-fashion-mnist package (IDX files, gzip-compressed). Shows a data loader with
// shuffling, batching and normalization; a progress bar with loss, accuracy and throughput;
// a validation pass in eval mode; a checkpoint (model + optimizer + schedule) every epoch and
// resuming from one with identical results; a CSV of the curves and an SVG plot of them.
//
//   train_resnet [--data DIR] [--epochs N] [--batch N] [--lr X] [--limit-train N]
//                [--limit-test N] [--out DIR] [--resume CHECKPOINT_PREFIX] [--device cpu|cuda]
//                [--seed N] [--check] [--verify-resume]
//
// --check: exit non-zero unless the training loss fell and validation accuracy is well above
// chance. --verify-resume: after training, re-run the last epoch from the previous epoch's
// checkpoint and require bit-identical parameters.
#include <nnkit/nnkit.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using nnkit::Tensor;
namespace nn = nnkit::nn;
namespace optim = nnkit::optim;

// ---------------------------------------------------------------- data
struct Dataset {
  std::vector<uint8_t> images;  // n * 28 * 28
  std::vector<int64_t> labels;
  int64_t n = 0;
};

std::vector<uint8_t> read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f)
    throw nnkit::Error("[train_resnet] cannot open '" + path +
                       "': install Debian's dataset-fashion-mnist package or pass --data DIR");
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int got;
  while ((got = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + got);
  int err = 0;
  const char* msg = gzerror(f, &err);
  gzclose(f);
  if (got < 0 || (err != Z_OK && err != Z_STREAM_END))
    throw nnkit::Error("[train_resnet] '" + path + "' is not a valid gzip file: " + msg);
  return out;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return uint32_t(b[at]) << 24 | uint32_t(b[at + 1]) << 16 | uint32_t(b[at + 2]) << 8 | uint32_t(b[at + 3]);
}

// IDX format: magic 0x00000803 (images: count, rows, cols) or 0x00000801 (labels: count).
Dataset load_split(const std::string& dir, const std::string& prefix, int64_t limit) {
  const std::string ip = dir + "/" + prefix + "-images-idx3-ubyte.gz", lp = dir + "/" + prefix + "-labels-idx1-ubyte.gz";
  std::vector<uint8_t> im = read_gz(ip), lb = read_gz(lp);
  if (im.size() < 16 || be32(im, 0) != 0x803) throw nnkit::Error("[train_resnet] '" + ip + "' is not an IDX image file");
  if (lb.size() < 8 || be32(lb, 0) != 0x801) throw nnkit::Error("[train_resnet] '" + lp + "' is not an IDX label file");
  const int64_t n = be32(im, 4), rows = be32(im, 8), cols = be32(im, 12);
  if (rows != 28 || cols != 28 || int64_t(be32(lb, 4)) != n || int64_t(im.size()) != 16 + n * 784 ||
      int64_t(lb.size()) != 8 + n)
    throw nnkit::Error("[train_resnet] '" + ip + "' and '" + lp + "' are truncated or do not match (" +
                       std::to_string(n) + " images of " + std::to_string(rows) + "x" + std::to_string(cols) + ")");
  Dataset d;
  d.n = limit > 0 ? std::min(n, limit) : n;
  d.images.assign(im.begin() + 16, im.begin() + 16 + d.n * 784);
  for (int64_t i = 0; i < d.n; ++i) {
    if (lb[size_t(8 + i)] > 9) throw nnkit::Error("[train_resnet] label out of range in '" + lp + "'");
    d.labels.push_back(lb[size_t(8 + i)]);
  }
  return d;
}

// Batches of normalized images [B, 1, 28, 28] and labels [B]; the order of an epoch depends
// only on (seed, epoch), so a resumed run sees exactly the batches it would have seen.
class Loader {
 public:
  Loader(const Dataset& d, int64_t batch, bool shuffle, uint64_t seed) : d_(d), batch_(batch), shuffle_(shuffle), seed_(seed) {}
  void start_epoch(int64_t epoch) {
    order_.resize(size_t(d_.n));
    std::iota(order_.begin(), order_.end(), int64_t(0));
    if (shuffle_) {
      std::mt19937_64 rng(seed_ * 1000003 + uint64_t(epoch));
      std::shuffle(order_.begin(), order_.end(), rng);
    }
    pos_ = 0;
  }
  bool next(Tensor& x, Tensor& y) {
    if (pos_ >= d_.n) return false;
    const int64_t b = std::min(batch_, d_.n - pos_);
    std::vector<float> px(static_cast<size_t>(b * 784));
    std::vector<int64_t> py(static_cast<size_t>(b));
    for (int64_t i = 0; i < b; ++i) {
      const int64_t k = order_[size_t(pos_ + i)];
      for (int64_t p = 0; p < 784; ++p)  // Fashion-MNIST mean 0.2860, std 0.3530
        px[size_t(i * 784 + p)] = (float(d_.images[size_t(k * 784 + p)]) / 255.f - 0.2860f) / 0.3530f;
      py[size_t(i)] = d_.labels[size_t(k)];
    }
    x = nnkit::from_vector(px, nnkit::Shape{b, 1, 28, 28});
    y = nnkit::from_vector(py);
    pos_ += b;
    return true;
  }
  int64_t batches() const { return (d_.n + batch_ - 1) / batch_; }

 private:
  const Dataset& d_;
  int64_t batch_;
  bool shuffle_;
  uint64_t seed_;
  std::vector<int64_t> order_;
  int64_t pos_ = 0;
};

// ---------------------------------------------------------------- model

nn::Ptr<nn::Sequential> small_resnet() {
  return nn::make<nn::Sequential>(std::vector<std::pair<std::string, nn::Ptr<>>>{
      {"stem", nn::make<nn::Sequential>(
                   nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 1, .out_channels = 16, .kernel_size = 3,
                                                            .padding = 1, .bias = false}),
                   nn::make<nn::BatchNorm2d>(16), nn::make<nn::ReLU>())},
      {"layer1", nn::make<nnkit::models::BasicBlock>(16, 16, 1)},
      {"layer2", nn::make<nnkit::models::BasicBlock>(16, 32, 2)},
      {"layer3", nn::make<nnkit::models::BasicBlock>(32, 64, 2)},
      {"pool", nn::make<nn::AdaptiveAvgPool2d>(1)},
      {"flatten", nn::make<nn::Flatten>()},
      {"fc", nn::make<nn::Linear>(64, 10)}});
}

// ---------------------------------------------------------------- progress, CSV, SVG
class Progress {
 public:
  Progress(std::string title, int64_t total) : title_(std::move(title)), total_(total), tty_(isatty(2)) {}
  void update(int64_t done, double loss, double acc, double img_per_s) {
    if (!tty_) return;
    const int width = 30, filled = int(double(width) * double(done) / double(total_));
    std::fprintf(stderr, "\r%s [%s%s] %3d%% loss %.4f acc %5.1f%% %6.0f img/s", title_.c_str(),
                 std::string(size_t(filled), '=').c_str(), std::string(size_t(width - filled), ' ').c_str(),
                 int(100 * done / total_), loss, 100 * acc, img_per_s);
    std::fflush(stderr);
  }
  void finish() {
    if (tty_) std::fprintf(stderr, "\n");
  }

 private:
  std::string title_;
  int64_t total_;
  bool tty_;
};

struct EpochRow {
  int64_t epoch;
  double train_loss, train_acc, val_loss, val_acc, seconds;
};

void write_csv(const std::string& path, const std::vector<EpochRow>& rows) {
  std::ofstream f(path);
  f << "epoch,train_loss,train_acc,val_loss,val_acc,seconds\n";
  for (auto& r : rows)
    f << r.epoch << "," << r.train_loss << "," << r.train_acc << "," << r.val_loss << "," << r.val_acc << "," << r.seconds
      << "\n";
}

// Two panels: losses (train, validation) and accuracies, as polylines.
void write_svg(const std::string& path, const std::vector<EpochRow>& rows) {
  std::ofstream f(path);
  const int W = 640, H = 300, pad = 40, pw = (W - 3 * pad) / 2, ph = H - 2 * pad;
  f << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' font-family='sans-serif' font-size='11'>\n"
    << "<rect width='100%' height='100%' fill='white'/>\n";
  auto panel = [&](int x0, const char* title, auto get_a, auto get_b, double lo, double hi) {
    f << "<text x='" << x0 << "' y='" << pad - 10 << "'>" << title << " (blue: train, orange: validation)</text>\n"
      << "<rect x='" << x0 << "' y='" << pad << "' width='" << pw << "' height='" << ph << "' fill='none' stroke='#999'/>\n";
    f << "<text x='" << x0 - 5 << "' y='" << pad + 4 << "' text-anchor='end'>" << hi << "</text>"
      << "<text x='" << x0 - 5 << "' y='" << pad + ph << "' text-anchor='end'>" << lo << "</text>\n";
    for (int s = 0; s < 2; ++s) {
      f << "<polyline fill='none' stroke='" << (s ? "#e67e22" : "#2e86de") << "' stroke-width='2' points='";
      for (size_t i = 0; i < rows.size(); ++i) {
        const double v = s ? get_b(rows[i]) : get_a(rows[i]);
        const double x = x0 + (rows.size() > 1 ? double(pw) * double(i) / double(rows.size() - 1) : pw / 2.0);
        const double y = pad + ph * (1 - (v - lo) / std::max(hi - lo, 1e-12));
        f << x << "," << y << " ";
      }
      f << "'/>\n";
    }
  };
  double max_loss = 0;
  for (auto& r : rows) max_loss = std::max({max_loss, r.train_loss, r.val_loss});
  panel(pad, "loss", [](const EpochRow& r) { return r.train_loss; }, [](const EpochRow& r) { return r.val_loss; }, 0.0,
        max_loss);
  panel(2 * pad + pw, "accuracy", [](const EpochRow& r) { return r.train_acc; }, [](const EpochRow& r) { return r.val_acc; },
        0.0, 1.0);
  f << "</svg>\n";
}

// ---------------------------------------------------------------- training
struct Config {
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string out = "train_resnet_out";
  std::string resume;
  std::string device = "cpu";
  int64_t epochs = 2, batch = 128, limit_train = 0, limit_test = 0;  // 2 epochs: 90.6% (docs/performance.md)
  double lr = 0.1;
  uint64_t seed = 0;
  bool check = false, verify_resume = false;
};

struct Trainer {
  const Config& cfg;
  const Dataset& train;
  const Dataset& test;
  nn::Ptr<nn::Sequential> model = small_resnet();
  optim::SGD opt;
  optim::OneCycleLR schedule;
  int64_t epoch = 0;  // epochs completed

  Trainer(const Config& c, const Dataset& tr, const Dataset& te)
      : cfg(c), train(tr), test(te), opt(model->parameters(), {.lr = c.lr, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true}),
        schedule(opt, {.max_lr = c.lr, .total_steps = c.epochs * ((tr.n + c.batch - 1) / c.batch), .cycle_momentum = false}) {}

  std::string checkpoint(int64_t e) const { return cfg.out + "/checkpoint_epoch" + std::to_string(e); }

  void save(int64_t e) {
    nnkit::save(model->state_dict(), checkpoint(e) + "_model.safetensors");
    nnkit::StateDict o = opt.state_dict();
    o.insert("schedule.last_epoch", nnkit::full({}, double(schedule.last_epoch()), {.dtype = nnkit::kFloat64}));
    o.insert("epoch", nnkit::full({}, double(e), {.dtype = nnkit::kFloat64}));
    nnkit::save(o, checkpoint(e) + "_optim.safetensors");
  }

  void resume(const std::string& prefix) {
    model->load_state_dict(nnkit::load(prefix + "_model.safetensors"));
    nnkit::StateDict o = nnkit::load(prefix + "_optim.safetensors");
    const int64_t steps = int64_t(o.erase("schedule.last_epoch").item<double>());
    epoch = int64_t(o.erase("epoch").item<double>());
    opt.load_state_dict(o);
    while (schedule.last_epoch() < steps) schedule.step();
  }

  EpochRow run_epoch() {
    const auto t0 = std::chrono::steady_clock::now();
    Loader loader(train, cfg.batch, true, cfg.seed);
    loader.start_epoch(epoch);
    model->train();
    Progress bar("epoch " + std::to_string(epoch + 1) + " train", loader.batches());
    Tensor x, y;
    double loss_sum = 0, correct = 0, seen = 0;
    int64_t b = 0;
    while (loader.next(x, y)) {
      opt.zero_grad();
      Tensor logits = model(x);
      Tensor loss = nn::functional::cross_entropy(logits, y);
      loss.backward();
      opt.step();
      schedule.step();
      const double n = double(y.numel());
      loss_sum += loss.item<double>() * n;
      correct += (logits.argmax(1) == y).to(nnkit::kFloat32).sum().item<double>();
      seen += n;
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      bar.update(++b, loss_sum / seen, correct / seen, seen / secs);
    }
    bar.finish();
    EpochRow row{epoch + 1, loss_sum / seen, correct / seen, 0, 0, 0};
    // Validation in eval mode: running statistics, no graph.
    model->eval();
    nnkit::NoGradGuard no_grad;
    Loader val(test, 512, false, 0);
    val.start_epoch(0);
    double vloss = 0, vcorrect = 0, vseen = 0;
    while (val.next(x, y)) {
      Tensor logits = model(x);
      vloss += nn::functional::cross_entropy(logits, y, {.reduction = nn::functional::Reduction::Sum}).item<double>();
      vcorrect += (logits.argmax(1) == y).to(nnkit::kFloat32).sum().item<double>();
      vseen += double(y.numel());
    }
    row.val_loss = vloss / vseen;
    row.val_acc = vcorrect / vseen;
    row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++epoch;
    return row;
  }
};

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw nnkit::Error("[train_resnet] " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--data") cfg.data = value();
    else if (a == "--out") cfg.out = value();
    else if (a == "--resume") cfg.resume = value();
    else if (a == "--device") cfg.device = value();
    else if (a == "--epochs") cfg.epochs = std::stoll(value());
    else if (a == "--batch") cfg.batch = std::stoll(value());
    else if (a == "--limit-train") cfg.limit_train = std::stoll(value());
    else if (a == "--limit-test") cfg.limit_test = std::stoll(value());
    else if (a == "--lr") cfg.lr = std::stod(value());
    else if (a == "--seed") cfg.seed = std::stoull(value());
    else if (a == "--check") cfg.check = true;
    else if (a == "--verify-resume") cfg.verify_resume = true;
    else {
      std::cerr << "unknown argument '" << a << "'; see the comment at the top of train_resnet.cpp\n";
      return 2;
    }
  }
  try {
    if (cfg.device != "cpu") {
      if (cfg.device != "cuda") throw nnkit::Error("[train_resnet] --device must be cpu or cuda");
      if (!nnkit::cuda::is_available())
        throw nnkit::Error("[train_resnet] --device cuda: this nnkit build has no CUDA backend or no GPU is visible");
    }
    std::filesystem::create_directories(cfg.out);
    Dataset train = load_split(cfg.data, "train", cfg.limit_train);
    Dataset test = load_split(cfg.data, "t10k", cfg.limit_test);
    std::printf("Fashion-MNIST: %lld training and %lld test images; %lld epochs of batch %lld\n", (long long)train.n,
                (long long)test.n, (long long)cfg.epochs, (long long)cfg.batch);

    nnkit::manual_seed(cfg.seed);
    Trainer t(cfg, train, test);
    if (!cfg.resume.empty()) {
      t.resume(cfg.resume);
      std::printf("resumed from %s after epoch %lld\n", cfg.resume.c_str(), (long long)t.epoch);
    }
    std::vector<EpochRow> rows;
    std::printf("| epoch | train loss | train acc | val loss | val acc | seconds |\n|---|---|---|---|---|---|\n");
    while (t.epoch < cfg.epochs) {
      EpochRow r = t.run_epoch();
      rows.push_back(r);
      t.save(t.epoch);
      std::printf("| %lld | %.4f | %.2f%% | %.4f | %.2f%% | %.1f |\n", (long long)r.epoch, r.train_loss, 100 * r.train_acc,
                  r.val_loss, 100 * r.val_acc, r.seconds);
      std::fflush(stdout);
      write_csv(cfg.out + "/curves.csv", rows);
      write_svg(cfg.out + "/curves.svg", rows);
    }

    if (cfg.verify_resume && cfg.epochs >= 2) {
      // Re-run the last epoch from the previous epoch's checkpoint: identical parameters.
      nnkit::manual_seed(cfg.seed);
      Trainer again(cfg, train, test);
      again.resume(t.checkpoint(cfg.epochs - 1));
      again.run_epoch();
      for (auto& [k, v] : t.model->state_dict())
        if (!nnkit::equal(v, again.model->state_dict().at(k))) {
          std::printf("resume check FAILED: '%s' differs\n", k.c_str());
          return 3;
        }
      std::printf("resume check: epoch %lld re-run from checkpoint %lld gives identical parameters\n",
                  (long long)cfg.epochs, (long long)(cfg.epochs - 1));
    }
    if (cfg.check && !rows.empty()) {
      const bool fell = rows.back().train_loss < rows.front().train_loss || rows.size() == 1;
      if (!fell || rows.back().val_acc < 0.5) {
        std::printf("check FAILED: loss %.3f -> %.3f, validation accuracy %.1f%%\n", rows.front().train_loss,
                    rows.back().train_loss, 100 * rows.back().val_acc);
        return 4;
      }
      std::printf("check: loss %.3f -> %.3f, validation accuracy %.1f%% (chance: 10%%)\n", rows.front().train_loss,
                  rows.back().train_loss, 100 * rows.back().val_acc);
    }
  } catch (const nnkit::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
