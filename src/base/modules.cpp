#include <smp/modules.h>

#include "util/strings.h"

namespace smp {

namespace nn = torch::nn;

torch::nn::Functional make_activation(const std::string& name) {
  using T = torch::Tensor;
  if (name.empty() || name == "identity" || name == "None") return nn::Functional([](T x) { return x; });
  if (name == "sigmoid") return nn::Functional([](T x) { return torch::sigmoid(x); });
  // nn.Softmax() without dim picks dim 1 for 4-d inputs (0 for 0-,1-,3-d), as PyTorch's legacy rule.
  auto implicit_dim = [](const T& x) -> int64_t { return (x.dim() == 0 || x.dim() == 1 || x.dim() == 3) ? 0 : 1; };
  if (name == "softmax") return nn::Functional([implicit_dim](T x) { return torch::softmax(x, implicit_dim(x)); });
  if (name == "softmax2d") return nn::Functional([](T x) { return torch::softmax(x, 1); });
  if (name == "logsoftmax")
    return nn::Functional([implicit_dim](T x) { return torch::log_softmax(x, implicit_dim(x)); });
  if (name == "tanh") return nn::Functional([](T x) { return torch::tanh(x); });
  if (name == "argmax") return nn::Functional([](T x) { return torch::argmax(x); });
  if (name == "argmax2d") return nn::Functional([](T x) { return torch::argmax(x, 1); });
  if (name == "clamp") return nn::Functional([](T x) { return torch::clamp(x, 0, 1); });
  throw std::invalid_argument("activation should be one of sigmoid, softmax, softmax2d, logsoftmax, tanh, argmax, "
                              "argmax2d, clamp, identity or None; got '" + name + "'");
}

namespace {
double param(const NormSpec& spec, const std::string& key, double fallback) {
  auto it = spec.params.find(key);
  return it == spec.params.end() ? fallback : it->second;
}
const std::vector<std::string> kNorms = {"batchnorm", "identity", "layernorm", "instancenorm"};
}  // namespace

bool is_identity_norm(const NormSpec& spec) { return spec.type == "identity"; }

torch::nn::AnyModule make_norm(const NormSpec& spec, int64_t channels) {
  if (spec.type == "batchnorm")
    return nn::AnyModule(nn::BatchNorm2d(nn::BatchNorm2dOptions(channels)
                                             .eps(param(spec, "eps", 1e-5))
                                             .momentum(param(spec, "momentum", 0.1))
                                             .affine(param(spec, "affine", 1) != 0)));
  if (spec.type == "identity") return nn::AnyModule(nn::Identity());
  if (spec.type == "layernorm")
    return nn::AnyModule(nn::LayerNorm(
        nn::LayerNormOptions({channels}).eps(param(spec, "eps", 1e-5)).elementwise_affine(param(spec, "elementwise_affine", 1) != 0)));
  if (spec.type == "instancenorm")
    return nn::AnyModule(nn::InstanceNorm2d(nn::InstanceNorm2dOptions(channels)
                                                .eps(param(spec, "eps", 1e-5))
                                                .affine(param(spec, "affine", 0) != 0)
                                                .track_running_stats(param(spec, "track_running_stats", 0) != 0)));
  if (spec.type == "inplace")
    throw std::invalid_argument("decoder_use_norm \"inplace\" needs the inplace_abn package, which has no C++ port; "
                                "use \"batchnorm\"");
  throw std::invalid_argument("Unrecognized normalization type '" + spec.type + "'. Should be one of " +
                              util::join(kNorms, ", ") + " (or true/false)");
}

Block conv2d_relu(int64_t in, int64_t out, int64_t kernel, int64_t padding, int64_t stride, const NormSpec& norm) {
  Block seq;
  seq->push_back(nn::Conv2d(
      nn::Conv2dOptions(in, out, kernel).padding(padding).stride(stride).bias(is_identity_norm(norm))));
  seq->push_back(make_norm(norm, out));
  seq->push_back(nn::ReLU(nn::ReLUOptions(true)));
  return seq;
}

Block separable_conv2d(int64_t in, int64_t out, int64_t kernel, int64_t padding, int64_t dilation, bool bias) {
  return Block(nn::Conv2d(nn::Conv2dOptions(in, in, kernel).padding(padding).dilation(dilation).groups(in).bias(false)),
               nn::Conv2d(nn::Conv2dOptions(in, out, 1).bias(bias)));
}

torch::nn::functional::InterpolateFuncOptions interpolation(const std::string& mode, bool align_corners) {
  auto opts = torch::nn::functional::InterpolateFuncOptions();
  if (mode == "nearest") return opts.mode(torch::kNearest);
  if (mode == "bilinear") return opts.mode(torch::kBilinear).align_corners(align_corners);
  if (mode == "bicubic") return opts.mode(torch::kBicubic).align_corners(align_corners);
  if (mode == "area") return opts.mode(torch::kArea);
  if (mode == "nearest-exact") return opts.mode(torch::kNearestExact);
  throw std::invalid_argument("decoder_interpolation must be one of nearest, bilinear, bicubic, area, nearest-exact; got '" +
                              mode + "'");
}

torch::Tensor resize(const torch::Tensor& x, int64_t height, int64_t width,
                     torch::nn::functional::InterpolateFuncOptions mode) {
  return torch::nn::functional::interpolate(x, mode.size(std::vector<int64_t>{height, width}));
}

void check_dropout(const std::string& option, double p) {
  if (p < 0 || p > 1)
    throw std::invalid_argument(option + ": dropout probability has to be between 0 and 1, but got " + std::to_string(p));
}

SCSEModuleImpl::SCSEModuleImpl(int64_t in_channels, int64_t reduction) {
  if (in_channels / reduction < 1)
    throw std::invalid_argument("scse attention needs at least " + std::to_string(reduction) + " channels, got " +
                                std::to_string(in_channels));
  cSE = register_module("cSE", nn::Sequential(nn::AdaptiveAvgPool2d(1),
                                              nn::Conv2d(nn::Conv2dOptions(in_channels, in_channels / reduction, 1)),
                                              nn::ReLU(nn::ReLUOptions(true)),
                                              nn::Conv2d(nn::Conv2dOptions(in_channels / reduction, in_channels, 1)),
                                              nn::Sigmoid()));
  sSE = register_module("sSE", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in_channels, 1, 1)), nn::Sigmoid()));
}

