#include <smp/encoder_table.h>
#include <smp/encoders.h>
#include <smp/hub.h>

#include <fmt/format.h>

#include <cmath>

#include "util/log.h"
#include "encoders/smp_encoders.h"
#include "util/strings.h"

namespace smp {

namespace {

std::string join_ints(const std::vector<int64_t>& v) {
  std::vector<std::string> parts;
  for (auto x : v) parts.push_back(std::to_string(x));
  return "[" + util::join(parts, ", ") + "]";
}

timm::Features build_features(const std::string& name, const EncoderOptions& o, std::vector<int64_t> indices) {
  return timm::create_features(name, timm::ModelArgs()
                                         .in_chans(o.in_channels())
                                         .output_stride(o.output_stride())
                                         .out_indices(std::move(indices))
                                         .pretrained(o.weights()));
}

// encoder_weights of a timm encoder: "" (none) and paths stay; anything else means the pretrained
// weights of the tag in the name ("tu-<model>.<tag>", timm's default tag without one).
std::string resolve_weights(const std::string& timm_name, const std::string& weights) {
  if (weights.empty() || is_weights_path(weights)) return weights;
  const auto repo = timm::pretrained_repo(timm_name);
  if (weights != "True" && weights != "true")
    log::logger().warn(
        "'tu-' encoders take the pretrained variant from the encoder name ('tu-<model name>.<pretrained tag>'); "
        "encoder_weights only switches it on (True) or off (None). Got encoder_weights='{}': loading {}.",
        weights, repo);
  return hub::hf_hub_download(repo, "model.safetensors");
}

}  // namespace

TimmUniversalEncoderImpl::TimmUniversalEncoderImpl(const EncoderOptions& options)
    : in_channels_(options.in_channels()), output_stride_(options.output_stride()) {
  if (options.depth() < 1 || options.depth() > 5)
    throw std::invalid_argument("encoder_depth must be in the range 1..5, got " + std::to_string(options.depth()));
  const std::string timm_name = util::starts_with(options.name(), "tu-") ? options.name().substr(3) : options.name();
  const auto& entry = timm::model_entry(timm_name);
  auto o = options;
  o.weights(resolve_weights(timm_name, options.weights()));
  mean_ = entry.mean;
  std_ = entry.std;

  // The backbone's default features-only set; reduction-1 maps (VGG) are not candidates.
  auto probe_options = o;
  auto probe = build_features(timm_name, probe_options.weights(""), {});
  const auto& all_info = probe->backbone().feature_info();
  for (auto idx : probe->out_indices()) {
    const auto& f = all_info[static_cast<size_t>(idx)];
    if (f.reduction > 1) {
      candidates_.push_back(f);
      candidate_indices_.push_back(idx);
    }
  }
  const auto n = static_cast<int64_t>(candidates_.size());
  if (n == 0) throw std::invalid_argument("timm model '" + timm_name + "' exposes no feature with reduction > 1");

  int64_t max_reduction = 0;
  std::vector<int64_t> reductions;
  for (const auto& f : candidates_) {
    max_reduction = std::max(max_reduction, f.reduction);
    reductions.push_back(f.reduction);
  }
  const auto by_reduction = static_cast<int64_t>(std::lround(std::log2(static_cast<double>(max_reduction))));
  depth_ = std::min(o.depth(), std::max(n, by_reduction));
  if (depth_ < o.depth())
    log::logger().info("Encoder depth is adjusted to `encoder_depth={}` to match `timm` model features reductions {}.",
                       depth_, join_ints(reductions));

  // Selection: positions into candidates_.
  const int64_t count = std::min(depth_, n);
  std::vector<int64_t> chosen;
  const auto& idx = o.indices();
  if (idx.mode == "first") {
    for (int64_t i = 0; i < count; ++i) chosen.push_back(i);
  } else if (idx.mode == "last") {
    for (int64_t i = n - count; i < n; ++i) chosen.push_back(i);
  } else if (idx.mode == "list") {
    if (static_cast<int64_t>(idx.list.size()) != count)
      throw std::invalid_argument(fmt::format(
          "encoder_indices has {} entries but the encoder uses {} features (encoder_depth={}, the model has {}); "
          "give exactly {} of the indices {}",
          idx.list.size(), count, depth_, n, count, join_ints(candidate_indices_)));
    for (auto want : idx.list) {
      auto it = std::find(candidate_indices_.begin(), candidate_indices_.end(), want);
      if (it == candidate_indices_.end())
        throw std::invalid_argument(fmt::format("encoder_indices entry {} is out of range: valid indices are {}",
                                                want, join_ints(candidate_indices_)));
      auto pos = it - candidate_indices_.begin();
      if (std::find(chosen.begin(), chosen.end(), pos) != chosen.end())
        throw std::invalid_argument(fmt::format("encoder_indices entry {} is repeated", want));
      chosen.push_back(pos);
    }
    std::sort(chosen.begin(), chosen.end());  // features always run from high to low resolution
  } else {
    throw std::invalid_argument("encoder_indices must be \"first\", \"last\" or a list of indices, got \"" +
                                idx.mode + "\"");
  }
  selected_.assign(static_cast<size_t>(n), false);
  for (auto p : chosen) selected_[static_cast<size_t>(p)] = true;

  const int64_t dummies = depth_ - count;
  if (dummies > 0)
    log::logger().debug(
        "Encoder has {} dummy feature(s), because the real number of features ({}) is less than specified encoder "
        "depth ({}).",
        dummies, n, depth_);
  for (int64_t k = 1; k <= depth_; ++k) {
    Slot s;
    s.reduction = std::min<int64_t>(int64_t{1} << k, output_stride_);
    if (k > dummies) {
      s.feature = k - dummies - 1;
      const auto& f = candidates_[static_cast<size_t>(chosen[static_cast<size_t>(s.feature)])];
      s.channels = s.out_channels = f.num_chs;
      s.native_reduction = f.reduction;
    }
    slots_.push_back(s);
  }

  // The timm model with exactly the selected features (its state-dict keys follow from them).
  std::vector<int64_t> out_indices;
  for (auto p : chosen) out_indices.push_back(candidate_indices_[static_cast<size_t>(p)]);
  model_ = out_indices == probe->out_indices() && o.weights().empty() ? probe
                                                                       : build_features(timm_name, o, out_indices);
  register_module("model", model_);

  const auto& channels = o.channels();
  if (!channels.empty()) {
    // One entry per slot; a list made for the requested depth is accepted when the depth was lowered.
    if (static_cast<int64_t>(channels.size()) != depth_ && static_cast<int64_t>(channels.size()) != o.depth())
      throw std::invalid_argument(fmt::format("encoder_channels has {} entries; it needs one per feature ({})",
                                              channels.size(), depth_));
    projections_ = register_module("projections", torch::nn::ModuleList());
    for (auto& s : slots_) {
      const auto want = channels[static_cast<size_t>(&s - slots_.data())];
      const bool project = s.feature >= 0 && want != s.channels;
      if (project) {
        if (want < 1) throw std::invalid_argument("encoder_channels entries must be >= 1, got " + std::to_string(want));
        projections_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(s.channels, want, 1).bias(true)));
        s.out_channels = want;
      } else {
        projections_->push_back(torch::nn::Identity());
      }
      projected_.push_back(project);
    }
  }
}

