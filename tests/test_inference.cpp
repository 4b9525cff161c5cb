// The inference path: compiled programs equal the eager forward, fusions happen where they should,
// programs follow weight changes and input shapes, and the model is left as it was.
#include <gtest/gtest.h>
#include <smp/inference.h>
#include <smp/smp.h>

#include "inference/compiled_module.h"
#include "support.h"

using namespace smp::test;

namespace {

double rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item<double>();
}

// Non-trivial running statistics and affine parameters, so that folding a BatchNorm changes numbers.
void randomize(torch::nn::BatchNorm2d& b) {
  torch::NoGradGuard no_grad;
  b->running_mean.uniform_(-0.5, 0.5);
  b->running_var.uniform_(0.5, 1.5);
  b->weight.uniform_(0.5, 1.5);
  b->bias.uniform_(-0.5, 0.5);
}

// conv -> BN -> ReLU, conv -> BN, + shortcut (conv -> BN computed after the main branch), ReLU: the
// ResNet downsampling block, whose residual is only ready after the main branch's last convolution.
struct BlockImpl : torch::nn::Module {
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, down{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn_down{nullptr};
  BlockImpl() {
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3).padding(1).bias(false)));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(8));
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 16, 3).padding(1).stride(2)));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(16));
    down = register_module("down", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 16, 1).stride(2).bias(false)));
    bn_down = register_module("bn_down", torch::nn::BatchNorm2d(16));
    for (auto* b : {&bn1, &bn2, &bn_down}) randomize(*b);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = bn2(conv2(torch::relu(bn1(conv1(x)))));
    y += bn_down(down(x));
    return torch::relu(y);
  }
};
TORCH_MODULE(Block);

smp::inference::CompiledModule compiled(torch::nn::Module& m, std::function<torch::Tensor(const torch::Tensor&)> f,
                                        size_t capacity = 4) {
  return smp::inference::CompiledModule(
      m, [f](const at::Tensor& x) { return std::vector<at::Tensor>{f(x)}; }, at::kFloat, capacity);
}

}  // namespace

TEST(Inference, ConvBatchNormActivationAndLateResidualAreFused) {
  torch::manual_seed(0);
  Block block;
  block->eval();
  auto x = torch::randn({2, 3, 20, 18});
  torch::NoGradGuard no_grad;
  const auto want = block->forward(x);
  auto c = compiled(*block, [&](const torch::Tensor& t) { return block->forward(t); });
  const auto program = c.program_for(x);
  EXPECT_EQ(program->stats().convolutions, 3);
  EXPECT_EQ(program->stats().folded_norms, 3);
  EXPECT_EQ(program->stats().fused_adds, 1);
  EXPECT_EQ(program->stats().fused_activations, 2);
  EXPECT_EQ(program->stats().aten_ops, 0);
  const auto got = program->run(x)[0];
  EXPECT_TRUE(got.is_contiguous());
  EXPECT_LT(rel_err(got, want), 1e-5);
}

TEST(Inference, ResidualAfterAKernelWiderThanTheMapIsRight) {
  // x + depthwise 7x7(x) on 2x2 and 4x4 maps (FastViT's positional encoding at its last stages).
  torch::manual_seed(0);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(64, 64, 7).padding(3).groups(64));
  conv->eval();
  auto f = [&](const torch::Tensor& x) { return x + conv(x); };
  torch::NoGradGuard no_grad;
  for (int64_t side : {2, 4, 9}) {
    auto x = torch::randn({1, 64, side, side});
    auto cm = compiled(*conv, f);
    EXPECT_LT(rel_err(cm.run(x)[0], f(x)), 1e-5) << side;
  }
}

