#include <smp/archs/pspnet.h>

#include "models/options_json.h"
#include "util/log.h"

namespace smp {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

// Average pooling to pool_size x pool_size bins, 1x1 conv-norm-ReLU, bilinear back to the input size.
class PSPBlockImpl : public nn::Module {
 public:
  PSPBlockImpl(int64_t in, int64_t out, int64_t pool_size, const NormSpec& norm) {
    // A 1x1 map has a single value per channel to normalise, which batch norm refuses in training.
    const NormSpec used = pool_size == 1 ? NormSpec("identity") : norm;
    pool = register_module("pool", nn::Sequential(nn::AdaptiveAvgPool2d(pool_size), conv2d_relu(in, out, 1, 0, 1, used)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return F::interpolate(pool->forward(x), F::InterpolateFuncOptions()
                                                .size(std::vector<int64_t>{x.size(2), x.size(3)})
                                                .mode(torch::kBilinear)
                                                .align_corners(true));
  }

 private:
  nn::Sequential pool{nullptr};
};
TORCH_MODULE(PSPBlock);

class PSPModuleImpl : public nn::Module {
 public:
  PSPModuleImpl(int64_t in, const std::vector<int64_t>& sizes, const NormSpec& norm) {
    blocks = register_module("blocks", nn::ModuleList());
    for (auto size : sizes)
      blocks->push_back(PSPBlock(in, in / static_cast<int64_t>(sizes.size()), size, norm));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    std::vector<torch::Tensor> xs;
    for (const auto& block : *blocks) xs.push_back(block->as<PSPBlock>()->forward(x));
    xs.push_back(x);
    return torch::cat(xs, 1);
  }

 private:
  nn::ModuleList blocks{nullptr};
};
TORCH_MODULE(PSPModule);

class PSPDecoderImpl : public nn::Module {
 public:
  PSPDecoderImpl(int64_t in, const PSPNetOptions& o) {
    check_dropout("psp_dropout", o.psp_dropout());
    psp = register_module("psp", PSPModule(in, std::vector<int64_t>{1, 2, 3, 6}, o.decoder_use_norm()));
    conv = register_module("conv", conv2d_relu(in * 2, o.psp_out_channels(), 1, 0, 1, o.decoder_use_norm()));
    dropout = register_module("dropout", nn::Dropout2d(nn::Dropout2dOptions(o.psp_dropout())));
  }
  torch::Tensor forward(const std::vector<torch::Tensor>& features) {
    return dropout->forward(conv->forward(psp->forward(features.back())));
  }

 private:
  PSPModule psp{nullptr};
  Block conv{nullptr};
  nn::Dropout2d dropout{nullptr};
};
TORCH_MODULE(PSPDecoder);

}  // namespace

PSPNetImpl::PSPNetImpl(const PSPNetOptions& o)
    : SegmentationModelImpl("PSPNet", detail::options_to_json(o)) {
  set_encoder(create_encoder(detail::encoder_options(o)));
  set_decoder(PSPDecoder(encoder().out_channels().back(), o));
  set_heads(segmentation_head(o.psp_out_channels(), o.classes(), 3, o.activation(), static_cast<double>(o.upsampling())),
            o.aux_params());
}

void register_pspnet() {
  detail::register_architecture_of<PSPNet, PSPNetOptions>("PSPNet", {{"psp_use_batchnorm", "decoder_use_norm"}});
}

}  // namespace smp
