#include "inference/nhwc_kernels.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace smp::inference {

namespace {

// PyTorch's source index for output index `i` of nearest upsampling (UpSample.h, nearest_idx).
std::vector<int64_t> nearest_indices(int64_t in, int64_t out, std::optional<double> scale) {
  std::vector<int64_t> idx(out);
  const float ratio = scale && *scale > 0 ? static_cast<float>(1.0 / *scale) : static_cast<float>(in) / out;
  for (int64_t i = 0; i < out; ++i)
    idx[i] = out == in ? i : out == 2 * in ? i >> 1 : std::min(static_cast<int64_t>(std::floor(i * ratio)), in - 1);
  return idx;
}

// The two source indices and weights of linear interpolation (UpSample.h, area_pixel_compute_*).
struct Tap {
  int64_t i0, i1;
  float w0, w1;
};
std::vector<Tap> linear_taps(int64_t in, int64_t out, bool align_corners, std::optional<double> scale) {
  float ratio;
  if (align_corners)
    ratio = out > 1 ? static_cast<float>(in - 1) / (out - 1) : 0.f;
  else
    ratio = scale && *scale > 0 ? static_cast<float>(1.0 / *scale) : static_cast<float>(in) / out;
  std::vector<Tap> taps(out);
  for (int64_t i = 0; i < out; ++i) {
    float src = align_corners ? ratio * i : std::max(ratio * (i + 0.5f) - 0.5f, 0.f);
    const auto i0 = static_cast<int64_t>(src);
    const int64_t i1 = i0 + (i0 < in - 1 ? 1 : 0);
    const float l1 = src - i0;
    taps[i] = {i0, i1, 1.f - l1, l1};
  }
  return taps;
}

// The library targets baseline x86-64; these loops are also compiled for AVX2 and AVX-512 and the
// best one for the CPU is picked when the library loads.
#define SMP_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

template <typename T>
SMP_VECTOR_CLONES void bilinear_row(const T* src, int64_t h, int64_t w, int64_t c, const Tap& row, const std::vector<Tap>& cols,
                  T* out_row, int64_t out_stride) {
  const T* r0 = src + row.i0 * w * c;
  const T* r1 = src + row.i1 * w * c;
  for (size_t x = 0; x < cols.size(); ++x) {
    const auto& col = cols[x];
    const T *a = r0 + col.i0 * c, *b = r0 + col.i1 * c, *d = r1 + col.i0 * c, *e = r1 + col.i1 * c;
    T* o = out_row + x * out_stride;
    for (int64_t k = 0; k < c; ++k)
      o[k] = static_cast<T>(row.w0 * (col.w0 * static_cast<float>(a[k]) + col.w1 * static_cast<float>(b[k])) +
                            row.w1 * (col.w0 * static_cast<float>(d[k]) + col.w1 * static_cast<float>(e[k])));
  }
}

}  // namespace