TEST(Inference, ResizingsMergeIntoTheConcatenationExactly) {
  torch::manual_seed(0);
  torch::nn::Module holder;
  auto a = torch::randn({1, 5, 8, 6}), b = torch::randn({1, 3, 16, 12});
  namespace F = torch::nn::functional;
  auto f = [&](const torch::Tensor& x) {
    auto up = F::interpolate(x * 2, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest));
    auto bil = F::interpolate(
        x + 1, F::InterpolateFuncOptions().size(std::vector<int64_t>{16, 12}).mode(torch::kBilinear).align_corners(false));
    auto corners = F::interpolate(
        x.narrow(1, 0, 4) * 0.5,
        F::InterpolateFuncOptions().size(std::vector<int64_t>{16, 12}).mode(torch::kBilinear).align_corners(true));
    auto odd = F::interpolate(x - 1, F::InterpolateFuncOptions().size(std::vector<int64_t>{16, 12}).mode(torch::kNearest));
    return torch::cat({up, b.expand({x.size(0), 3, 16, 12}), bil, corners, odd}, 1);
  };
  torch::NoGradGuard no_grad;
  auto cm = compiled(holder, f);
  const auto program = cm.program_for(a);
  EXPECT_EQ(program->stats().channel_concats, 1);
  EXPECT_EQ(program->stats().fused_upsamplings, 4);
  EXPECT_LT(rel_err(program->run(a)[0], f(a)), 1e-6);
}

// A fused residual add writes its result into the residual's storage only when nothing reads the
// residual afterwards (and never into the caller's input).
TEST(Inference, AResidualReadLaterIsNotOverwritten) {
  torch::manual_seed(0);
  torch::nn::Conv2d a(torch::nn::Conv2dOptions(4, 4, 3).padding(1)), b(torch::nn::Conv2dOptions(4, 4, 1));
  torch::nn::Sequential holder(a, b);
  auto f = [&](const torch::Tensor& x) {
    auto r = a(x);
    auto y = b(r) + r;  // r is read again below
    auto z = b(y) + y;  // y is not: z may take y's storage
    return std::vector<torch::Tensor>{z * r, b(x) + x};  // x: the caller's tensor
  };
  auto x = torch::randn({1, 4, 6, 6}).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto before = x.clone();
  torch::NoGradGuard no_grad;
  smp::inference::CompiledModule cm(*holder, f, at::kFloat, 4);
  const auto program = cm.program_for(x);
  EXPECT_EQ(program->stats().fused_adds, 3);
  const auto got = program->run(x), want = f(x);
  EXPECT_TRUE(torch::equal(x, before));
  EXPECT_LT(rel_err(got[0], want[0]), 1e-5);
  EXPECT_LT(rel_err(got[1], want[1]), 1e-5);
}

// Unet decoder blocks: conv3x3(cat(upsample2x(x), skip, empty)) -> BN -> ReLU, and a block with no
// skip; both convolutions read their inputs in parts (the upsampled one as a transposed convolution).
TEST(Inference, ConvolutionsOverUpsampledConcatenationsReadTheirParts) {
  torch::manual_seed(0);
  torch::nn::Conv2d conv1(torch::nn::Conv2dOptions(7, 6, 3).padding(1).bias(false));
  torch::nn::Conv2d conv2(torch::nn::Conv2dOptions(6, 4, 3).padding(1));
  torch::nn::BatchNorm2d bn(6);
  randomize(bn);
  torch::nn::Sequential holder(conv1, conv2, bn);
  holder->eval();
  auto skip = torch::randn({1, 3, 10, 14});
  namespace F = torch::nn::functional;
  const auto up = F::InterpolateFuncOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest);
  auto f = [&](const torch::Tensor& x) {  // x [1, 4, 5, 7]
    auto y = torch::relu(bn(conv1(torch::cat({F::interpolate(x, up), skip, torch::zeros({1, 0, 10, 14})}, 1))));
    return torch::sigmoid(conv2(F::interpolate(y, up)));
  };
  auto x = torch::randn({1, 4, 5, 7});
  torch::NoGradGuard no_grad;
  auto cm = compiled(*holder, f);
  const auto program = cm.program_for(x);
  EXPECT_EQ(program->stats().convolutions_in_parts, 2);
  EXPECT_EQ(program->stats().channel_concats, 0);
  EXPECT_EQ(program->stats().fused_activations, 2);
  EXPECT_LT(rel_err(program->run(x)[0], f(x)), 1e-5);
}

