// timm's "bring your own attention" networks (byoanet.py): ByobNet models (byobnet.h) whose
// "self_attn" blocks hold a bottleneck (BoTNet), halo (HaloNet) or lambda (LambdaNet) attention layer.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/bottleneck_attn.h"
#include "timm/layers/halo_attn.h"
#include "timm/layers/lambda_layer.h"
#include "timm/models/byobnet.h"

namespace smp::timm {

namespace nn = torch::nn;

namespace byoanet {
namespace {

using byobnet::BlockCfg;
using byobnet::ModelCfg;
using byobnet::SelfAttnCfg;
using byobnet::StageCfg;

SelfAttnCfg bottleneck(int64_t dim_head = 0) {
  return {"bottleneck", [dim_head](int64_t chs, int64_t stride, const std::vector<int64_t>& fs) {
            if (fs.size() != 2) throw std::invalid_argument("bottleneck attention needs a fixed input size");
            return nn::AnyModule(layers::BottleneckAttn(
                layers::BottleneckAttnOptions(chs, fs[0], fs[1]).stride(stride).dim_head(dim_head)));
          }};
}

SelfAttnCfg halo(int64_t block_size, int64_t halo_size, int64_t num_heads = 8, int64_t dim_head = 0,
                 double qk_ratio = 1.0) {
  return {"halo", [=](int64_t chs, int64_t stride, const std::vector<int64_t>&) {
            return nn::AnyModule(layers::HaloAttn(layers::HaloAttnOptions(chs)
                                                      .stride(stride)
                                                      .block_size(block_size)
                                                      .halo_size(halo_size)
                                                      .num_heads(num_heads)
                                                      .dim_head(dim_head)
                                                      .qk_ratio(qk_ratio)));
          }};
}

// r = 0: relative position embeddings over the fixed feature size instead of the local conv.
SelfAttnCfg lambda(int64_t r) {
  return {"lambda", [r](int64_t chs, int64_t stride, const std::vector<int64_t>& fs) {
            auto o = layers::LambdaLayerOptions(chs).stride(stride).r(r);
            if (r == 0) {
              if (fs.size() != 2) throw std::invalid_argument("lambda layer without r needs a fixed input size");
              o.feat_h(fs[0]).feat_w(fs[1]);
            }
            return nn::AnyModule(layers::LambdaLayer(o));
          }};
}

BlockCfg blk(const std::string& type, int64_t d, int64_t c, int64_t s, int64_t gs, double br) {
  BlockCfg b;
  b.type = type;
  b.d = d;
  b.c = c;
  b.s = s;
  b.gs = gs;
  b.br = br;
  return b;
}

// interleave_blocks(('bottle', 'self_attn'), ...) with an int `every` (first = false).
StageCfg inter(int64_t d, int64_t c, int64_t gs, double br, int64_t every = 1, std::vector<int64_t> every_list = {},
               std::optional<SelfAttnCfg> self_attn = std::nullopt) {
  auto proto = blk("bottle", 1, c, 2, gs, br);
  proto.self_attn = std::move(self_attn);
  return byobnet::interleave_blocks("bottle", "self_attn", d, every_list, every, false, proto);
}

ModelCfg model(std::vector<StageCfg> blocks, int64_t stem, const std::string& stem_type, const std::string& pool,
               const std::string& act, SelfAttnCfg self_attn, int64_t img_size = 0) {
  ModelCfg m;
  m.blocks = std::move(blocks);
  m.stem_chs = {stem};
  m.stem_type = stem_type;
  m.stem_pool = pool;
  m.act = act;
  m.self_attn = std::move(self_attn);
  m.img_size = img_size;
  return m;
}

// The 26-layer layout: two bottleneck stages, a mixed stage, a self-attention stage.
std::vector<StageCfg> layout26(int64_t gs) {
  return {{blk("bottle", 2, 256, 1, gs, 0.25)},
          {blk("bottle", 2, 512, 2, gs, 0.25)},
          inter(2, 1024, gs, 0.25),
          {blk("self_attn", 2, 2048, 2, gs, 0.25)}};
}

std::vector<StageCfg> layout33() {
  return {{blk("bottle", 2, 256, 1, 0, 0.25)},
          inter(3, 512, 0, 0.25, 1, {2}),
          inter(3, 1024, 0, 0.25, 1, {2}),
          {blk("self_attn", 2, 1536, 2, 0, 0.333)}};
}

std::vector<StageCfg> layout50(std::optional<SelfAttnCfg> s1 = std::nullopt, int64_t every1 = 4,
                               std::optional<SelfAttnCfg> s2 = std::nullopt,
                               std::optional<SelfAttnCfg> s3 = std::nullopt) {
  return {{blk("bottle", 3, 256, 1, 0, 0.25)},
          inter(4, 512, 0, 0.25, every1, {}, s1),
          inter(6, 1024, 0, 0.25, 1, {}, s2),
          inter(3, 2048, 0, 0.25, 1, {}, s3)};
}

}  // namespace

void register_family() {
  std::vector<std::pair<std::string, ModelCfg>> models;
  models.push_back({"botnet26t_256", model(layout26(0), 64, "tiered", "maxpool", "relu", bottleneck(), 256)});
  {
    auto m = model(layout33(), 64, "tiered", "", "silu", bottleneck(), 256);
    m.num_features = 1280;
    m.attn.layer = "se";
    models.push_back({"sebotnet33ts_256", m});
  }
  models.push_back({"botnet50ts_256", model(layout50(), 64, "tiered", "maxpool", "silu", bottleneck(), 256)});
  {
    auto m = model(layout26(16), 64, "tiered", "maxpool", "silu", bottleneck(16), 256);
    m.attn.layer = "eca";
    models.push_back({"eca_botnext26ts_256", m});
  }
  {
    std::vector<StageCfg> blocks;
    const std::vector<int64_t> d = {3, 3, 10, 3}, c = {64, 128, 256, 512};
    for (size_t i = 0; i < 4; ++i) blocks.push_back({blk("self_attn", d[i], c[i], i == 0 ? 1 : 2, 0, 1.0)});
    models.push_back({"halonet_h1", model(blocks, 64, "7x7", "maxpool", "relu", halo(8, 3))});
  }
  models.push_back({"halonet26t", model(layout26(0), 64, "tiered", "maxpool", "relu", halo(8, 2))});
  {
    auto m = model(layout33(), 64, "tiered", "", "silu", halo(8, 3));
    m.num_features = 1280;
    m.attn.layer = "se";
    models.push_back({"sehalonet33ts", m});
  }
  models.push_back({"halonet50ts", model(layout50(halo(8, 3, 4)), 64, "tiered", "maxpool", "silu", halo(8, 3))});
  {
    auto m = model(layout26(16), 64, "tiered", "maxpool", "silu", halo(8, 2, 8, 16));
    m.attn.layer = "eca";
    models.push_back({"eca_halonext26ts", m});
  }
  models.push_back({"lambda_resnet26t", model(layout26(0), 64, "tiered", "maxpool", "relu", lambda(9))});
  models.push_back({"lambda_resnet50ts", model(layout50(), 64, "tiered", "maxpool", "silu", lambda(9))});
  models.push_back({"lambda_resnet26rpt_256", model(layout26(0), 64, "tiered", "maxpool", "relu", lambda(0), 256)});
  {
    ModelCfg m;
    m.blocks = {{blk("bottle", 2, 48, 2, 16, 3)},
                {blk("bottle", 6, 96, 2, 16, 3)},
                [] {
                  auto proto = blk("bottle", 1, 192, 2, 16, 3);
                  return byobnet::interleave_blocks("bottle", "self_attn", 12, {}, 3, false, proto);
                }(),
                {blk("self_attn", 2, 288, 2, 16, 3)}};
    m.stem_chs = {32};
    m.stem_pool = "";
    m.downsample = "";
    m.num_features = 1536;
    m.act = "silu";
    m.attn = byobnet::AttnCfg{"se", 0.25};
    m.block_kwargs.bottle_in = true;
    m.block_kwargs.linear_out = true;
    m.self_attn = halo(7, 2, 8, 0, 0.33);
    models.push_back({"haloregnetz_b", m});
  }
  {
    auto m = model(layout50(lambda(13), 1, halo(8, 3), bottleneck()), 64, "tiered", "", "silu", {}, 256);
    models.push_back({"lamhalobotnet50ts_256", m});
    m = model(layout50(halo(8, 3), 1, halo(8, 3), bottleneck()), 64, "tiered", "", "silu", {}, 256);
    models.push_back({"halo2botnet50ts_256", m});
  }
  register_configs<byobnet::ByobNetImpl>("byoanet", models, [](ModelEntry& entry, const ModelCfg&) {
    if (entry.name == "haloregnetz_b") entry.mean = entry.std = {0.5, 0.5, 0.5};
  });
}

}  // namespace byoanet
}  // namespace smp::timm
