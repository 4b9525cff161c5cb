// A segmentation model's inference path (InferenceModel and SegmentationModelImpl::predict).
#pragma once

#include <smp/inference_options.h>
#include <smp/models.h>

#include <memory>
#include <string>

namespace smp::inference {

class CompiledModule;

class ModelCache {
 public:
  ModelCache(SegmentationModelImpl& model, const InferenceOptions& options);
  ~ModelCache();
  // The model's eval-mode output for x: compiled on CPU (eager when the compiler cannot take the
  // model, with one warning), channels-last with autocast elsewhere.
  SegmentationOutput run(const torch::Tensor& x);
  std::string describe(const torch::Tensor& x);
  const InferenceOptions& options() const { return options_; }

 private:
  SegmentationOutput eager(const torch::Tensor& x);

  SegmentationModelImpl& model_;
  InferenceOptions options_;
  std::unique_ptr<CompiledModule> compiled_;
  std::string eager_because_;  // set once compiling failed
};

}  // namespace smp::inference
