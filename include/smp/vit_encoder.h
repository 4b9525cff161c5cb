// smp's TimmViTEncoder: a whole timm model (under "model", classifier included) whose selected
// blocks' outputs are the features, with their prefix tokens alongside.
#pragma once

#include <smp/encoders.h>

namespace smp {

struct ViTEncoderOptions {
  TORCH_ARG(std::string, name);  // timm model name, without "tu-" (a ".tag" suffix is ignored)
  TORCH_ARG(int64_t, in_channels) = 3;
  TORCH_ARG(int64_t, depth) = 4;
  TORCH_ARG(std::vector<int64_t>, output_indices) = {};  // empty = uniform over the blocks
  TORCH_ARG(std::string, weights) = "";                  // safetensors path of the timm model
  TORCH_ARG(double, drop_path_rate) = 0.0;               // timm's stochastic depth (training only)
  TORCH_ARG(double, drop_rate) = 0.0;
};

class TimmViTEncoderImpl : public EncoderImpl {
 public:
  explicit TimmViTEncoderImpl(const ViTEncoderOptions& options);
  std::vector<torch::Tensor> forward(const torch::Tensor& x) override;
  // Features plus each one's prefix tokens ([B, n, C]; empty when the model has none).
  std::vector<torch::Tensor> forward(const torch::Tensor& x, std::vector<torch::Tensor>& prefix_tokens);
  // [in_channels, C, ..., C]: the input entry first, as every encoder here reports it.
  std::vector<int64_t> out_channels() const override;
  int64_t depth() const override { return static_cast<int64_t>(indices_.size()); }
  int64_t output_stride() const override { return output_strides_.back(); }
  std::vector<double> mean() const override { return mean_; }
  std::vector<double> std() const override { return std_; }

  const std::vector<int64_t>& output_strides() const { return output_strides_; }
  const std::vector<int64_t>& output_indices() const { return indices_; }
  bool has_prefix_tokens() const { return model_->num_prefix_tokens() > 0; }

 private:
  timm::Backbone model_;
  int64_t in_channels_;
  std::vector<int64_t> indices_, channels_, output_strides_;
  std::vector<double> mean_, std_;
};
TORCH_MODULE(TimmViTEncoder);

}  // namespace smp