torch::Tensor SCSEModuleImpl::forward(const torch::Tensor& x) { return x * cSE->forward(x) + x * sSE->forward(x); }

AttentionImpl::AttentionImpl(const std::string& name, int64_t in_channels) {
  if (name == "scse") {
    scse_ = register_module("attention", SCSEModule(in_channels));
  } else if (!name.empty() && name != "None") {
    throw std::invalid_argument("Attention '" + name + "' is not implemented; use \"scse\" or none");
  }
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) { return scse_ ? scse_->forward(x) : x; }

torch::nn::Sequential segmentation_head(int64_t in_channels, int64_t classes, int64_t kernel_size,
                                        const std::string& activation, double upsampling) {
  nn::Sequential seq;
  seq->push_back(nn::Conv2d(nn::Conv2dOptions(in_channels, classes, kernel_size).padding(kernel_size / 2)));
  if (upsampling > 1)
    seq->push_back(nn::Upsample(nn::UpsampleOptions()
                                    .scale_factor(std::vector<double>{upsampling, upsampling})
                                    .mode(torch::kBilinear)
                                    .align_corners(true)));
  else
    seq->push_back(nn::Identity());
  seq->push_back(make_activation(activation));
  return seq;
}

torch::nn::Sequential classification_head(int64_t in_channels, const AuxParams& aux) {
  nn::Sequential seq;
  if (aux.pooling() == "avg")
    seq->push_back(nn::AdaptiveAvgPool2d(1));
  else if (aux.pooling() == "max")
    seq->push_back(nn::AdaptiveMaxPool2d(1));
  else
    throw std::invalid_argument("aux_params pooling should be one of ('max', 'avg'), got '" + aux.pooling() + "'");
  if (aux.dropout() < 0 || aux.dropout() >= 1)
    throw std::invalid_argument("aux_params dropout must be in [0, 1), got " + std::to_string(aux.dropout()));
  seq->push_back(nn::Flatten());
  if (aux.dropout() > 0)
    seq->push_back(nn::Dropout(nn::DropoutOptions(aux.dropout())));
  else
    seq->push_back(nn::Identity());
  seq->push_back(nn::Linear(in_channels, aux.classes()));
  seq->push_back(make_activation(aux.activation()));
  return seq;
}

}  // namespace smp