std::vector<torch::Tensor> TimmUniversalEncoderImpl::forward(const torch::Tensor& x) {
  auto feats = model_->forward(x);
  const auto h = x.size(2), w = x.size(3);
  std::vector<torch::Tensor> out{x};
  for (size_t k = 0; k < slots_.size(); ++k) {
    const auto& s = slots_[k];
    const auto shift = static_cast<int64_t>(std::lround(std::log2(static_cast<double>(s.reduction))));
    if (s.feature < 0) {
      out.push_back(torch::empty({x.size(0), 0, h >> shift, w >> shift}, x.options()));
      continue;
    }
    auto f = feats[static_cast<size_t>(s.feature)];
    if (s.native_reduction > s.reduction) {
      f = torch::nn::functional::interpolate(
          f, torch::nn::functional::InterpolateFuncOptions()
                 .size(std::vector<int64_t>{h >> shift, w >> shift})
                 .mode(torch::kBilinear)
                 .align_corners(false));
    } else if (s.native_reduction < s.reduction) {
      f = torch::adaptive_avg_pool2d(f, {h >> shift, w >> shift});
    }
    if (!projected_.empty() && projected_[k]) f = projections_[k]->as<torch::nn::Conv2d>()->forward(f);
    out.push_back(f);
  }
  return out;
}

std::vector<int64_t> TimmUniversalEncoderImpl::out_channels() const {
  std::vector<int64_t> out{in_channels_};
  for (const auto& s : slots_) out.push_back(s.out_channels);
  return out;
}

int64_t TimmUniversalEncoderImpl::output_stride() const {
  return std::min<int64_t>(output_stride_, int64_t{1} << depth_);
}

std::string TimmUniversalEncoderImpl::features_info_str() const {
  auto cell = [](int64_t channels, int64_t reduction) { return fmt::format("{:>11}, hw / {:>2}", channels, reduction); };
  std::string out =
      "index / module :    Timm model features  ->     Selected features   ->     Adapted features   \n" +
      std::string(95, '-');
  auto row = [&](const std::string& index, const std::string& module, const std::string& timm_cell) {
    return fmt::format("\n{:>2}{:>13}:{:<25}", index, "(" + module + ")", timm_cell);
  };
  for (const auto& s : slots_) {
    if (s.feature >= 0) break;
    out += row("x", "-none-", "") + "->" + cell(0, s.reduction) + "     ->" + cell(0, s.reduction) + "    ";
  }
  size_t slot = 0;
  while (slot < slots_.size() && slots_[slot].feature < 0) ++slot;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    const auto& f = candidates_[i];
    out += row(std::to_string(candidate_indices_[i]), f.module, cell(f.num_chs, f.reduction) + "     ");
    if (!selected_[i]) {
      out += "-x";
      continue;
    }
    const auto& s = slots_[slot++];
    out += "->" + cell(s.channels, s.native_reduction) + "     ->" + cell(s.out_channels, s.reduction) + "    ";
  }
  return out;
}

Encoder create_encoder(const EncoderOptions& options) {
  const auto& name = options.name();
  if (util::starts_with(name, "tu-") && timm::is_model(name.substr(3)))
    return std::make_shared<TimmUniversalEncoderImpl>(options);
  if (auto encoder = create_smp_encoder(options)) return encoder;
  throw std::invalid_argument("Unknown encoder '" + options.name() + "'." +
                              util::did_you_mean(options.name(), encoder_names()) +
                              " timm backbones are named tu-<timm model name>; `smp list-encoders` lists them.");
}

}  // namespace smp
