// smp's timm-efficientnet-b0 .. b8, l2 and timm-tf_efficientnet_lite0 .. lite4: timm's EfficientNet
// built from smp's own arguments (PyTorch padding and BatchNorm defaults even for the "tf_" names),
// with timm's parameter names and smp's dilation.
#include "encoders/smp/common.h"
#include "timm/layers/norm_act.h"
#include "timm/models/efficientnet_builder.h"

namespace smp::smp_encoders::timm_efficientnet {

namespace nn = torch::nn;
namespace effnet = timm::effnet;

namespace {

struct EfficientNetSpec {
  bool lite;
  double channel_multiplier, depth_multiplier;
  std::vector<int64_t> out_channels;
};

effnet::ModelConfig model_config(const EfficientNetSpec& spec) {
  // The Lite nets drop SE and keep the first and last stage, the stem and the head at their base
  // widths.
  const std::string se = spec.lite ? "" : "_se0.25";
  const std::vector<std::vector<std::string>> arch = {
      {"ds_r1_k3_s1_e1_c16" + se},  {"ir_r2_k3_s2_e6_c24" + se},  {"ir_r2_k5_s2_e6_c40" + se},
      {"ir_r3_k3_s2_e6_c80" + se},  {"ir_r3_k5_s1_e6_c112" + se}, {"ir_r4_k5_s2_e6_c192" + se},
      {"ir_r1_k3_s1_e6_c320" + se}};
  effnet::DecodeOptions decode;
  decode.depth_multiplier = {spec.depth_multiplier};
  decode.fix_first_last = spec.lite;
  effnet::ModelConfig c;
  c.blocks = effnet::decode_arch_def(arch, decode);
  c.round_chs = effnet::round_fn(spec.channel_multiplier);
  c.stem_size = 32;
  c.fix_stem = spec.lite;
  c.num_features = spec.lite ? 1280 : effnet::round_channels(1280, spec.channel_multiplier);
  c.act = spec.lite ? "relu6" : "swish";
  return c;
}

template <typename Holder>
Holder child_as(const torch::OrderedDict<std::string, std::shared_ptr<nn::Module>>& children,
                const std::string& name) {
  auto impl = std::dynamic_pointer_cast<typename Holder::ContainedType>(children[name]);
  if (!impl) throw std::logic_error("timm EfficientNet: unexpected type of '" + name + "'");
  return Holder(impl);
}

class EfficientNetEncoderImpl : public SmpEncoderImpl {
 public:
  EfficientNetEncoderImpl(const EfficientNetSpec& spec, const EncoderOptions& o) : SmpEncoderImpl(o) {
    check_output_stride(o);
    // smp keeps timm's head conv and norm (unused, but in its state dict) and deletes only the
    // classifier; stochastic depth follows timm's schedule up to smp's 0.2.
    auto net = effnet::create_efficientnet(
        o.name(), model_config(spec),
        timm::ModelArgs().in_chans(o.in_channels()).num_classes(0).drop_path_rate(0.2));
    const auto children = net->named_children();
    for (const auto& child : children) register_module(child.key(), child.value());
    conv_stem_ = child_as<nn::Conv2d>(children, "conv_stem");
    bn1_ = child_as<timm::layers::BatchNormAct2d>(children, "bn1");
    auto blocks = child_as<nn::ModuleList>(children, "blocks");
    for (size_t i = 0; i < blocks->size(); ++i) stages_.push_back(nn::Sequential(blocks->ptr<nn::SequentialImpl>(i)));
    // smp's get_stages: blocks 3-4 run at reduction 16, blocks 5 and after at 32.
    for (size_t i = 3; i < stages_.size(); ++i) {
      const int64_t rate = stage_dilation(i < 5 ? 16 : 32, output_stride_);
      if (rate > 1) replace_strides_with_dilation(*stages_[i], rate);
    }
    set_out_channels(spec.out_channels);
    load_weights(*this, o.weights(), "conv_stem.weight", drop_prefixes({"classifier."}));
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) override {
    std::vector<torch::Tensor> features{x};
    auto y = bn1_(conv_stem_(x));
    features.push_back(y);
    // smp's features 2..5 are the outputs of blocks 1, 2, 4 and 6: run up to these (exclusive) ends.
    static const size_t stage_ends[] = {2, 3, 5, 7};
    size_t next = 0;
    for (int64_t level = 2; level <= depth_; ++level) {
      for (; next < stage_ends[static_cast<size_t>(level - 2)]; ++next) y = stages_[next]->forward(y);
      features.push_back(y);
    }
    return features;
  }