// MAnet's gated decoder input: upsample(x) * gate (one value per channel), concatenated with the
// skip: the product moves to the small tensor and the convolution reads the parts.
TEST(Inference, ChannelGatesMoveBeforeNearestUpsampling) {
  torch::manual_seed(0);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(7, 6, 3).padding(1));
  torch::nn::Sequential holder(conv);
  auto skip = torch::randn({1, 3, 10, 14});
  namespace F = torch::nn::functional;
  const auto up = F::InterpolateFuncOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest);
  auto f = [&](const torch::Tensor& x) {  // x [1, 4, 5, 7]
    auto big = F::interpolate(x, up);
    auto gate = torch::sigmoid(big.mean({2, 3}, true));
    return conv(torch::cat({big * gate, skip}, 1));
  };
  auto x = torch::randn({1, 4, 5, 7});
  torch::NoGradGuard no_grad;
  auto cm = compiled(*holder, f);
  const auto program = cm.program_for(x);
  EXPECT_EQ(program->stats().convolutions_in_parts, 1);
  EXPECT_LT(rel_err(program->run(x)[0], f(x)), 1e-5);
}

// Max poolings as oneDNN primitives: the ResNet stem's, one in ceil mode with dilation, and one
// with the default stride.
TEST(Inference, MaxPoolingsMatch) {
  torch::nn::Module holder;
  namespace F = torch::nn::functional;
  auto f = [](const torch::Tensor& x) {
    auto a = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
    auto b = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).dilation(2).ceil_mode(true));
    auto c = F::max_pool2d(x, F::MaxPool2dFuncOptions(2));
    return std::vector<torch::Tensor>{a, b, c};
  };
  auto x = torch::randn({2, 5, 15, 12});
  torch::NoGradGuard no_grad;
  smp::inference::CompiledModule cm(holder, f, at::kFloat, 4);
  const auto program = cm.program_for(x);
  EXPECT_EQ(program->stats().pools, 3);
  const auto got = program->run(x), want = f(x);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(torch::equal(got[i], want[i])) << "pool " << i;
}

// Linknet's decoder upsampling (transposed 4x4 stride 2 -> BN -> ReLU), and one with output padding,
// dilation and a bias: oneDNN transposed convolutions with the BatchNorm folded in.
TEST(Inference, TransposedConvolutionsFoldTheirBatchNorm) {
  torch::manual_seed(0);
  torch::nn::ConvTranspose2d up(torch::nn::ConvTranspose2dOptions(6, 5, 4).stride(2).padding(1).bias(false));
  torch::nn::ConvTranspose2d odd(
      torch::nn::ConvTranspose2dOptions(5, 3, 3).stride(2).padding(1).output_padding(1).dilation(2));
  torch::nn::BatchNorm2d bn(5);
  randomize(bn);
  torch::nn::Sequential holder(up, odd, bn);
  holder->eval();
  auto f = [&](const torch::Tensor& x) { return odd(torch::relu(bn(up(x)))); };
  auto x = torch::randn({1, 6, 7, 9});
  torch::NoGradGuard no_grad;
  auto cm = compiled(*holder, f);
  const auto program = cm.program_for(x);
  EXPECT_EQ(program->stats().convolutions, 2);
  EXPECT_EQ(program->stats().folded_norms, 1);
  EXPECT_EQ(program->stats().aten_ops, 0);
  EXPECT_LT(rel_err(program->run(x)[0], f(x)), 1e-5);
}

