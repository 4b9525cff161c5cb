// Preprocessing parameters of pretrained encoders, and their application to images.
#include <smp/encoder_table.h>
#include <smp/encoders.h>
#include <smp/preprocessing.h>
#include <smp/timm.h>

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "encoders/smp_encoders.h"
#include "timm/pretrained_tags.h"
#include "util/strings.h"

namespace smp {

PreprocessingParams get_preprocessing_params(const std::string& encoder_name, const std::string& pretrained) {
  if (util::starts_with(encoder_name, "tu-") && timm::is_model(encoder_name.substr(3))) {
    const auto timm_name = encoder_name.substr(3);
    const auto& entry = timm::model_entry(timm_name);
    timm::check_pretrained_tag(entry.name, timm::split_model_name_tag(timm_name).second);
    PreprocessingParams params;
    params.mean = entry.mean;
    params.std = entry.std;
    return params;
  }
  const auto smp_names = list_smp_encoders();
  if (std::find(smp_names.begin(), smp_names.end(), encoder_name) == smp_names.end())
    throw std::invalid_argument(fmt::format(
        "Unknown encoder '{}' for preprocessing parameters.{} Encoders are smp's own names and tu-<timm model name>; "
        "`smp list-encoders` lists them.",
        encoder_name, util::did_you_mean(encoder_name, encoder_names())));
  return smp_encoder_preprocessing(encoder_name, pretrained);
}

torch::Tensor preprocess(const torch::Tensor& image, const PreprocessingParams& params) {
  if (params.input_space != "RGB" || params.input_range != std::array<double, 2>{0.0, 1.0})
    throw std::invalid_argument(fmt::format(
        "preprocess takes RGB images in [0, 1]; these parameters are for {} images in [{}, {}]", params.input_space,
        params.input_range[0], params.input_range[1]));
  if ((image.dim() != 3 && image.dim() != 4) || !image.is_floating_point())
    throw std::invalid_argument(
        fmt::format("preprocess takes a float image [C, H, W] or batch [N, C, H, W]; got {} [{}]",
                    c10::toString(image.scalar_type()), fmt::join(image.sizes(), ", ")));
  const int64_t channel_dim = image.dim() - 3;
  const auto channels = image.size(channel_dim);
  if (params.mean.size() != static_cast<size_t>(channels) || params.std.size() != params.mean.size())
    throw std::invalid_argument(fmt::format("preprocess: {} mean and {} std values for an image with {} channels",
                                            params.mean.size(), params.std.size(), channels));
  std::vector<int64_t> shape(static_cast<size_t>(image.dim()), 1);
  shape[static_cast<size_t>(channel_dim)] = channels;
  auto column = [&](const std::vector<double>& v) {
    return torch::tensor(v, torch::kDouble).to(image.options()).view(shape);
  };
  return (image - column(params.mean)) / column(params.std);
}

}  // namespace smp
