#include "timm/models/swin_frame.h"

#include <stdexcept>

#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"

namespace smp::timm::swin_frame {

namespace nn = torch::nn;

namespace {
constexpr int64_t kPatch = 4;
}  // namespace

SwinFrameImpl::SwinFrameImpl(const std::string& name, const ModelArgs& args, const FrameOptions& o,
                             const MakeStage& make_stage)
    : BackboneImpl(name, args), stages_name_(o.stages_name) {
  if (args.output_stride() != 32)
    throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                std::to_string(args.output_stride()) + ")");
  const auto n = static_cast<int64_t>(o.depths.size());
  const int64_t last = layers::last_feature_index(args, n, name);
  auto patch_embed = register_module("patch_embed", std::make_shared<nn::Module>());
  proj_ = patch_embed->register_module(
      "proj", nn::Conv2d(nn::Conv2dOptions(args.in_chans(), o.embed_dim, kPatch).stride(kPatch)));
  embed_norm_ = patch_embed->register_module("norm", nn::LayerNorm(nn::LayerNormOptions({o.embed_dim})));
  // timm's Swin families default to drop_path_rate 0.1; here, as for every family, the default is 0.
  const auto drop_path_rates = layers::drop_path_rates(args.drop_path_rate(), o.depths);
  stages_ = register_module(o.stages_name, nn::Sequential());
  int64_t dim = o.embed_dim, grid = o.img_size / kPatch;
  for (int64_t i = 0; i < n; ++i) {
    const auto out = o.embed_dim << i;
    if (i > 0) grid /= 2;
    feature_info_.push_back({o.stages_name + "." + std::to_string(i), out, kPatch << i});
    if (i <= last) stages_->push_back(make_stage({i, dim, out, grid, drop_path_rates[static_cast<size_t>(i)]}));
    dim = out;
  }
  if (args.features_only()) return;
  if (o.final_norm) norm_ = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({dim})));
  if (args.num_classes() > 0) {
    auto head = register_module("head", std::make_shared<nn::Module>());
    fc_ = head->register_module("fc", nn::Linear(dim, args.num_classes()));
  }
}

std::vector<torch::Tensor> SwinFrameImpl::forward_intermediates(const torch::Tensor& x,
                                                                const std::vector<int64_t>& indices) {
  layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()), model_name());
  std::vector<torch::Tensor> out;
  auto y = embed(x);
  auto stage = stages_->begin();
  for (int64_t i = 0; out.size() < indices.size(); ++i, ++stage) {
    y = stage->forward(y);
    if (i == indices[out.size()]) out.push_back(y.permute({0, 3, 1, 2}).contiguous());
  }
  return out;
}

torch::Tensor SwinFrameImpl::forward(const torch::Tensor& x) {
  check_classifier();
  auto y = stages_->forward(embed(x));
  if (norm_) y = norm_(y);
  return classify(y.mean({1, 2}), fc_);  // NHWC: pool over H, W
}

torch::Tensor SwinFrameImpl::embed(const torch::Tensor& x) {
  if (x.size(2) % kPatch != 0 || x.size(3) % kPatch != 0)
    throw std::invalid_argument(model_name() + ": input height and width must be divisible by 4, got " +
                                std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)));
  return embed_norm_(proj_(x).permute({0, 2, 3, 1}));
}

}  // namespace smp::timm::swin_frame
