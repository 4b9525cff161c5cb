// The frame the Swin families (swin_transformer, swin_transformer_v2, swin_transformer_v2_cr) share:
// a 4x4 patch embedding to NHWC tokens, one stage per depth whose width doubles after the first,
// features returned NCHW, and timm's head (optional final norm, mean over H and W, classifier).
// Each family supplies only its stage module.
#pragma once

#include <smp/timm.h>

#include <functional>
#include <string>
#include <vector>

namespace smp::timm::swin_frame {

struct StageArgs {
  int64_t index;  // stage number
  int64_t in, out;  // input and output widths
  int64_t grid;  // the stage's token grid at the pretraining size
  const std::vector<double>& drop_path_rates;  // one per block
};
using MakeStage = std::function<torch::nn::AnyModule(const StageArgs&)>;

struct FrameOptions {
  std::string stages_name;  // "layers" (v1, v2) or "stages" (v2_cr)
  int64_t embed_dim;
  std::vector<int64_t> depths;
  int64_t img_size;
  bool final_norm;  // a LayerNorm "norm" before pooling (v1, v2)
};

class SwinFrameImpl : public BackboneImpl {
 public:
  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override;
  torch::Tensor forward(const torch::Tensor& x) override;
  std::vector<std::string> flattened_children() const override { return {stages_name_}; }
  std::string first_conv() const override { return "patch_embed.proj"; }

 protected:
  SwinFrameImpl(const std::string& name, const ModelArgs& args, const FrameOptions& options,
                const MakeStage& make_stage);

 private:
  torch::Tensor embed(const torch::Tensor& x);

  std::string stages_name_;
  torch::nn::Conv2d proj_{nullptr};
  torch::nn::LayerNorm embed_norm_{nullptr}, norm_{nullptr};
  torch::nn::Sequential stages_{nullptr};
  torch::nn::Linear fc_{nullptr};
};

}  // namespace smp::timm::swin_frame
