// What every group of smp's own encoders (names without "tu-") shares: registration with smp's
// pretrained settings, smp's depth / output-stride checks and their wording, weights loading with
// each encoder's key compatibility rules, and the base that cuts the feature list to the depth.
//
// A group is one file src/encoders/smp/<group>.cpp with everything in namespace <group> and a
// register_group() that calls add() once per name; groups.def lists the groups.
#pragma once

#include <smp/encoders.h>
#include <smp/preprocessing.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace smp::smp_encoders {

// RGB in [0, 1], ImageNet mean and std: what most of smp's weights expect.
PreprocessingParams imagenet_preprocessing();
// RGB in [0, 1], mean = std = 0.5 (inputs to [-1, 1]): the Inception family's and AdvProp's weights.
PreprocessingParams centered_preprocessing();

// One entry of smp's pretrained_settings: the file is model.safetensors of the hub repository
// smp-hub/<encoder>.<weights> ('+' in the weights name spelled '-') at the revision smp pins.
struct Pretrained {
  std::string weights;
  std::string revision;
  PreprocessingParams preprocessing = imagenet_preprocessing();
};

class SmpEncoderImpl;
// Builds the encoder; options.weights() is already a file path (or empty).
using Factory = std::function<std::shared_ptr<SmpEncoderImpl>(const EncoderOptions&)>;

void add(const std::string& name, Factory factory, std::vector<Pretrained> pretrained = {});

// The usual factory: Impl(spec, options).
template <typename Impl, typename Spec>
void add(const std::string& name, Spec spec, std::vector<Pretrained> pretrained = {}) {
  add(name, Factory([spec](const EncoderOptions& o) -> std::shared_ptr<SmpEncoderImpl> {
        return std::make_shared<Impl>(spec, o);
      }),
      std::move(pretrained));
}

// smp's make_dilated: output_stride 32 (nothing to do), 16 or 8; anything else is refused in smp's words.
void check_output_stride(const EncoderOptions& o);
// For encoders whose make_dilated raises in smp: output_stride other than 32 fails with smp's reason.
void refuse_dilation(const EncoderOptions& o, const std::string& reason);
// The dilation make_dilated gives the layers of a stage of this reduction: 1 up to the output stride,
// then reduction / output_stride (and that stage's stride becomes 1).
int64_t stage_dilation(int64_t reduction, int64_t output_stride);
// A bias-free convolution as smp's make_dilated leaves it: padding (k / 2) * dilation, and stride 1 once
// dilated (the stage's reduction then comes from the dilation).
torch::nn::Conv2d dilatable_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t dilation,
                                 int64_t groups = 1);
// smp's replace_strides_with_dilation on a built stage: every Conv2d in it drops its stride and takes
// dilation `rate` with padding (k / 2) * rate (residual shortcuts stay as built, as in smp).
void replace_strides_with_dilation(torch::nn::Module& stage, int64_t rate);

// Maps a key of a weights file to the module's key; "" drops the key (classifier heads, ...).
using KeyRename = std::function<std::string(const std::string&)>;
// A KeyRename that drops the keys starting with any of `prefixes` and keeps the rest.
KeyRename drop_prefixes(std::vector<std::string> prefixes);

// Loads the weights file `path` (nothing when empty) strictly after `rename`; first_conv_weight is the
// key of the first convolution smp's patch_first_conv adapts to in_channels != 3.
void load_weights(torch::nn::Module& encoder, const std::string& path, const std::string& first_conv_weight,
                  const KeyRename& rename);

// The base of smp's encoders: checks the depth as smp does (1..5) and keeps the full channel list,
// which out_channels() cuts to depth + 1 entries.
class SmpEncoderImpl : public EncoderImpl {
 public:
  explicit SmpEncoderImpl(const EncoderOptions& o);
  std::vector<int64_t> out_channels() const override;
  int64_t in_channels() const override { return in_channels_; }
  int64_t depth() const override { return depth_; }
  int64_t output_stride() const override;
  std::vector<double> mean() const override { return preprocessing_.mean; }
  std::vector<double> std() const override { return preprocessing_.std; }
  void set_preprocessing(PreprocessingParams p) { preprocessing_ = std::move(p); }

 protected:
  // smp's _out_channels; a leading 3 (the input itself) becomes in_channels, as set_in_channels does.
  void set_out_channels(std::vector<int64_t> channels);

  const std::string name_;
  const int64_t in_channels_, depth_, output_stride_;

 private:
  std::vector<int64_t> out_channels_;
  PreprocessingParams preprocessing_ = imagenet_preprocessing();
};

}  // namespace smp::smp_encoders
