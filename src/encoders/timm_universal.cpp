#include <smp/encoder_table.h>
#include <smp/encoders.h>
#include <smp/hub.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "util/log.h"
#include "encoders/slot_plan.h"
#include "encoders/smp_encoders.h"
#include "util/strings.h"

namespace smp {

namespace {

// encoder_weights of a timm encoder: "" (none) and paths stay; anything else means the pretrained
// weights of the tag in the name ("tu-<model>.<tag>", timm's default tag without one).
std::string resolve_timm_weights(const std::string& timm_name, const std::string& weights) {
  if (weights.empty() || is_weights_path(weights)) return weights;
  const auto repo = timm::pretrained_repo(timm_name);
  if (weights != "True" && weights != "true")
    log::logger().warn(
        "'tu-' encoders take the pretrained variant from the encoder name ('tu-<model name>.<pretrained tag>'); "
        "encoder_weights only switches it on (True) or off (None). Got encoder_weights='{}': loading {}.",
        weights, repo);
  return hub::hf_hub_download(repo, "model.safetensors");
}

// The design document's notes on a plan that differs from the request.
void log_adjustments(const detail::SlotPlan& plan, int64_t requested_depth) {
  if (plan.depth < requested_depth) {
    std::vector<int64_t> reductions;
    for (const auto& f : plan.candidates) reductions.push_back(f.reduction);
    log::logger().info("Encoder depth is adjusted to `encoder_depth={}` to match `timm` model features reductions [{}].",
                       plan.depth, fmt::join(reductions, ", "));
  }
  const auto dummies =
      std::count_if(plan.slots.begin(), plan.slots.end(), [](const detail::PlannedSlot& s) { return s.feature < 0; });
  if (dummies > 0)
    log::logger().debug(
        "Encoder has {} dummy feature(s), because the real number of features ({}) is less than specified encoder "
        "depth ({}).",
        dummies, plan.candidates.size(), plan.depth);
}

}  // namespace

TimmUniversalEncoderImpl::TimmUniversalEncoderImpl(const EncoderOptions& options)
    : in_channels_(options.in_channels()), output_stride_(options.output_stride()) {
  detail::check_encoder_depth(options.depth());  // before anything is downloaded or built
  timm_name_ = util::starts_with(options.name(), "tu-") ? options.name().substr(3) : options.name();
  const std::string& timm_name = timm_name_;
  const auto& entry = timm::model_entry(timm_name);
  mean_ = entry.mean;
  std_ = entry.std;
  const auto weights = resolve_timm_weights(timm_name, options.weights());
  const auto args = timm::ModelArgs()
                        .in_chans(options.in_channels())
                        .output_stride(options.output_stride())
                        .drop_path_rate(options.drop_path_rate())
                        .drop_rate(options.drop_rate());

  // Built without out_indices, the backbone has all its default features: their feature_info decides the plan.
  const auto backbone = timm::create_model(timm_name, timm::ModelArgs(args).features_only(true));
  const auto default_indices = backbone->default_out_indices();
  const auto plan = detail::plan_slots(timm_name, backbone->feature_info(), default_indices, options);
  log_adjustments(plan, options.depth());

  // A backbone's modules depend only on the last feature it is built for, so this one serves every
  // selection ending with the default's last feature. A selection ending earlier is built again without
  // the later stages, as timm's features_only prunes them (some families would keep them in the state
  // dict, and a features-only checkpoint of the pruned model would lack their keys).
  const bool same_modules = plan.out_indices.back() == default_indices.back();
  model_ = same_modules ? timm::Features(backbone, plan.out_indices)
                        : timm::create_features(timm_name, timm::ModelArgs(args).out_indices(plan.out_indices));
  if (!weights.empty()) timm::load_checkpoint(*model_, weights);
  register_module("model", model_);

  depth_ = plan.depth;
  candidates_ = plan.candidates;
  candidate_indices_ = plan.candidate_indices;
  selected_ = plan.selected;
  for (const auto& s : plan.slots)
    slots_.push_back({s.feature, s.channels, s.native_reduction, s.reduction, s.out_channels});
  if (!plan.projections) return;
  projections_ = register_module("projections", torch::nn::ModuleList());
  for (const auto& s : plan.slots) {
    if (s.projected)
      projections_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(s.channels, s.out_channels, 1).bias(true)));
    else
      projections_->push_back(torch::nn::Identity());
    projected_.push_back(s.projected);
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

namespace {

// smp's deprecated "timm-" names of encoders it now builds as "tu-" ones ("timm-mobilenetv3*" as timm's
// tf_ variants); empty for other names.
std::string universal_name_of_deprecated(const std::string& name) {
  for (const char* group : {"regnet", "res2", "resnest", "mobilenetv3", "gernet"})
    if (util::starts_with(name, std::string("timm-") + group))
      return (std::string(group) == "mobilenetv3" ? "tu-tf_" : "tu-") + name.substr(5);
  return "";
}

}  // namespace

Encoder create_encoder(const EncoderOptions& options) {
  const auto& name = options.name();
  if (util::starts_with(name, "timm-"))
    log::logger().warn("`timm-` encoders are deprecated and will be removed in the future. Please use `tu-` "
                       "equivalent encoders instead (see 'Timm encoders' section in the documentation).");
  if (const auto universal = universal_name_of_deprecated(name); !universal.empty()) {
    if (!timm::is_model(universal.substr(3)))
      throw std::invalid_argument(fmt::format("Unknown encoder '{}' (smp builds it as '{}', a timm model this "
                                              "library does not have yet). `smp list-encoders` lists the timm models.",
                                              name, universal));
    return std::make_shared<TimmUniversalEncoderImpl>(EncoderOptions(options).name(universal));
  }
  if (util::starts_with(name, "tu-") && timm::is_model(name.substr(3)))
    return std::make_shared<TimmUniversalEncoderImpl>(options);
  if (auto encoder = create_smp_encoder(options)) return encoder;
  if (util::starts_with(name, "tu-") && !timm::module_without_features(name.substr(3)).empty())
    timm::model_entry(name.substr(3));  // throws, saying why timm cannot give its features
  throw std::invalid_argument("Unknown encoder '" + options.name() + "'." +
                              util::did_you_mean(options.name(), encoder_names()) +
                              " timm backbones are named tu-<timm model name>; `smp list-encoders` lists them.");
}

}  // namespace smp
