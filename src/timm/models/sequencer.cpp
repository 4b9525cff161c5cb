// timm's Sequencer2d: vertical and horizontal bidirectional LSTMs as the token mixer, channels-last.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"

namespace smp::timm {

namespace sequencer {
namespace {

namespace nn = torch::nn;

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-6)); }

nn::LSTM bilstm(int64_t in, int64_t hidden) {
  return nn::LSTM(nn::LSTMOptions(in, hidden).batch_first(true).bidirectional(true));
}

// LSTM2d with union "cat" and an output fc: a BiLSTM down each column and along each row, the two
// outputs concatenated and projected back to the input width. NHWC in and out.
class Lstm2dImpl : public nn::Module {
 public:
  Lstm2dImpl(int64_t dim, int64_t hidden) {
    rnn_v_ = register_module("rnn_v", bilstm(dim, hidden));
    rnn_h_ = register_module("rnn_h", bilstm(dim, hidden));
    fc_ = register_module("fc", nn::Linear(4 * hidden, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
    auto v = std::get<0>(rnn_v_(x.permute({0, 2, 1, 3}).reshape({-1, H, C})));
    v = v.reshape({B, W, H, -1}).permute({0, 2, 1, 3});
    auto h = std::get<0>(rnn_h_(x.reshape({-1, W, C}))).reshape({B, H, W, -1});
    return fc_(torch::cat({v, h}, -1));
  }

 private:
  nn::LSTM rnn_v_{nullptr}, rnn_h_{nullptr};
  nn::Linear fc_{nullptr};
};
TORCH_MODULE(Lstm2d);

class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t dim, int64_t hidden, double mlp_ratio, double drop_path) : drop_path_(drop_path) {
    norm1_ = register_module("norm1", layer_norm(dim));
    rnn_tokens_ = register_module("rnn_tokens", Lstm2d(dim, hidden));
    norm2_ = register_module("norm2", layer_norm(dim));
    mlp_channels_ = register_module(
        "mlp_channels", layers::Mlp(layers::MlpOptions(dim, static_cast<int64_t>(mlp_ratio * static_cast<double>(dim)))));
  }
  torch::Tensor forward(const torch::Tensor& input) {
    auto x = input + layers::drop_path(rnn_tokens_(norm1_(input)), drop_path_, is_training());
    return x + layers::drop_path(mlp_channels_(norm2_(x)), drop_path_, is_training());
  }

 private:
  double drop_path_;
  nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  Lstm2d rnn_tokens_{nullptr};
  layers::Mlp mlp_channels_{nullptr};
};
TORCH_MODULE(Block);

class StageImpl : public nn::Module {
 public:
  StageImpl(int64_t in, int64_t out, int64_t depth, int64_t patch, int64_t hidden, double mlp_ratio, bool downsample,
            double drop_path) {
    if (downsample)
      down_ = register_module("downsample", std::make_shared<nn::Module>())
                  ->register_module("down", nn::Conv2d(nn::Conv2dOptions(in, out, patch).stride(patch)));
    blocks_ = register_module("blocks", nn::Sequential());
    for (int64_t i = 0; i < depth; ++i) blocks_->push_back(Block(out, hidden, mlp_ratio, drop_path));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // NHWC
    return blocks_->forward(down_ ? down_(x.permute({0, 3, 1, 2})).permute({0, 2, 3, 1}) : x);
  }

 private:
  nn::Conv2d down_{nullptr};
  nn::Sequential blocks_{nullptr};
};
TORCH_MODULE(Stage);

struct SeqCfg {
  std::vector<int64_t> layers;
};

class Sequencer2dImpl : public BackboneImpl {
 public:
  Sequencer2dImpl(const std::string& name, const SeqCfg& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const std::vector<int64_t> patch{7, 2, 1, 1}, dims{192, 384, 384, 384}, hidden{48, 96, 96, 96};
    int64_t reduction = 1;
    for (size_t i = 0; i < 4; ++i) {
      reduction *= patch[i];
      feature_info_.push_back({"stages." + std::to_string(i), dims[i], reduction});
    }
    const auto last = layers::last_feature_index(args, 4, name);
    proj_ = register_module("stem", std::make_shared<nn::Module>())
                ->register_module("proj", nn::Conv2d(nn::Conv2dOptions(args.in_chans(), dims[0], 7).stride(7)));
    stages_ = register_module("stages", nn::Sequential());
    // timm gives every block the same drop path rate here (no linear schedule).
    for (int64_t i = 0; i <= last; ++i) {
      const auto u = static_cast<size_t>(i);
      stages_->push_back(Stage(i > 0 ? dims[u - 1] : dims[0], dims[u], c.layers[u], patch[u], hidden[u], 3.0, i > 0,
                               args.drop_path_rate()));
    }
    if (!args.features_only()) {
      norm_ = register_module("norm", layer_norm(dims.back()));
      if (args.num_classes() > 0) {
        auto head = register_module("head", std::make_shared<nn::Module>());
        fc_ = head->register_module("fc", nn::Linear(dims.back(), args.num_classes()));
      }
    }
  }

  std::vector<int64_t> default_out_indices() const override { return {0, 1, 2}; }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()), model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = proj_(x).permute({0, 2, 3, 1});
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->as<Stage>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y.permute({0, 3, 1, 2}));  // features are NCHW
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = norm_(stages_->forward(proj_(x).permute({0, 2, 3, 1})));
    return classify(y.mean({1, 2}), fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stages"}; }
  std::string first_conv() const override { return "stem.proj"; }

 private:
  nn::Conv2d proj_{nullptr};
  nn::Sequential stages_{nullptr};
  nn::LayerNorm norm_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, SeqCfg>> models = {
      {"sequencer2d_s", {{4, 3, 8, 3}}},
      {"sequencer2d_m", {{4, 3, 14, 3}}},
      {"sequencer2d_l", {{8, 8, 16, 4}}},
  };
  register_configs<Sequencer2dImpl>("sequencer", models);
}

}  // namespace sequencer
}  // namespace smp::timm
