// The registry of smp's own encoders and what their groups share.
#include "encoders/smp/common.h"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>

#include <smp/hub.h>
#include <smp/io.h>

#include "encoders/smp_encoders.h"
#include "util/registry.h"
#include "util/strings.h"

namespace smp::smp_encoders {

#define SMP_ENCODER_GROUP(group) \
  namespace group {              \
  void register_group();         \
  }
#include "encoders/smp/groups.def"
#undef SMP_ENCODER_GROUP

namespace {

struct Entry {
  Factory factory;
  std::vector<Pretrained> pretrained;
};

util::Registry<Entry>& registry() {
  static util::Registry<Entry> r("smp encoder");
  return r;
}

const util::Registry<Entry>& entries() {
  static std::once_flag once;
  std::call_once(once, [] {
#define SMP_ENCODER_GROUP(group) group::register_group();
#include "encoders/smp/groups.def"
#undef SMP_ENCODER_GROUP
  });
  return registry();
}

const Pretrained* find_pretrained(const std::string& encoder, const std::string& weights) {
  if (const auto* entry = entries().find(encoder))
    for (const auto& p : entry->pretrained)
      if (p.weights == weights) return &p;
  return nullptr;
}

std::string available_weights(const std::string& encoder) {
  std::vector<std::string> names;
  for (const auto& w : smp_encoder_weights(encoder)) names.push_back("'" + w + "'");
  return util::join(names, ", ");
}

}  // namespace

PreprocessingParams imagenet_preprocessing() {
  PreprocessingParams p;
  p.mean = {0.485, 0.456, 0.406};
  p.std = {0.229, 0.224, 0.225};
  return p;
}

PreprocessingParams centered_preprocessing() {
  PreprocessingParams p;
  p.mean = {0.5, 0.5, 0.5};
  p.std = {0.5, 0.5, 0.5};
  return p;
}

void add(const std::string& name, Factory factory, std::vector<Pretrained> pretrained) {
  registry().add(name, Entry{std::move(factory), std::move(pretrained)});
}

void check_output_stride(const EncoderOptions& o) {
  if (o.output_stride() != 32 && o.output_stride() != 16 && o.output_stride() != 8)
    throw std::invalid_argument(fmt::format("Output stride should be 16 or 8, got {}.", o.output_stride()));
}

void refuse_dilation(const EncoderOptions& o, const std::string& reason) {
  if (o.output_stride() != 32)
    throw std::invalid_argument(fmt::format("{} (encoder {}, output_stride {}; use output_stride 32)", reason,
                                            o.name(), o.output_stride()));
}

int64_t stage_dilation(int64_t reduction, int64_t output_stride) {
  return reduction > output_stride ? reduction / output_stride : 1;
}

torch::nn::Conv2d dilatable_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t dilation,
                                 int64_t groups) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                               .stride(dilation > 1 ? 1 : stride)
                               .padding(kernel / 2 * dilation)
                               .dilation(dilation)
                               .groups(groups)
                               .bias(false));
}

void replace_strides_with_dilation(torch::nn::Module& stage, int64_t rate) {
  for (const auto& module : stage.modules()) {
    if (auto* conv = module->as<torch::nn::Conv2d>()) {
      const auto& k = *conv->options.kernel_size();
      conv->options.stride(1).dilation(rate).padding(torch::ExpandingArray<2>({k[0] / 2 * rate, k[1] / 2 * rate}));
    }
  }
}

KeyRename drop_prefixes(std::vector<std::string> prefixes) {
  return [prefixes = std::move(prefixes)](const std::string& key) {
    for (const auto& p : prefixes)
      if (util::starts_with(key, p)) return std::string();
    return key;
  };
}

void load_weights(torch::nn::Module& encoder, const std::string& path, const std::string& first_conv_weight,
                  const KeyRename& rename) {
  if (path.empty()) return;
  const auto file = io::read_safetensors(path);
  io::load_state_dict(encoder, file.tensors,
                      io::LoadOptions().rename(rename).first_conv_weight(first_conv_weight));
}

SmpEncoderImpl::SmpEncoderImpl(const EncoderOptions& o)
    : name_(o.name()), in_channels_(o.in_channels()), depth_(o.depth()), output_stride_(o.output_stride()) {
  if (depth_ < 1 || depth_ > 5)
    throw std::invalid_argument(
        fmt::format("{}: encoder_depth should be in range [1, 5], got {}", o.name(), depth_));
}

std::vector<int64_t> SmpEncoderImpl::out_channels() const {
  return {out_channels_.begin(), out_channels_.begin() + std::min<int64_t>(depth_ + 1, out_channels_.size())};
}

int64_t SmpEncoderImpl::output_stride() const { return std::min(output_stride_, int64_t{1} << depth_); }

void SmpEncoderImpl::set_out_channels(std::vector<int64_t> channels) {
  if (!channels.empty() && channels[0] == 3) channels[0] = in_channels_;
  out_channels_ = std::move(channels);
}

}  // namespace smp::smp_encoders

namespace smp {

bool is_weights_path(const std::string& weights) {
  return weights.find('/') != std::string::npos || util::ends_with(weights, ".safetensors");
}

std::vector<std::string> list_smp_encoders() { return smp_encoders::entries().names(); }

std::vector<std::string> smp_encoder_weights(const std::string& encoder) {
  std::vector<std::string> names;
  if (const auto* entry = smp_encoders::entries().find(encoder))
    for (const auto& p : entry->pretrained) names.push_back(p.weights);
  return names;
}

PreprocessingParams smp_encoder_preprocessing(const std::string& encoder, const std::string& weights) {
  if (const auto* p = smp_encoders::find_pretrained(encoder, weights)) return p->preprocessing;
  throw std::invalid_argument(fmt::format("Encoder '{}' has no pretrained weights '{}'; available: {}", encoder,
                                          weights, util::join(smp_encoder_weights(encoder), ", ")));
}

Encoder create_smp_encoder(const EncoderOptions& options) {
  const auto* entry = smp_encoders::entries().find(options.name());
  if (!entry) return nullptr;
  auto resolved = options;
  const auto& weights = options.weights();
  const smp_encoders::Pretrained* pretrained = nullptr;
  if (!weights.empty() && !is_weights_path(weights)) {
    pretrained = smp_encoders::find_pretrained(options.name(), weights);
    if (!pretrained)
      throw std::invalid_argument(fmt::format(
          "Wrong pretrained weights `{}` for encoder `{}`. Available options are: [{}] (or a path to a .safetensors "
          "file)",
          weights, options.name(), smp_encoders::available_weights(options.name())));
    // smp's hub repositories spell a '+' of the weights name as '-' (imagenet+background, imagenet+5k).
    std::string repo_weights = weights;
    std::replace(repo_weights.begin(), repo_weights.end(), '+', '-');
    resolved.weights(hub::hf_hub_download("smp-hub/" + options.name() + "." + repo_weights, "model.safetensors",
                                          pretrained->revision));
  }
  auto encoder = entry->factory(resolved);
  if (pretrained) encoder->set_preprocessing(pretrained->preprocessing);
  return encoder;
}

}  // namespace smp