// DeepLabV3+'s separable atrous convolutions: depthwise 3x3 with dilations up to past the map's
// size (oneDNN 2.6 has no depthwise kernel for those; they run as the channels-last loop).
TEST(Inference, DilatedDepthwiseConvolutionsMatch) {
  torch::manual_seed(0);
  torch::nn::Sequential holder;
  std::vector<torch::nn::Conv2d> convs;
  for (int64_t d : {1, 6, 12, 24}) {
    convs.emplace_back(torch::nn::Conv2dOptions(8, 8, 3).padding(d).dilation(d).groups(8).bias(d == 6));
    holder->push_back(convs.back());
  }
  torch::nn::Conv2d strided(torch::nn::Conv2dOptions(32, 32, 3).padding(2).dilation(2).stride(2).groups(32));
  holder->push_back(strided);
  auto f = [&](const torch::Tensor& x) {
    std::vector<torch::Tensor> ys;
    for (auto& conv : convs) ys.push_back(conv(x));
    return strided(torch::cat(ys, 1));
  };
  auto x = torch::randn({2, 8, 16, 13});
  torch::NoGradGuard no_grad;
  auto cm = compiled(*holder, f);
  const auto program = cm.program_for(x);
  EXPECT_EQ(program->stats().convolutions, 5);
  EXPECT_EQ(program->stats().aten_ops, 0);
  EXPECT_LT(rel_err(program->run(x)[0], f(x)), 1e-5);
}

TEST(Inference, LinearLayersAttentionAndScalesRunAsOneDnnProducts) {
  torch::manual_seed(0);
  torch::nn::Linear qkv(16, 48), proj(16, 16), fc1(16, 32), fc2(32, 16);
  torch::nn::LayerNorm norm(torch::nn::LayerNormOptions({16}));
  torch::nn::Sequential holder(qkv, proj, fc1, fc2, norm);
  holder->eval();
  auto f = [&](const torch::Tensor& x) {  // x [B, N, 16]: one pre-norm transformer block, 2 heads
    auto parts = qkv(norm(x)).reshape({x.size(0), x.size(1), 3, 2, 8}).permute({2, 0, 3, 1, 4});
    auto attn = torch::softmax(torch::matmul(parts[0], parts[1].transpose(-2, -1)) * 0.125, -1);
    auto y = x + proj(torch::matmul(attn, parts[2]).transpose(1, 2).reshape({x.size(0), x.size(1), 16}));
    return y + fc2(torch::gelu(fc1(norm(y))));
  };
  auto x = torch::randn({2, 10, 16});
  torch::NoGradGuard no_grad;
  auto cm = compiled(*holder, f);
  const auto program = cm.program_for(x);
  EXPECT_EQ(program->stats().matmuls, 6);  // 4 linear layers, 2 attention products
  EXPECT_GE(program->stats().fused_adds, 2);
  EXPECT_GE(program->stats().fused_activations, 2);  // the scale and the GELU
  EXPECT_EQ(program->stats().last_dim_ops, 3);        // two LayerNorms and the softmax
  EXPECT_LT(rel_err(program->run(x)[0], f(x)), 1e-5);
}

TEST(Inference, ProgramsFollowWeightChangesAndInputShapes) {
  torch::manual_seed(0);
  Block block;
  block->eval();
  auto cm = compiled(*block, [&](const torch::Tensor& t) { return block->forward(t); }, /*capacity=*/1);
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 3, 16, 16}), y = torch::randn({3, 3, 10, 14});
  EXPECT_LT(rel_err(cm.run(x)[0], block->forward(x)), 1e-5);
  EXPECT_LT(rel_err(cm.run(y)[0], block->forward(y)), 1e-5);  // a second shape (replaces the first)
  block->conv1->weight.mul_(-1.5);                              // in place, as an optimizer step
  EXPECT_LT(rel_err(cm.run(x)[0], block->forward(x)), 1e-5);
  block->bn2->running_var.fill_(3.0);  // a buffer counts too
  EXPECT_LT(rel_err(cm.run(y)[0], block->forward(y)), 1e-5);
}

