// One registration function per backbone family; the registry calls each once.
#pragma once

namespace smp::timm {

// (one declaration per family)
void register_xcit_family();

}  // namespace smp::timm