at::Tensor cat_channels_last(const std::vector<CatPart>& parts, int64_t height, int64_t width) {
  TORCH_CHECK(!parts.empty(), "cat_channels_last: no inputs");
  const auto dtype = parts.front().source.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kBFloat16, "cat_channels_last: unsupported dtype ", dtype);
  const int64_t n = parts.front().source.size(0);
  int64_t channels = 0;
  std::vector<at::Tensor> sources;
  std::vector<std::vector<int64_t>> rows, cols;        // nearest
  std::vector<std::vector<Tap>> row_taps, col_taps;   // bilinear
  for (const auto& p : parts) {
    TORCH_CHECK(p.source.dim() == 4 && p.source.size(0) == n && p.source.scalar_type() == dtype,
                "cat_channels_last: inputs differ in batch size or dtype");
    sources.push_back(p.source.contiguous(at::MemoryFormat::ChannelsLast));
    const int64_t h = p.source.size(2), w = p.source.size(3);
    if (p.mode == CatPart::Mode::kNearest) {
      rows.push_back(nearest_indices(h, height, p.scale_h));
      cols.push_back(nearest_indices(w, width, p.scale_w));
      row_taps.emplace_back();
      col_taps.emplace_back();
    } else {
      rows.emplace_back();
      cols.emplace_back();
      row_taps.push_back(linear_taps(h, height, p.align_corners, p.scale_h));
      col_taps.push_back(linear_taps(w, width, p.align_corners, p.scale_w));
    }
    channels += p.source.size(1);
  }
  auto out = at::empty({n, channels, height, width},
                       sources.front().options().memory_format(at::MemoryFormat::ChannelsLast));
  const int64_t item = out.element_size();
  auto* dst = static_cast<char*>(out.data_ptr());
  at::parallel_for(0, n * height, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / height, y = row % height;
      char* out_row = dst + row * width * channels * item;
      int64_t offset = 0;
      for (size_t k = 0; k < sources.size(); ++k) {
        const auto& src = sources[k];
        const int64_t c = src.size(1), h = src.size(2), w = src.size(3), bytes = c * item;
        if (c == 0) continue;  // a 0-channel placeholder (MiT's stride-2 slot) has no data, not even a pointer
        const char* image = static_cast<const char*>(src.data_ptr()) + b * h * w * bytes;
        if (!rows[k].empty()) {
          const char* in_row = image + rows[k][y] * w * bytes;
          const auto& col = cols[k];
          for (int64_t x = 0; x < width; ++x)
            std::memcpy(out_row + (x * channels + offset) * item, in_row + col[x] * bytes, bytes);
        } else if (dtype == at::kFloat) {
          bilinear_row(reinterpret_cast<const float*>(image), h, w, c, row_taps[k][y], col_taps[k],
                       reinterpret_cast<float*>(out_row) + offset, channels);
        } else {
          bilinear_row(reinterpret_cast<const at::BFloat16*>(image), h, w, c, row_taps[k][y], col_taps[k],
                       reinterpret_cast<at::BFloat16*>(out_row) + offset, channels);
        }
        offset += c;
      }
    }
  });
  return out;
}

namespace {

template <typename T>
SMP_VECTOR_CLONES void sum_range(const T* const* in, size_t count, T* out, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) out[i] = in[0][i];
  for (size_t k = 1; k < count; ++k)
    for (int64_t i = begin; i < end; ++i) out[i] = static_cast<T>(static_cast<float>(out[i]) + static_cast<float>(in[k][i]));
}

template <typename T>
void sum_kernel(const std::vector<const T*>& in, T* out, int64_t numel) {
  at::parallel_for(0, numel, 16384,
                   [&](int64_t begin, int64_t end) { sum_range(in.data(), in.size(), out, begin, end); });
}

}  // namespace

at::Tensor sum_tensors(const std::vector<at::Tensor>& xs) {
  TORCH_CHECK(!xs.empty(), "sum_tensors: no inputs");
  const auto format = xs.front().suggest_memory_format();
  std::vector<at::Tensor> dense;
  for (const auto& x : xs) {
    TORCH_CHECK(x.sizes() == xs.front().sizes() && x.scalar_type() == xs.front().scalar_type(),
                "sum_tensors: inputs differ in shape or dtype");
    dense.push_back(x.contiguous(format));
  }
  auto out = at::empty_like(dense.front(), dense.front().options().memory_format(format));
  if (out.scalar_type() == at::kFloat) {
    std::vector<const float*> in;
    for (const auto& d : dense) in.push_back(d.data_ptr<float>());
    sum_kernel(in, out.data_ptr<float>(), out.numel());
  } else if (out.scalar_type() == at::kBFloat16) {
    std::vector<const at::BFloat16*> in;
    for (const auto& d : dense) in.push_back(d.data_ptr<at::BFloat16>());
    sum_kernel(in, out.data_ptr<at::BFloat16>(), out.numel());
  } else {
    TORCH_CHECK(false, "sum_tensors: unsupported dtype ", out.scalar_type());
  }
  return out;
}

namespace {

template <typename T>
SMP_VECTOR_CLONES void affine_range(const T* x, T* y, const float* scale, const float* shift, int64_t channels,
                                    bool relu, int64_t begin, int64_t end) {
  const float floor = relu ? 0.f : -std::numeric_limits<float>::infinity();
  for (int64_t p = begin; p < end; ++p) {
    const T* in = x + p * channels;
    T* out = y + p * channels;
    for (int64_t c = 0; c < channels; ++c) out[c] = static_cast<T>(std::max(static_cast<float>(in[c]) * scale[c] + shift[c], floor));
  }
}

template <typename T>
void affine_kernel(const T* x, T* y, const float* scale, const float* shift, int64_t pixels, int64_t channels,
                   bool relu) {
  at::parallel_for(0, pixels, 64, [&](int64_t begin, int64_t end) {
    affine_range(x, y, scale, shift, channels, relu, begin, end);
  });
}

}  // namespace

