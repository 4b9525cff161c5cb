#include "timm/models/ghost_frame.h"

#include <stdexcept>

#include "timm/layers/effnet_blocks.h"
#include "timm/layers/helpers.h"

namespace smp::timm::ghost_frame {

namespace nn = torch::nn;

GhostFrameImpl::GhostFrameImpl(const std::string& name, const ModelArgs& args, double width, const StageCfgs& stages,
                               const MakeBlock& make_block)
    : BackboneImpl(name, args) {
  if (args.output_stride() != 32)
    throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                std::to_string(args.output_stride()) + ")");
  auto div4 = [width](double v) { return layers::make_divisible(v * width, 4); };
  const int64_t stem = div4(16);
  conv_stem_ = register_module("conv_stem", nn::Conv2d(nn::Conv2dOptions(args.in_chans(), stem, 3)
                                                           .stride(2).padding(1).bias(false)));
  bn1_ = register_module("bn1", layers::BatchNormAct2d(stem, "relu"));
  feature_info_.push_back({"conv_stem", stem, 2});
  feature_stage_.push_back(-1);
  int64_t reduction = 2;
  for (size_t i = 0; i < stages.size(); ++i)
    if (stages[i].back().s > 1) {
      reduction *= 2;
      feature_info_.push_back({"blocks." + std::to_string(i), div4(static_cast<double>(stages[i].back().c)), reduction});
      feature_stage_.push_back(static_cast<int64_t>(i));
    }
  const int64_t last_feature = layers::last_feature_index(args, static_cast<int64_t>(feature_info_.size()), name);
  const auto n_stages = static_cast<int64_t>(stages.size());
  const int64_t last_stage = args.features_only() ? feature_stage_[static_cast<size_t>(last_feature)] : n_stages;
  blocks_ = register_module("blocks", nn::ModuleList());
  int64_t prev = stem, index = 0;
  for (int64_t i = 0; i < n_stages && i <= last_stage; ++i) {
    nn::Sequential stage;
    for (const auto& b : stages[static_cast<size_t>(i)]) {
      const int64_t out = div4(static_cast<double>(b.c)), mid = div4(static_cast<double>(b.exp));
      stage->push_back(make_block({prev, mid, out, b, index++}));
      prev = out;
    }
    blocks_->push_back(stage);
  }
  if (args.features_only()) return;
  const int64_t out = div4(960);
  blocks_->push_back(nn::Sequential(layers::EffConvBnAct(prev, out, 1, 1, 1, "relu")));
  conv_head_ = register_module("conv_head", nn::Conv2d(nn::Conv2dOptions(out, 1280, 1)));
  if (args.num_classes() > 0) classifier_ = register_module("classifier", nn::Linear(1280, args.num_classes()));
}

std::vector<torch::Tensor> GhostFrameImpl::forward_intermediates(const torch::Tensor& x,
                                                                 const std::vector<int64_t>& indices) {
  layers::check_feature_indices(indices, static_cast<int64_t>(feature_info_.size()), model_name());
  std::vector<torch::Tensor> out;
  auto y = conv_stem_(x);
  size_t next = 0;
  if (indices[0] == 0) {
    out.push_back(y);
    ++next;
  }
  if (next == indices.size()) return out;
  y = bn1_(y);
  for (size_t i = 0; next < indices.size() && i < blocks_->size(); ++i) {
    y = blocks_[i]->as<nn::Sequential>()->forward(y);
    if (feature_stage_[static_cast<size_t>(indices[next])] == static_cast<int64_t>(i)) {
      out.push_back(y);
      ++next;
    }
  }
  return out;
}

torch::Tensor GhostFrameImpl::forward(const torch::Tensor& x) {
  check_classifier();
  auto y = bn1_(conv_stem_(x));
  for (const auto& stage : *blocks_) y = stage->as<nn::Sequential>()->forward(y);
  y = torch::relu(conv_head_(y.mean({2, 3}, /*keepdim=*/true))).flatten(1);
  return classify(y, classifier_);
}

}  // namespace smp::timm::ghost_frame
