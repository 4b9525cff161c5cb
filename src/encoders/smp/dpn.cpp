// smp's Dual Path Network encoders (dpn68 .. dpn131, Cadene's pretrainedmodels port): blocks that carry
// a residual path and a densely growing path side by side, with their parameter names and smp's
// dilation of the conv4 / conv5 stages.
#include "encoders/smp/common.h"

#include <array>
#include <utility>

namespace smp::smp_encoders::dpn {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

struct DPNSpec {
  bool small;  // dpn68*: 3x3 stem and a quarter of the block widths
  bool b;      // dpn68b: the last 1x1 split into two convs behind a shared norm
  int64_t num_init_features, k_r, groups;
  std::array<int64_t, 4> k_sec;    // blocks per stage
  std::array<int64_t, 4> inc_sec;  // what each block adds to the dense path, per stage
};

// The ported weights' batch norms (MXNet's eps).
nn::BatchNorm2d make_bn(int64_t channels) { return nn::BatchNorm2d(nn::BatchNorm2dOptions(channels).eps(1e-3)); }

// Pre-activation conv: norm, ReLU, conv.
class BnActConvImpl : public nn::Module {
 public:
  BnActConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups, int64_t dilation) {
    bn = register_module("bn", make_bn(in));
    conv = register_module("conv", dilatable_conv(in, out, kernel, stride, dilation, groups));
  }
  torch::Tensor forward(const torch::Tensor& x) { return conv(torch::relu(bn(x))); }

 private:
  nn::BatchNorm2d bn{nullptr};
  nn::Conv2d conv{nullptr};
};
TORCH_MODULE(BnActConv);

// Norm and ReLU over both paths joined (the last stage's output, and dpn68b's shared norm).
class CatBnActImpl : public nn::Module {
 public:
  explicit CatBnActImpl(int64_t channels) { bn = register_module("bn", make_bn(channels)); }
  torch::Tensor forward(const torch::Tensor& x) { return torch::relu(bn(x)); }