 private:
  nn::Conv2d conv_stem_{nullptr};
  timm::layers::BatchNormAct2d bn1_{nullptr};
  std::vector<nn::Sequential> stages_;
};

}  // namespace

void register_group() {
  auto b = [](double channels, double depth, std::vector<int64_t> out) {
    return EfficientNetSpec{false, channels, depth, std::move(out)};
  };
  auto lite = [](double channels, double depth, std::vector<int64_t> out) {
    return EfficientNetSpec{true, channels, depth, std::move(out)};
  };
  // smp's weights: imagenet and noisy-student expect ImageNet statistics, advprop and the Lite nets'
  // imagenet expect mean = std = 0.5.
  auto weights = [](const char* imagenet, const char* advprop, const char* noisy_student) {
    std::vector<Pretrained> p = {{"imagenet", imagenet}, {"advprop", advprop, centered_preprocessing()}};
    if (noisy_student) p.push_back({"noisy-student", noisy_student});
    return p;
  };
  auto lite_weights = [](const char* imagenet) {
    return std::vector<Pretrained>{{"imagenet", imagenet, centered_preprocessing()}};
  };

  add<EfficientNetEncoderImpl>("timm-efficientnet-b0", b(1.0, 1.0, {3, 32, 24, 40, 112, 320}),
                               weights("8419e9cc19da0b68dcd7bb12f19b7c92407ad7c4",
                                       "a5870af2d24ce79e0cc7fae2bbd8e0a21fcfa6d8",
                                       "bea8b0ff726a50e48774d2d360c5fb1ac4815836"));
  add<EfficientNetEncoderImpl>("timm-efficientnet-b1", b(1.0, 1.1, {3, 32, 24, 40, 112, 320}),
                               weights("63bdd65ef6596ef24f1cadc7dd4f46b624442349",
                                       "79b3d102080ef679b16c2748e608a871112233d0",
                                       "36856124a699f6032574ceeefab02040daa90a9a"));
  add<EfficientNetEncoderImpl>("timm-efficientnet-b2", b(1.1, 1.2, {3, 32, 24, 48, 120, 352}),
                               weights("e693adb39d3cb3847e71e3700a0c2aa58072cff1",
                                       "b58479bf78007cfbb365091d64eeee369bddfa21",
                                       "67c558827c6d3e0975ff9b4bce8557bc2ca80931"));
  add<EfficientNetEncoderImpl>("timm-efficientnet-b3", b(1.2, 1.4, {3, 40, 32, 48, 136, 384}),
                               weights("1666b835b5151d6bb2067c7cd67e67ada6c39edf",
                                       "70474cdb9f1ff4fcbd7434e66560ead1ab8e506b",
                                       "2367bc9f61e79ee97684169a71a87db280bcf4db"));
  add<EfficientNetEncoderImpl>("timm-efficientnet-b4", b(1.4, 1.8, {3, 48, 32, 56, 160, 448}),
                               weights("07868c28ab308f4de4cf1e7ec54b33b8b002ccdb",
                                       "8ea1772ee9a2a0d18c1b56dce0dfac8dd33d537d",
                                       "faeb77b6e8292a700380c840d39442d7ce4d6443"));
  add<EfficientNetEncoderImpl>("timm-efficientnet-b5", b(1.6, 2.2, {3, 48, 40, 64, 176, 512}),
                               weights("004153b4ddd93d30afd9bbf34329d7f57396d413",
                                       "1d1c5f05aab5ed9a1d5052847ddd4024c06a464d",
                                       "9bc3a1e5490de92b1af061d5c2c474ab3129e38c"));
  add<EfficientNetEncoderImpl>("timm-efficientnet-b6", b(1.8, 2.6, {3, 56, 40, 72, 200, 576}),
                               weights("dbbf28a5c33f021486db4070de693caad6b56c3d",
                                       "3b5d3412047f7711c56ffde997911cfefe79f835",
                                       "9b899ea9e8e0ce2ccada0f34a8cb8b5028e9bb36"));
  add<EfficientNetEncoderImpl>("timm-efficientnet-b7", b(2.0, 3.1, {3, 64, 48, 80, 224, 640}),
                               weights("8ef7ffccf54dad9baceb21d05b7ef86b6b70f4cc",
                                       "fcbc576ffb939c12d5cd8dad523fdae6eb0177ca",
                                       "6b1dd73e61bf934d485d7bd4381dc3e2ab374664"));
  add<EfficientNetEncoderImpl>("timm-efficientnet-b8", b(2.2, 3.6, {3, 72, 56, 88, 248, 704}),
                               weights("b5e9dde35605a3a6d17ea2a727382625f9066a37",
                                       "e43f381de72e7467383c2c80bacbb7fcb9572866", nullptr));
  add<EfficientNetEncoderImpl>("timm-efficientnet-l2", b(4.3, 5.3, {3, 136, 104, 176, 480, 1376}),
                               {{"noisy-student", "cdc711e76d1becdd9197169f1a8bb1b2094e980c"},
                                {"noisy-student-475", "35f5ba667a64bf4f3f0689daf84fc6d0f8e1311b"}});

  add<EfficientNetEncoderImpl>("timm-tf_efficientnet_lite0", lite(1.0, 1.0, {3, 32, 24, 40, 112, 320}),
                               lite_weights("f5729249af07e5d923fb8b16922256ce2865d108"));
  add<EfficientNetEncoderImpl>("timm-tf_efficientnet_lite1", lite(1.0, 1.1, {3, 32, 24, 40, 112, 320}),
                               lite_weights("7b5e3f8dbb0c13b74101773584bba7523721be72"));
  add<EfficientNetEncoderImpl>("timm-tf_efficientnet_lite2", lite(1.1, 1.2, {3, 32, 24, 48, 120, 352}),
                               lite_weights("cc5f6cd4c7409ebacc13292f09d369ae88547f6a"));
  add<EfficientNetEncoderImpl>("timm-tf_efficientnet_lite3", lite(1.2, 1.4, {3, 32, 32, 48, 136, 384}),
                               lite_weights("ab29c8402991591d66f813bbb1f061565d9b0cd0"));
  add<EfficientNetEncoderImpl>("timm-tf_efficientnet_lite4", lite(1.4, 1.8, {3, 32, 32, 56, 160, 448}),
                               lite_weights("91a822e0f03c255b34dfb7846d3858397e50ba39"));
}

}  // namespace smp::smp_encoders::timm_efficientnet
