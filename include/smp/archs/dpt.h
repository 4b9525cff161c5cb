// smp's DPT: a Vision Transformer's block outputs (and prefix tokens) reassembled into a pyramid and
// fused back up to half the input resolution.
#pragma once

#include <smp/models.h>

namespace smp {

// DPT takes the full timm model (encoder.model.*, classifier included, as smp's TimmViTEncoder
// builds it), so it has its own option set rather than SMP_ENCODER_MODEL_OPTIONS.
struct DPTOptions {
  // A "tu-" timm model; a ".tag" suffix names its pretrained weights, as in smp.
  TORCH_ARG(std::string, encoder_name) = "tu-vit_base_patch16_224.augreg_in21k";
  TORCH_ARG(int64_t, encoder_depth) = 4;
  TORCH_ARG(std::string, encoder_weights) = "";  // "" (None) or a safetensors path of the timm model
  // Block indices whose outputs are used; empty = spread uniformly over the blocks.
  TORCH_ARG(std::vector<int64_t>, encoder_output_indices) = {};
  TORCH_ARG(std::string, decoder_readout) = "cat";  // "cat", "add" or "ignore"
  TORCH_ARG(std::vector<int64_t>, decoder_intermediate_channels) = std::vector<int64_t>{256, 512, 1024, 1024};
  TORCH_ARG(int64_t, decoder_fusion_channels) = 256;
  TORCH_ARG(int64_t, in_channels) = 3;
  TORCH_ARG(int64_t, classes) = 1;
  TORCH_ARG(std::string, activation) = "";
  TORCH_ARG(std::optional<AuxParams>, aux_params) = std::nullopt;
  // timm keyword passed through smp's **kwargs. Position embeddings are always resampled to the
  // input's grid here, so both values accept any input divisible by the patch size.
  TORCH_ARG(bool, dynamic_img_size) = false;
};

class DPTImpl : public SegmentationModelImpl {
 public:
  explicit DPTImpl(const DPTOptions& options);
  SegmentationOutput forward_all(const torch::Tensor& x) override;

 private:
  std::shared_ptr<torch::nn::Module> decoder_;
};
TORCH_MODULE(DPT);

}  // namespace smp
