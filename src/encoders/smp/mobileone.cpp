// smp's mobileone_s0 .. mobileone_s4: Apple's MobileOne with Apple's parameter names (stage0 ..
// stage4, rbr_conv / rbr_scale / rbr_skip, se), not timm's byobnet ones. Every block folds into one
// biased convolution ("reparam_conv") through smp::timm::reparameterize(), as smp's
// reparameterize_model does.
#include "encoders/smp/common.h"

#include <smp/io.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "timm/layers/mobileone.h"

namespace smp::smp_encoders::mobileone {

namespace nn = torch::nn;

namespace {

// A convolution without bias and its BatchNorm, under the names "conv" and "bn".
class ConvBnImpl : public nn::Module {
 public:
  explicit ConvBnImpl(nn::Conv2dOptions options) {
    conv = register_module("conv", nn::Conv2d(options.bias(false)));
    bn = register_module("bn", nn::BatchNorm2d(options.out_channels()));
  }
  torch::Tensor forward(const torch::Tensor& x) { return bn(conv(x)); }

  nn::Conv2d conv{nullptr};
  nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(ConvBn);

// Squeeze-and-excitation with a 1/16 reduction and ReLU inside.
class SqueezeExciteImpl : public nn::Module {
 public:
  explicit SqueezeExciteImpl(int64_t channels) {
    reduce_ = register_module("reduce", nn::Conv2d(nn::Conv2dOptions(channels, channels / 16, 1)));
    expand_ = register_module("expand", nn::Conv2d(nn::Conv2dOptions(channels / 16, channels, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return x * torch::sigmoid(expand_(torch::relu(reduce_(x.mean({2, 3}, true)))));
  }

 private:
  nn::Conv2d reduce_{nullptr}, expand_{nullptr};
};
TORCH_MODULE(SqueezeExcite);

// The BatchNorm folded into the preceding linear map.
std::pair<torch::Tensor, torch::Tensor> fold_bn(const torch::Tensor& kernel, const nn::BatchNorm2dImpl& bn) {
  auto scale = bn.weight / (bn.running_var + bn.options.eps()).sqrt();
  return {kernel * scale.view({-1, 1, 1, 1}), bn.bias - bn.running_mean * scale};
}

// a + b where an undefined tensor stands for an absent branch.
torch::Tensor plus(const torch::Tensor& a, const torch::Tensor& b) { return a.defined() ? a + b : b; }

struct BlockSpec {
  int64_t in_channels, out_channels, kernel_size;
  // The stride the block is built with: it decides whether the identity branch exists, also in a
  // stage that make_dilated later turns to stride 1.
  int64_t stride = 1;
  // smp's make_dilated: above 1, every convolution runs at stride 1 with this dilation.
  int64_t dilation = 1;
  int64_t groups = 1;
  int64_t conv_branches = 1;
  bool se = false;
};

// The sum of the kxk conv-BN branches, a 1x1 conv-BN branch (kernel_size > 1) and a BatchNorm
// identity (when the shape is kept), then optional SE and ReLU.
class BlockImpl : public nn::Module, public timm::layers::Reparameterizable {
 public:
  explicit BlockImpl(const BlockSpec& spec) : spec_(spec) {
    if (spec.se) se_ = register_module("se", SqueezeExcite(spec.out_channels));
    if (spec.in_channels == spec.out_channels && spec.stride == 1)
      rbr_skip_ = register_module("rbr_skip", nn::BatchNorm2d(spec.in_channels));
    rbr_conv_ = register_module("rbr_conv", nn::ModuleList());
    for (int64_t i = 0; i < spec.conv_branches; ++i) rbr_conv_->push_back(ConvBn(conv_options(spec.kernel_size)));
    if (spec.kernel_size > 1) rbr_scale_ = register_module("rbr_scale", ConvBn(conv_options(1)));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y;
    if (reparam_conv_) {
      y = reparam_conv_(x);
    } else {
      if (rbr_scale_) y = rbr_scale_(x);
      if (rbr_skip_) y = plus(y, rbr_skip_(x));
      for (const auto& branch : *rbr_conv_) y = plus(y, branch->as<ConvBnImpl>()->forward(x));
    }
    if (se_) y = se_(y);
    return torch::relu(y);
  }

  bool reparameterize() override {
    if (reparam_conv_) return false;
    torch::NoGradGuard no_grad;
    const int64_t k = spec_.kernel_size;
    torch::Tensor kernel, bias;
    auto accumulate = [&](const std::pair<torch::Tensor, torch::Tensor>& folded) {
      kernel = plus(kernel, folded.first);
      bias = plus(bias, folded.second);
    };
    for (const auto& branch : *rbr_conv_) {
      const auto* cb = branch->as<ConvBnImpl>();
      accumulate(fold_bn(cb->conv->weight, *cb->bn));
    }
    if (rbr_scale_) {
      auto [w, b] = fold_bn(rbr_scale_->conv->weight, *rbr_scale_->bn);
      accumulate({torch::constant_pad_nd(w, {k / 2, k / 2, k / 2, k / 2}), b});
    }
    if (rbr_skip_)
      accumulate(fold_bn(timm::layers::identity_kernel(spec_.in_channels, spec_.groups, k, k, rbr_skip_->weight.options()),
                         *rbr_skip_));
    nn::Conv2d conv(conv_options(k).bias(true));
    conv->to(kernel.device(), kernel.scalar_type());
    conv->weight.copy_(kernel);
    conv->bias.copy_(bias);
    reparam_conv_ = register_module("reparam_conv", conv);
    for (const char* name : {"rbr_skip", "rbr_conv", "rbr_scale"})
      if (named_children().contains(name)) unregister_module(name);
    rbr_skip_ = nullptr;
    rbr_conv_ = nullptr;
    rbr_scale_ = nullptr;
    return true;
  }

 private:
  nn::Conv2dOptions conv_options(int64_t kernel_size) const {
    return nn::Conv2dOptions(spec_.in_channels, spec_.out_channels, kernel_size)
        .stride(spec_.dilation > 1 ? 1 : spec_.stride)
        .padding(kernel_size / 2 * spec_.dilation)
        .dilation(spec_.dilation)
        .groups(spec_.groups);
  }

  BlockSpec spec_;
  SqueezeExcite se_{nullptr};
  nn::BatchNorm2d rbr_skip_{nullptr};
  nn::ModuleList rbr_conv_{nullptr};
  ConvBn rbr_scale_{nullptr};
  nn::Conv2d reparam_conv_{nullptr};
};
TORCH_MODULE(Block);

struct MobileOneSpec {
  std::vector<double> width_multipliers;
  int64_t conv_branches = 1;
  bool se = false;
};

// smp's set_in_channels adapts both convolutions of stage0 that read the input, the kxk branch and
// the 1x1 scale branch; smp's load_state_dict drops the classifier ("linear.").
void load_mobileone_weights(nn::Module& encoder, const std::string& path, int64_t in_channels) {
  if (path.empty()) return;
  auto tensors = io::read_safetensors(path).tensors;
  for (const char* key : {"stage0.rbr_conv.0.conv.weight", "stage0.rbr_scale.conv.weight"}) {
    auto it = tensors.find(key);
    if (it != tensors.end() && it->second.dim() == 4 && it->second.size(1) != in_channels)
      it->second = io::adapt_input_conv(it->second, in_channels);
  }
  io::load_state_dict(encoder, tensors, io::LoadOptions().rename(drop_prefixes({"linear."})));
}

class MobileOneEncoderImpl : public SmpEncoderImpl {
 public:
  MobileOneEncoderImpl(const MobileOneSpec& spec, const EncoderOptions& o) : SmpEncoderImpl(o) {
    check_output_stride(o);
    const auto& widths = spec.width_multipliers;
    const std::vector<int64_t> blocks = {2, 8, 10, 1}, base = {64, 128, 256, 512};
    int64_t in_planes = std::min<int64_t>(64, static_cast<int64_t>(64 * widths[0]));
    // stage0 keeps a single conv branch whatever the variant's count.
    stage0_ = register_module("stage0", Block(BlockSpec{o.in_channels(), in_planes, 3, 2}));
    std::vector<int64_t> channels = {3, in_planes};
    for (size_t s = 0; s < 4; ++s) {
      const int64_t planes = static_cast<int64_t>(static_cast<double>(base[s]) * widths[s]);
      // With SE (s4): the second half of stage3 and all of stage4.
      const int64_t se_blocks = !spec.se ? 0 : s == 2 ? blocks[s] / 2 : s == 3 ? blocks[s] : 0;
      // smp's get_stages: stage3 runs at reduction 16, stage4 at 32.
      const int64_t dilation = stage_dilation(int64_t{4} << s, output_stride_);
      nn::Sequential stage;
      for (int64_t b = 0; b < blocks[s]; ++b) {
        const bool se = b >= blocks[s] - se_blocks;
        // A depthwise kxk block, then a pointwise one.
        stage->push_back(Block(BlockSpec{in_planes, in_planes, 3, b == 0 ? 2 : 1, dilation, in_planes,
                                         spec.conv_branches, se}));
        stage->push_back(Block(BlockSpec{in_planes, planes, 1, 1, dilation, 1, spec.conv_branches, se}));
        in_planes = planes;
      }
      stages_.push_back(register_module("stage" + std::to_string(s + 1), stage));
      channels.push_back(planes);
    }
    set_out_channels(channels);
    load_mobileone_weights(*this, o.weights(), o.in_channels());
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) override {
    std::vector<torch::Tensor> features{x};
    auto y = stage0_(x);
    features.push_back(y);
    for (int64_t s = 0; s + 2 <= depth_; ++s) {
      y = stages_[static_cast<size_t>(s)]->forward(y);
      features.push_back(y);
    }
    return features;
  }

 private:
  Block stage0_{nullptr};
  std::vector<nn::Sequential> stages_;
};

}  // namespace

void register_group() {
  add<MobileOneEncoderImpl>("mobileone_s0", MobileOneSpec{{0.75, 1.0, 1.0, 2.0}, 4},
                            {{"imagenet", "f52815cf0ad29278a9860c9cd5fabf19f904bedf"}});
  add<MobileOneEncoderImpl>("mobileone_s1", MobileOneSpec{{1.5, 1.5, 2.0, 2.5}},
                            {{"imagenet", "5707a98852b762cd8e0c43b5c8c729cd28496677"}});
  add<MobileOneEncoderImpl>("mobileone_s2", MobileOneSpec{{1.5, 2.0, 2.5, 4.0}},
                            {{"imagenet", "ddc3db8fa40d271902c7a8c95cee6691f617d551"}});
  add<MobileOneEncoderImpl>("mobileone_s3", MobileOneSpec{{2.0, 2.5, 3.0, 4.0}},
                            {{"imagenet", "da89b84a91b7400c366c358bfbf8dd0b2fa4dde2"}});
  add<MobileOneEncoderImpl>("mobileone_s4", MobileOneSpec{{3.0, 3.5, 3.5, 4.0}, 1, true},
                            {{"imagenet", "16197c55d599076b6aae67a83d3b3f70c31b097c"}});
}

}  // namespace smp::smp_encoders::mobileone