at::Tensor affine_channels_last(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& shift, bool relu) {
  auto in = x.contiguous(at::MemoryFormat::ChannelsLast);
  auto out = at::empty_like(in, in.options().memory_format(at::MemoryFormat::ChannelsLast));
  const int64_t channels = in.size(1), pixels = in.numel() / std::max<int64_t>(channels, 1);
  if (in.scalar_type() == at::kFloat)
    affine_kernel(in.data_ptr<float>(), out.data_ptr<float>(), scale.data_ptr<float>(), shift.data_ptr<float>(),
                  pixels, channels, relu);
  else if (in.scalar_type() == at::kBFloat16)
    affine_kernel(in.data_ptr<at::BFloat16>(), out.data_ptr<at::BFloat16>(), scale.data_ptr<float>(),
                  shift.data_ptr<float>(), pixels, channels, relu);
  else
    TORCH_CHECK(false, "affine_channels_last: unsupported dtype ", in.scalar_type());
  return out;
}

namespace {

struct DepthwiseGeometry {
  int64_t channels, height, width, kh, kw, out_width;
  int64_t stride[2], padding[2], dilation[2];
};

// One output row: every output pixel's taps that fall inside the image, accumulated in `acc`.
template <typename T>
SMP_VECTOR_CLONES void depthwise_row(const T* image, const float* weight, const float* bias, const DepthwiseGeometry& g,
                                     int64_t y, T* out_row, float* acc) {
  const int64_t c = g.channels;
  for (int64_t x = 0; x < g.out_width; ++x) {
    for (int64_t k = 0; k < c; ++k) acc[k] = bias ? bias[k] : 0.f;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t iy = y * g.stride[0] - g.padding[0] + i * g.dilation[0];
      if (iy < 0 || iy >= g.height) continue;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t ix = x * g.stride[1] - g.padding[1] + j * g.dilation[1];
        if (ix < 0 || ix >= g.width) continue;
        const T* in = image + (iy * g.width + ix) * c;
        const float* w = weight + (i * g.kw + j) * c;
        for (int64_t k = 0; k < c; ++k) acc[k] += static_cast<float>(in[k]) * w[k];
      }
    }
    T* out = out_row + x * c;
    for (int64_t k = 0; k < c; ++k) out[k] = static_cast<T>(acc[k]);
  }
}

template <typename T>
void depthwise_kernel(const T* x, T* y, const float* weight, const float* bias, const DepthwiseGeometry& g,
                      int64_t batch, int64_t out_height) {
  at::parallel_for(0, batch * out_height, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(g.channels);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / out_height, oy = row % out_height;
      depthwise_row(x + b * g.height * g.width * g.channels, weight, bias, g, oy, y + row * g.out_width * g.channels,
                    acc.data());
    }
  });
}

}  // namespace

at::Tensor depthwise_channels_last(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                   at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                                   int64_t out_height, int64_t out_width) {
  auto in = x.contiguous(at::MemoryFormat::ChannelsLast);
  const DepthwiseGeometry g{in.size(1),  in.size(2),  in.size(3),  weight.size(0),
                            weight.size(1), out_width, {stride[0], stride[1]}, {padding[0], padding[1]},
                            {dilation[0], dilation[1]}};
  TORCH_CHECK(weight.size(2) == g.channels && weight.scalar_type() == at::kFloat && weight.is_contiguous(),
              "depthwise_channels_last: weight must be float32 [kh, kw, C]");
  auto out = at::empty({in.size(0), g.channels, out_height, out_width},
                       in.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* b = bias.defined() ? bias.data_ptr<float>() : nullptr;
  if (in.scalar_type() == at::kFloat)
    depthwise_kernel(in.data_ptr<float>(), out.data_ptr<float>(), weight.data_ptr<float>(), b, g, in.size(0), out_height);
  else if (in.scalar_type() == at::kBFloat16)
    depthwise_kernel(in.data_ptr<at::BFloat16>(), out.data_ptr<at::BFloat16>(), weight.data_ptr<float>(), b, g,
                     in.size(0), out_height);
  else
    TORCH_CHECK(false, "depthwise_channels_last: unsupported dtype ", in.scalar_type());
  return out;
}

}  // namespace smp::inference
