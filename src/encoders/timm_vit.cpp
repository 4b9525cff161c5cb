#include <smp/vit_encoder.h>

#include <fmt/format.h>

namespace smp {

namespace {

// depth indices spread evenly over the blocks, ending at the last one (smp's uniform sampling).
std::vector<int64_t> uniform_indices(int64_t depth, int64_t blocks) {
  std::vector<int64_t> out;
  for (int64_t k = 1; k <= depth; ++k)
    out.push_back(static_cast<int64_t>(static_cast<double>(blocks) / static_cast<double>(depth) * static_cast<double>(k)) - 1);
  return out;
}

}  // namespace

TimmViTEncoderImpl::TimmViTEncoderImpl(const ViTEncoderOptions& o) : in_channels_(o.in_channels()) {
  if (o.depth() < 1) throw std::invalid_argument(fmt::format("`encoder_depth` should be greater than 1, got {}.", o.depth()));
  if (!o.output_indices().empty() && static_cast<int64_t>(o.output_indices().size()) != o.depth())
    throw std::invalid_argument(fmt::format(
        "Length of output indices for feature extraction should be equal to the depth of the encoder architecture, "
        "got output indices length - {}, encoder depth - {}",
        o.output_indices().size(), o.depth()));
  const auto name = o.name().substr(0, o.name().find('.'));
  const auto& entry = timm::model_entry(name);
  mean_ = entry.mean;
  std_ = entry.std;
  model_ = register_module("model", timm::create_model(name, timm::ModelArgs()
                                                           .in_chans(o.in_channels())
                                                           .pretrained(o.weights())
                                                           .drop_path_rate(o.drop_path_rate())
                                                           .drop_rate(o.drop_rate())));
  const auto& info = model_->feature_info();
  const auto blocks = static_cast<int64_t>(info.size());
  if (o.depth() > blocks)
    throw std::invalid_argument(fmt::format(
        "Depth of the encoder cannot exceed the number of blocks in the model got {} depth, model has {} blocks",
        o.depth(), blocks));
  indices_ = o.output_indices().empty() ? uniform_indices(o.depth(), blocks) : o.output_indices();
  for (auto& i : indices_) {
    if (i < -blocks || i >= blocks)
      throw std::invalid_argument(fmt::format(
          "Output indices for feature extraction should be in range [-{}, {}), because the model has {} blocks, got "
          "index = {}.",
          blocks, blocks, blocks, i));
    if (i < 0) i += blocks;
  }
  for (auto i : indices_) {
    channels_.push_back(info[static_cast<size_t>(i)].num_chs);
    output_strides_.push_back(info[static_cast<size_t>(i)].reduction);
  }
}

std::vector<torch::Tensor> TimmViTEncoderImpl::forward(const torch::Tensor& x) {
  std::vector<torch::Tensor> prefix_tokens;
  return forward(x, prefix_tokens);
}

std::vector<torch::Tensor> TimmViTEncoderImpl::forward(const torch::Tensor& x, std::vector<torch::Tensor>& prefix_tokens) {
  // timm returns the selected blocks in block order, whatever order the indices came in.
  std::vector<int64_t> blocks(indices_);
  std::sort(blocks.begin(), blocks.end());
  blocks.erase(std::unique(blocks.begin(), blocks.end()), blocks.end());
  return model_->forward_intermediates(x, blocks, prefix_tokens);
}

std::vector<int64_t> TimmViTEncoderImpl::out_channels() const {
  std::vector<int64_t> out{in_channels_};
  out.insert(out.end(), channels_.begin(), channels_.end());
  return out;
}

}  // namespace smp