 private:
  nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(CatBnAct);

// The stem: conv, norm, ReLU (its max pool is applied in the encoder's forward).
class InputBlockImpl : public nn::Module {
 public:
  InputBlockImpl(int64_t in, int64_t out, int64_t kernel) {
    conv = register_module(
        "conv", nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(2).padding(kernel / 2).bias(false)));
    bn = register_module("bn", make_bn(out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return torch::relu(bn(conv(x))); }

 private:
  nn::Conv2d conv{nullptr};
  nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(InputBlock);

// The two paths between blocks; dense is undefined for the stem's output, which enters as one tensor.
struct Paths {
  torch::Tensor resid, dense;
  torch::Tensor joined() const { return dense.defined() ? torch::cat({resid, dense}, 1) : resid; }
};

enum class BlockType { proj, down, normal };

class DualPathBlockImpl : public nn::Module {
 public:
  DualPathBlockImpl(int64_t in, int64_t r, int64_t bw, int64_t inc, int64_t groups, BlockType type, bool b,
                    int64_t dilation)
      : num_1x1_c_(bw), b_(b) {
    const int64_t stride = type == BlockType::down ? 2 : 1;
    // Projection of the input onto both paths for the first block of a stage; its name tells its stride.
    if (type != BlockType::normal)
      c1x1_w = register_module(stride == 2 ? "c1x1_w_s2" : "c1x1_w_s1",
                               BnActConv(in, bw + 2 * inc, 1, stride, 1, dilation));
    c1x1_a = register_module("c1x1_a", BnActConv(in, r, 1, 1, 1, dilation));
    c3x3_b = register_module("c3x3_b", BnActConv(r, r, 3, stride, groups, dilation));
    if (b) {
      c1x1_c_b = register_module("c1x1_c", CatBnAct(r));
      c1x1_c1 = register_module("c1x1_c1", dilatable_conv(r, bw, 1, 1, dilation, 1));
      c1x1_c2 = register_module("c1x1_c2", dilatable_conv(r, inc, 1, 1, dilation, 1));
    } else {
      c1x1_c = register_module("c1x1_c", BnActConv(r, bw + inc, 1, 1, 1, dilation));
    }
  }

  Paths forward(const Paths& x) {
    const auto x_in = x.joined();
    auto shortcut = x;
    if (c1x1_w) {
      const auto s = c1x1_w(x_in);
      shortcut = {s.narrow(1, 0, num_1x1_c_), s.narrow(1, num_1x1_c_, s.size(1) - num_1x1_c_)};
    }
    auto y = c3x3_b(c1x1_a(x_in));
    torch::Tensor out1, out2;
    if (b_) {
      y = c1x1_c_b(y);
      out1 = c1x1_c1(y);
      out2 = c1x1_c2(y);
    } else {
      y = c1x1_c(y);
      out1 = y.narrow(1, 0, num_1x1_c_);
      out2 = y.narrow(1, num_1x1_c_, y.size(1) - num_1x1_c_);
    }
    return {shortcut.resid + out1, torch::cat({shortcut.dense, out2}, 1)};
  }

 private:
  int64_t num_1x1_c_;
  bool b_;
  BnActConv c1x1_w{nullptr}, c1x1_a{nullptr}, c3x3_b{nullptr}, c1x1_c{nullptr};
  CatBnAct c1x1_c_b{nullptr};
  nn::Conv2d c1x1_c1{nullptr}, c1x1_c2{nullptr};
};
TORCH_MODULE(DualPathBlock);

class DPNEncoderImpl : public SmpEncoderImpl {
 public:
  DPNEncoderImpl(const DPNSpec& spec, const EncoderOptions& o) : SmpEncoderImpl(o) {
    check_output_stride(o);
    // Every block sits directly in `features`, named conv<stage>_<index> as the weights spell them.
    auto features = register_module("features", std::make_shared<nn::Module>());
    conv1_1 = features->register_module(
        "conv1_1", InputBlock(o.in_channels(), spec.num_init_features, spec.small ? 3 : 7));
    std::vector<int64_t> channels = {3, spec.num_init_features};
    const int64_t bw_factor = spec.small ? 1 : 4;
    int64_t in = spec.num_init_features;
    for (size_t s = 0; s < 4; ++s) {
      const int64_t bw = (int64_t{64} << s) * bw_factor, inc = spec.inc_sec[s];
      const int64_t r = spec.k_r * bw / (64 * bw_factor);
      // conv4 and conv5 (reductions 16 and 32) are what make_dilated may dilate.
      const int64_t dilation = stage_dilation(int64_t{4} << s, output_stride_);
      std::vector<DualPathBlock> stage;
      for (int64_t i = 1; i <= spec.k_sec[s]; ++i) {
        const auto type = i > 1 ? BlockType::normal : s == 0 ? BlockType::proj : BlockType::down;
        stage.push_back(features->register_module(
            "conv" + std::to_string(s + 2) + "_" + std::to_string(i),
            DualPathBlock(in, r, bw, inc, spec.groups, type, spec.b, dilation)));
        in = i == 1 ? bw + 3 * inc : in + inc;
      }
      stages_.push_back(std::move(stage));
      channels.push_back(in);
    }
    conv5_bn_ac = features->register_module("conv5_bn_ac", CatBnAct(in));
    set_out_channels(channels);
    load_weights(*this, o.weights(), "features.conv1_1.conv.weight", drop_prefixes({"last_linear."}));
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) override {
    std::vector<torch::Tensor> features{x};
    auto y = conv1_1(x);
    features.push_back(y);
    if (depth_ < 2) return features;
    Paths p{F::max_pool2d(y, F::MaxPool2dFuncOptions(3).stride(2).padding(1)), {}};
    for (int64_t s = 0; s + 2 <= depth_; ++s) {
      for (auto& block : stages_[static_cast<size_t>(s)]) p = block(p);
      // Both paths joined and activated; the last stage's through the network's final norm.
      features.push_back(s == 3 ? conv5_bn_ac(p.joined()) : torch::relu(p.joined()));
    }
    return features;
  }

 private:
  InputBlock conv1_1{nullptr};
  std::vector<std::vector<DualPathBlock>> stages_;
  CatBnAct conv5_bn_ac{nullptr};
};

// pretrainedmodels' settings for every DPN weights: RGB in [0, 1], MXNet's mean and scale.
PreprocessingParams dpn_preprocessing() {
  PreprocessingParams p;
  p.mean = {124.0 / 255.0, 117.0 / 255.0, 104.0 / 255.0};
  p.std = std::vector<double>(3, 1.0 / (0.0167 * 255.0));
  return p;
}

}  // namespace

void register_group() {
  const auto weights = [](const std::string& name, const std::string& revision) {
    return std::vector<Pretrained>{{name, revision, dpn_preprocessing()}};
  };
  add<DPNEncoderImpl>("dpn68", DPNSpec{true, false, 10, 128, 32, {3, 4, 12, 3}, {16, 32, 32, 64}},
                      weights("imagenet", "c209aefdeae6bc93937556629e974b44d4e58535"));
  add<DPNEncoderImpl>("dpn68b", DPNSpec{true, true, 10, 128, 32, {3, 4, 12, 3}, {16, 32, 32, 64}},
                      weights("imagenet+5k", "6c6615e77688e390ae0eaa81e26821fbd83cee4b"));
  add<DPNEncoderImpl>("dpn92", DPNSpec{false, false, 64, 96, 32, {3, 4, 20, 3}, {16, 32, 24, 128}},
                      weights("imagenet+5k", "d231f51ce4ad2c84ed5fcaf4ef0cfece6814a526"));
  add<DPNEncoderImpl>("dpn98", DPNSpec{false, false, 96, 160, 40, {3, 6, 20, 3}, {16, 32, 32, 128}},
                      weights("imagenet", "b2836c86216c1ddce980d832f7deaa4ca22babd3"));
  add<DPNEncoderImpl>("dpn107", DPNSpec{false, false, 128, 200, 50, {4, 8, 20, 3}, {20, 64, 64, 128}},
                      weights("imagenet+5k", "dab4cd6b8b79de3db970f2dbff85359a8847db05"));
  add<DPNEncoderImpl>("dpn131", DPNSpec{false, false, 128, 160, 40, {4, 8, 28, 3}, {16, 32, 32, 128}},
                      weights("imagenet", "04bbb9f415ca2bb59f3d8227857967b74698515e"));
}

}  // namespace smp::smp_encoders::dpn
