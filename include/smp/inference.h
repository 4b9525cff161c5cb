// The inference path: a segmentation model compiled for the input shapes it is run on.
//
// For each input shape the model's forward is traced once, then its convolutions and linear layers
// become oneDNN primitives with their weights packed once and the BatchNorm, activation, scale and
// residual add that follow them fused in; BatchNorm is folded into the convolution's weights;
// activations stay channels-last from end to end; resizings merge into the concatenations that
// consume them; every other op runs as the traced LibTorch op. Results equal the eager forward's
// within float32 rounding (bfloat16: within bfloat16's).
//
// The model itself is not changed, and a compiled program is dropped as soon as any parameter or
// buffer of the model changes (training, load_state_dict), so results always follow the model's
// current weights. Eval-mode semantics always (dropout off, BatchNorm running statistics).
#pragma once

#include <smp/inference_options.h>
#include <smp/models.h>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <string>

namespace smp {

namespace inference {
class ModelCache;
}

class InferenceModelImpl : public torch::nn::Module {
 public:
  explicit InferenceModelImpl(SegmentationModel model, InferenceOptions options = {});
  ~InferenceModelImpl() override;
  // Mask logits (after the model's activation), as model->forward(x); no gradients.
  torch::Tensor forward(const torch::Tensor& x) { return forward_all(x).mask; }
  SegmentationOutput forward_all(const torch::Tensor& x);
  SegmentationModelImpl& model() const { return *model_; }
  const InferenceOptions& options() const { return options_; }
  // What the compiler made of the model for x's shape (compiling it if needed): counts of fused
  // convolutions, folded norms, ... ; or why it runs eagerly.
  std::string describe(const torch::Tensor& x);

 private:
  SegmentationModel model_;
  InferenceOptions options_;
  std::unique_ptr<inference::ModelCache> cache_;
};
TORCH_MODULE(InferenceModel);

// `model` compiled for inference (see above). Throws std::invalid_argument for dtype bfloat16 on a
// CPU without native bfloat16 support.
InferenceModel optimize_for_inference(SegmentationModel model, const InferenceOptions& options = {});
template <typename M>
InferenceModel optimize_for_inference(const torch::nn::ModuleHolder<M>& model, const InferenceOptions& options = {}) {
  return optimize_for_inference(std::static_pointer_cast<SegmentationModelImpl>(model.ptr()), options);
}

}  // namespace smp
