// One registration function per architecture folder (src/decoders/<name>/), listed in
// architectures.def; the factory calls each once.
#pragma once

namespace smp {

#define SMP_ARCHITECTURE(name) void register_##name();
#include "models/architectures.def"
#undef SMP_ARCHITECTURE

}  // namespace smp
