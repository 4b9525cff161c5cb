// Options declared once. An options struct lists each option a single time, in an X-macro list:
//
//   #define SMP_FOO_OPTIONS(OPTION, KWARG) OPTION(int64_t, decoder_channels, 256) KWARG(int64_t, output_stride, 32)
//   struct FooOptions { SMP_OPTIONS(SMP_FOO_OPTIONS) };
//
// and SMP_OPTIONS makes from it both the TORCH_ARG members with their defaults and visit_options, over
// which the keyword (JSON) binding is written once for every struct: an option cannot exist without its
// keyword. OPTION is a keyword smp's constructor names; KWARG one smp passes through **kwargs to the
// encoder, which its config.json holds only when it was given.
#pragma once

#include <torch/arg.h>

namespace smp {

enum class OptionKind { kKeyword, kPassThrough };

}  // namespace smp

// Defaults holding commas (braced lists) go in parentheses: OPTION(std::vector<int64_t>, c, (std::vector<int64_t>{1, 2})).
#define SMP_OPTION_MEMBER(TYPE, NAME, DEFAULT) TORCH_ARG(TYPE, NAME) = DEFAULT;
#define SMP_OPTION_VISIT(TYPE, NAME, DEFAULT) visit(#NAME, self.NAME##_, ::smp::OptionKind::kKeyword);
#define SMP_KWARG_VISIT(TYPE, NAME, DEFAULT) visit(#NAME, self.NAME##_, ::smp::OptionKind::kPassThrough);

// visit(keyword, member, kind) for each option in declaration order; Self is the struct, const or not.
#define SMP_OPTIONS(LIST)                                          \
  LIST(SMP_OPTION_MEMBER, SMP_OPTION_MEMBER)                       \
 public:                                                           \
  template <typename Self, typename Visitor>                       \
  static void visit_options(Self& self, Visitor&& visit) {         \
    LIST(SMP_OPTION_VISIT, SMP_KWARG_VISIT)                        \
  }