TEST(Inference, TheModelIsLeftAsItWas) {
  auto model = smp::create_model("Unet", {"encoder_name=tu-resnet18", "encoder_depth=3",
                                          "decoder_channels=[32,16,8]", "classes=2"});
  model->train();
  const auto before = smp::io::state_dict(*model);
  std::map<std::string, torch::Tensor> copies;
  for (const auto& [k, v] : before) copies[k] = v.clone();
  auto fast = smp::optimize_for_inference(model);
  auto x = torch::randn({1, 3, 64, 64});
  fast->forward(x);
  EXPECT_TRUE(model->is_training());
  for (const auto& p : model->parameters()) EXPECT_TRUE(p.requires_grad());
  for (const auto& [k, v] : smp::io::state_dict(*model)) EXPECT_TRUE(torch::equal(v, copies.at(k))) << k;
  model->eval();
  torch::NoGradGuard no_grad;
  EXPECT_LT(rel_err(fast->forward(x), model->forward(x)), 1e-5);
}

TEST(Inference, PredictAndInferenceModelMatchTheEagerModelWithAuxHead) {
  auto model = smp::create_model("FPN", {"encoder_name=tu-resnet18", "classes=3", "aux_params={\"classes\": 4}"});
  model->eval();
  auto x = torch::randn({2, 3, 64, 96});
  smp::SegmentationOutput want;
  {
    torch::NoGradGuard no_grad;
    want = model->forward_all(x);
  }
  const auto got = smp::optimize_for_inference(model)->forward_all(x);
  ASSERT_TRUE(got.label.defined());
  EXPECT_LT(rel_err(got.mask, want.mask), 1e-5);
  EXPECT_LT(rel_err(got.label, want.label), 1e-5);
  const auto predicted = model->predict(x);
  EXPECT_LT(rel_err(predicted.mask, want.mask), 1e-5);
  const auto eager = model->predict(x, smp::InferenceOptions().optimize(false));
  EXPECT_TRUE(torch::equal(eager.mask, want.mask));
}

TEST(Inference, WrongInputsGetTheModelsOwnErrors) {
  auto model = smp::create_model("Unet", {"encoder_name=tu-resnet18", "encoder_depth=3",
                                          "decoder_channels=[32,16,8]"});
  auto fast = smp::optimize_for_inference(model);
  EXPECT_NE(error_of([&] { fast->forward(torch::randn({1, 4, 64, 64})); }).find("Wrong number of input channels"),
            std::string::npos);
  auto fpn = smp::optimize_for_inference(smp::create_model("FPN", {"encoder_name=tu-resnet18"}));
  EXPECT_NE(error_of([&] { fpn->forward(torch::randn({1, 3, 60, 64})); }).find("divisible by 32"), std::string::npos);
  EXPECT_NE(error_of([] { smp::parse_inference_dtype("half"); }).find("use float32 or bfloat16"), std::string::npos);
  EXPECT_NE(error_of([&] { smp::optimize_for_inference(model, smp::InferenceOptions().max_cached_shapes(0)); })
                .find("max_cached_shapes"),
            std::string::npos);
}

TEST(Inference, Bfloat16MasksAgreeWithFloat32OrTheCpuIsNamed) {
  // LibTorch seeds its default generator at random: without a seed every run had other weights, and
  // random weights leave some pixels' logits near-tied (agreement 0.98-1.0 over seeds 0-7).
  torch::manual_seed(0);
  auto model = smp::create_model("Unet", {"encoder_name=tu-resnet18", "classes=4"});
  model->eval();
  const auto options = smp::InferenceOptions().dtype(torch::kBFloat16);
  if (!smp::cpu_supports_bfloat16()) {
    EXPECT_NE(error_of([&] { smp::optimize_for_inference(model, options); }).find("AVX-512 BF16"), std::string::npos);
    return;
  }
  torch::manual_seed(3);
  auto x = torch::randn({1, 3, 128, 128});
  const auto full = model->predict(x).mask;
  const auto half = smp::optimize_for_inference(model, options)->forward(x);
  EXPECT_EQ(half.scalar_type(), torch::kFloat32);
  const double agree = (half.argmax(1) == full.argmax(1)).to(torch::kDouble).mean().item<double>();
  EXPECT_GE(agree, 0.995);
  EXPECT_LT(rel_err(half, full), 0.1);
}
