// smp's DPT: a Vision Transformer's block outputs (and prefix tokens) reassembled into a pyramid and
// fused back up to half the input resolution.
#pragma once

#include <smp/models.h>

namespace smp {

// DPT takes the full timm model (encoder.model.*, classifier included, as smp's TimmViTEncoder
// builds it), so it has its own option set rather than SMP_ENCODER_MODEL_OPTIONS.
#define SMP_DPT_OPTIONS(OPTION, KWARG)                                                                      \
  /* A "tu-" timm model; a ".tag" suffix names its pretrained weights, as in smp. */                        \
  OPTION(std::string, encoder_name, "tu-vit_base_patch16_224.augreg_in21k")                                 \
  OPTION(int64_t, encoder_depth, 4)                                                                         \
  OPTION(std::string, encoder_weights, "") /* "" (None) or a safetensors path of the timm model */          \
  /* Block indices whose outputs are used; empty = spread uniformly over the blocks. */                     \
  OPTION(std::vector<int64_t>, encoder_output_indices, {})                                                  \
  OPTION(std::string, decoder_readout, "cat") /* "cat", "add" or "ignore" */                                \
  OPTION(std::vector<int64_t>, decoder_intermediate_channels, (std::vector<int64_t>{256, 512, 1024, 1024})) \
  OPTION(int64_t, decoder_fusion_channels, 256)                                                             \
  OPTION(int64_t, in_channels, 3)                                                                           \
  OPTION(int64_t, classes, 1)                                                                               \
  OPTION(std::string, activation, "")                                                                       \
  OPTION(std::optional<AuxParams>, aux_params, std::nullopt)                                                \
  /* timm keyword passed through smp's **kwargs. Position embeddings are always resampled to the */         \
  /* input's grid here, so both values accept any input divisible by the patch size. */                     \
  KWARG(bool, dynamic_img_size, false)                                                                      \
  KWARG(double, drop_path_rate, 0.0) /* timm's stochastic depth, training only */                           \
  KWARG(double, drop_rate, 0.0)
struct DPTOptions {
  SMP_OPTIONS(SMP_DPT_OPTIONS)
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
