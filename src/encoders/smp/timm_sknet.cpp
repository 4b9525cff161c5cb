// smp's timm-skresnet18/34 and timm-skresnext50_32x4d: timm's Selective Kernel ResNet with smp's
// own SK settings, timm's parameter names and smp's dilation.
#include "encoders/smp/common.h"
#include "timm/models/sknet.h"

namespace smp::smp_encoders::timm_sknet {

namespace nn = torch::nn;

namespace {

class SkNetEncoderImpl : public SmpEncoderImpl {
 public:
  SkNetEncoderImpl(const timm::sknet::SkNetConfig& cfg, const EncoderOptions& o) : SmpEncoderImpl(o) {
    check_output_stride(o);
    // Every stage is built whatever the depth; the classifier is left out (smp deletes fc).
    net_ = timm::sknet::create_sknet(o.name(), cfg, timm::ModelArgs().features_only(true).in_chans(o.in_channels()));
    // The network's children become this encoder's, so the keys are timm's (conv1, bn1, layer1, ...).
    for (const auto& child : net_->named_children()) register_module(child.key(), child.value());
    // smp's get_stages: layer3 runs at reduction 16, layer4 at 32.
    for (const auto& [stage, reduction] : {std::pair<const char*, int64_t>{"layer3", 16}, {"layer4", 32}}) {
      const int64_t rate = stage_dilation(reduction, output_stride_);
      if (rate > 1) replace_strides_with_dilation(*named_children()[stage], rate);
    }
    std::vector<int64_t> channels = {3};
    for (const auto& info : net_->feature_info()) channels.push_back(info.num_chs);
    set_out_channels(channels);
    load_weights(*this, o.weights(), "conv1.weight", drop_prefixes({"fc."}));
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) override {
    std::vector<int64_t> indices(static_cast<size_t>(depth_));
    for (int64_t i = 0; i < depth_; ++i) indices[static_cast<size_t>(i)] = i;
    auto features = net_->forward_intermediates(x, indices);
    features.insert(features.begin(), x);
    return features;
  }

 private:
  timm::Backbone net_;
};

timm::sknet::SkNetConfig sk_config(bool bottleneck, std::vector<int64_t> layers) {
  timm::sknet::SkNetConfig c;
  c.bottleneck = bottleneck;
  c.layers = std::move(layers);
  return c;
}

}  // namespace

void register_group() {
  // smp's sk_kwargs differ from timm's: the basic nets keep the default divisor 8, and the ResNeXt
  // takes every SelectiveKernel default (input split, attention at 1/16 rounded to 8).
  auto basic = [](std::vector<int64_t> layers) {
    auto c = sk_config(false, std::move(layers));
    c.rd_ratio = 1.0 / 8;
    return c;
  };
  auto skresnext = sk_config(true, {3, 4, 6, 3});
  skresnext.cardinality = 32;
  skresnext.base_width = 4;

  add<SkNetEncoderImpl>("timm-skresnet18", basic({2, 2, 2, 2}),
                        {{"imagenet", "6c97652bb744d89177b68274d2fda3923a7d1f95"}});
  add<SkNetEncoderImpl>("timm-skresnet34", basic({3, 4, 6, 3}),
                        {{"imagenet", "2367796924a8182cc835ef6b5dc303917f923f99"}});
  add<SkNetEncoderImpl>("timm-skresnext50_32x4d", skresnext,
                        {{"imagenet", "50207e407cc4c6ea9e6872963db6844ca7b7b9de"}});
}

}  // namespace smp::smp_encoders::timm_sknet
